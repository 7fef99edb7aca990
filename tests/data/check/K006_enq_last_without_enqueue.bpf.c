/*
 * K006: SCX_OPS_ENQ_LAST needs ops.enqueue.
 * expect: K006@20
 */
#include "check_test.h"

char _license[] SEC("license") = "GPL";

s32 SEC("struct_ops/t_running") t_running(unsigned long long *ctx)
{
	struct task_struct *p = (struct task_struct *)ctx[0];

	(void)p;
	return 0;
}

SEC(".struct_ops.link")
struct sched_ext_ops t_ops = {
	.running = (void *)t_running,
	.flags = SCX_OPS_ENQ_LAST,
	.name = "t",
};
