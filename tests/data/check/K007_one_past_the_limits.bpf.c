/*
 * K007 at the boundary: one millisecond past the 30 s watchdog limit, and a dispatch batch
 * one past INT_MAX.
 * expect: K007@22 K007@23
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
	.timeout_ms = 30001,
	.dispatch_max_batch = 2147483648U,
};
