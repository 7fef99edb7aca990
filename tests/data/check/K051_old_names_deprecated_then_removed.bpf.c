/*
 * K050/K051: scx_bpf_dispatch() and scx_bpf_consume() are deprecated from 6.13 and gone in
 * 6.17; fine on 6.12.
 * expect: clean
 * expect[6.13]: K051@14 K051@20
 * expect[6.17]: K050@14 K050@20
 */
#include "check_test.h"

char _license[] SEC("license") = "GPL";

s32 SEC("struct_ops/t_enqueue") t_enqueue(unsigned long long *ctx)
{
	scx_bpf_dispatch((struct task_struct *)ctx[0], 2, SCX_SLICE_DFL, ctx[1]);
	return 0;
}

s32 SEC("struct_ops/t_dispatch") t_dispatch(unsigned long long *ctx)
{
	scx_bpf_consume(2);
	return 0;
}

s32 SEC("struct_ops.s/t_init") t_init(unsigned long long *ctx)
{
	return scx_bpf_create_dsq(2, -1);
}

TEST_OPS(t_ops, .enqueue = (void *)t_enqueue, .dispatch = (void *)t_dispatch,
	 .init = (void *)t_init, .name = "t");
