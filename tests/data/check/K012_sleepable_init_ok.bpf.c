/*
 * K011/K012/K021 negative: ops.init may sleep, and creates the DSQ; ops.enqueue is a plain
 * struct_ops program.
 * expect: clean
 */
#include "check_test.h"

char _license[] SEC("license") = "GPL";

s32 SEC("struct_ops/t_enqueue") t_enqueue(unsigned long long *ctx)
{
	struct task_struct *p = (struct task_struct *)ctx[0];

	scx_bpf_dispatch(p, 3, SCX_SLICE_DFL, ctx[1]);
	return 0;
}

s32 SEC("struct_ops/t_dispatch") t_dispatch(unsigned long long *ctx)
{
	scx_bpf_consume(3);
	return 0;
}

s32 SEC("struct_ops.s/t_init") t_init(unsigned long long *ctx)
{
	return scx_bpf_create_dsq(3, -1);
}

TEST_OPS(t_ops, .enqueue = (void *)t_enqueue, .dispatch = (void *)t_dispatch,
	 .init = (void *)t_init, .name = "t");
