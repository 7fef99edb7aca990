/*
 * K070: DSQ 1 is served only when DSQ 0 is empty, and DSQ 2 only when both are.
 * expect: K070@22 K070@24
 */
#include "check_test.h"

char _license[] SEC("license") = "GPL";

s32 SEC("struct_ops/t_enqueue") t_enqueue(unsigned long long *ctx)
{
	struct task_struct *p = (struct task_struct *)ctx[0];
	u64 dsq = p->scx.weight > 100 ? 0 : (p->scx.weight > 50 ? 1 : 2);

	scx_bpf_dispatch(p, dsq, SCX_SLICE_DFL, ctx[1]);
	return 0;
}

s32 SEC("struct_ops/t_dispatch") t_dispatch(unsigned long long *ctx)
{
	if (scx_bpf_consume(0))
		return 0;
	if (scx_bpf_consume(1))
		return 0;
	if (scx_bpf_consume(2))
		return 0;
	return 0;
}

s32 SEC("struct_ops.s/t_init") t_init(unsigned long long *ctx)
{
	for (u64 i = 0; i < 3; i++)
		if (scx_bpf_create_dsq(i, -1))
			return -1;
	return 0;
}

TEST_OPS(t_ops, .enqueue = (void *)t_enqueue, .dispatch = (void *)t_dispatch,
	 .init = (void *)t_init, .name = "t");
