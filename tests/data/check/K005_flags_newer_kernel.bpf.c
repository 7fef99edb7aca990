/*
 * K005: SCX_OPS_ALLOW_QUEUED_WAKEUP (1 << 5) exists from 6.15 on; 6.12 rejects the ops.
 * expect: K005@22
 * expect[6.15]: clean
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
	.flags = SCX_OPS_SWITCH_PARTIAL | (1ULL << 5),
};
