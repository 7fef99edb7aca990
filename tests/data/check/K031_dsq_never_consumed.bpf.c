/*
 * K031: DSQ 5 is created and filled, but ops.dispatch only serves DSQ 4.
 * expect: K031@14
 */
#include "check_test.h"

char _license[] SEC("license") = "GPL";

s32 SEC("struct_ops/t_enqueue") t_enqueue(unsigned long long *ctx)
{
	struct task_struct *p = (struct task_struct *)ctx[0];

	if (p->scx.weight > 100)
		scx_bpf_dispatch(p, 5, SCX_SLICE_DFL, ctx[1]);
	else
		scx_bpf_dispatch(p, 4, SCX_SLICE_DFL, ctx[1]);
	return 0;
}

s32 SEC("struct_ops/t_dispatch") t_dispatch(unsigned long long *ctx)
{
	scx_bpf_consume(4);
	return 0;
}

s32 SEC("struct_ops.s/t_init") t_init(unsigned long long *ctx)
{
	s32 err = scx_bpf_create_dsq(4, -1);

	return err ? err : scx_bpf_create_dsq(5, -1);
}

TEST_OPS(t_ops, .enqueue = (void *)t_enqueue, .dispatch = (void *)t_dispatch,
	 .init = (void *)t_init, .name = "t");
