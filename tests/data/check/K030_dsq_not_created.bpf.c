/*
 * K030: DSQ 7 is inserted into and consumed, but never created; DSQ 3 is fine.
 * expect: K030@13
 */
#include "check_test.h"

char _license[] SEC("license") = "GPL";

s32 SEC("struct_ops/t_enqueue") t_enqueue(unsigned long long *ctx)
{
	struct task_struct *p = (struct task_struct *)ctx[0];

	schedc_insert(p, 7, SCX_SLICE_DFL, ctx[1]);
	schedc_insert(p, 3, SCX_SLICE_DFL, ctx[1]);
	return 0;
}

s32 SEC("struct_ops/t_dispatch") t_dispatch(unsigned long long *ctx)
{
	if (!schedc_move_to_local(7))
		schedc_move_to_local(3);
	return 0;
}

s32 SEC("struct_ops.s/t_init") t_init(unsigned long long *ctx)
{
	return scx_bpf_create_dsq(3, -1);
}

TEST_OPS(t_ops, .enqueue = (void *)t_enqueue, .dispatch = (void *)t_dispatch,
	 .init = (void *)t_init, .name = "t");
