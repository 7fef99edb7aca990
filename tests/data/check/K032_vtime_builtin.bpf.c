/*
 * K032: built-in DSQs are FIFO; vtime insertion into them ejects the scheduler.
 * expect: K032@13 K032@15
 */
#include "check_test.h"

char _license[] SEC("license") = "GPL";

s32 SEC("struct_ops/t_enqueue") t_enqueue(unsigned long long *ctx)
{
	struct task_struct *p = (struct task_struct *)ctx[0];

	scx_bpf_dispatch_vtime(p, SCX_DSQ_GLOBAL, SCX_SLICE_DFL, p->scx.dsq_vtime, ctx[1]);
	if (p->nr_cpus_allowed == 1)
		scx_bpf_dispatch_vtime(p, SCX_DSQ_LOCAL_ON | 1, SCX_SLICE_DFL, 0, ctx[1]);
	return 0;
}

TEST_OPS(t_ops, .enqueue = (void *)t_enqueue, .name = "t");
