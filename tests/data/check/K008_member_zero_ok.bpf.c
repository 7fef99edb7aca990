/*
 * K008 negative: a member 6.12 lacks but left zero is skipped by libbpf ("member ... not
 * found in kernel, skipping it as it's set to zero"); the members 6.12 has are fine.
 * expect[matrix@7.2]: clean
 */
#include "check_test.h"

char _license[] SEC("license") = "GPL";

s32 SEC("struct_ops/t_enqueue") t_enqueue(unsigned long long *ctx)
{
	struct task_struct *p = (struct task_struct *)ctx[0];

	schedc_insert(p, SCX_DSQ_GLOBAL, SCX_SLICE_DFL, ctx[1]);
	return 0;
}

SEC(".struct_ops.link")
struct sched_ext_ops t_ops = {
	.enqueue = (void *)t_enqueue,
	.name = "t",
	.cgroup_set_bandwidth = 0,
};
