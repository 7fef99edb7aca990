/*
 * K007 negative, at the boundary: the longest watchdog timeout (30000 ms) and the largest dispatch
 * batch (INT_MAX) are allowed.
 * expect: clean
 */
#include "check_test.h"

char _license[] SEC("license") = "GPL";

s32 SEC("struct_ops/t_enqueue") t_enqueue(unsigned long long *ctx)
{
	struct task_struct *p = (struct task_struct *)ctx[0];

	scx_bpf_dispatch(p, SCX_DSQ_GLOBAL, SCX_SLICE_DFL, ctx[1]);
	return 0;
}

SEC(".struct_ops.link")
struct sched_ext_ops t_ops = {
	.enqueue = (void *)t_enqueue,
	.name = "t",
	.timeout_ms = 30000,
	.dispatch_max_batch = 2147483647,
};
