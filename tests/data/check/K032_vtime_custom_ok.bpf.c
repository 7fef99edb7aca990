/*
 * K032 negative: vtime ordering on a DSQ of the scheduler's own, FIFO on the global one.
 * expect: clean
 */
#include "check_test.h"

char _license[] SEC("license") = "GPL";

s32 SEC("struct_ops/t_enqueue") t_enqueue(unsigned long long *ctx)
{
	struct task_struct *p = (struct task_struct *)ctx[0];

	if (p->nr_cpus_allowed == 1)
		scx_bpf_dispatch(p, SCX_DSQ_GLOBAL, SCX_SLICE_DFL, ctx[1]);
	else
		scx_bpf_dispatch_vtime(p, 0, SCX_SLICE_DFL, p->scx.dsq_vtime, ctx[1]);
	return 0;
}

s32 SEC("struct_ops/t_dispatch") t_dispatch(unsigned long long *ctx)
{
	scx_bpf_consume(0);
	return 0;
}

s32 SEC("struct_ops.s/t_init") t_init(unsigned long long *ctx)
{
	return scx_bpf_create_dsq(0, -1);
}

TEST_OPS(t_ops, .enqueue = (void *)t_enqueue, .dispatch = (void *)t_dispatch,
	 .init = (void *)t_init, .name = "t");
