/*
 * K021: scx_bpf_create_dsq() may sleep: not in a non-sleepable ops.init, nor in ops.enqueue.
 * expect: K021@14 K021@27
 */
#include "check_test.h"

char _license[] SEC("license") = "GPL";

s32 SEC("struct_ops/t_enqueue") t_enqueue(unsigned long long *ctx)
{
	struct task_struct *p = (struct task_struct *)ctx[0];

	if (!scx_bpf_dsq_nr_queued(3))
		scx_bpf_create_dsq(4, -1);
	scx_bpf_dispatch(p, 3, SCX_SLICE_DFL, ctx[1]);
	return 0;
}

s32 SEC("struct_ops/t_dispatch") t_dispatch(unsigned long long *ctx)
{
	scx_bpf_consume(3);
	return 0;
}

s32 SEC("struct_ops/t_init") t_init(unsigned long long *ctx)
{
	return scx_bpf_create_dsq(3, -1);
}

TEST_OPS(t_ops, .enqueue = (void *)t_enqueue, .dispatch = (void *)t_dispatch,
	 .init = (void *)t_init, .name = "t");
