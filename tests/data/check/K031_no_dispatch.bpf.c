/*
 * K031: a custom DSQ and no ops.dispatch at all: nothing ever serves it.
 * expect: K031@13
 */
#include "check_test.h"

char _license[] SEC("license") = "GPL";

s32 SEC("struct_ops/t_enqueue") t_enqueue(unsigned long long *ctx)
{
	struct task_struct *p = (struct task_struct *)ctx[0];

	scx_bpf_dispatch(p, 9, SCX_SLICE_DFL, ctx[1]);
	return 0;
}

s32 SEC("struct_ops.s/t_init") t_init(unsigned long long *ctx)
{
	return scx_bpf_create_dsq(9, -1);
}

TEST_OPS(t_ops, .enqueue = (void *)t_enqueue, .init = (void *)t_init, .name = "t");
