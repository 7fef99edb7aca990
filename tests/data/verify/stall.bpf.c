/* A scheduler that queues every user-space task on its own DSQ and, because `drain` is left
 * false, never moves anything out of it: those tasks stall until the sched_ext watchdog (1 s
 * here) ejects the scheduler. The consume call is there, so static checks see a drained DSQ;
 * only running it shows the stall. Kernel threads go to the global DSQ, so the kernel itself
 * keeps running meanwhile. */
#include "schedc_runtime.bpf.h"

char _license[] SEC("license") = "GPL";

s32 SEC("struct_ops/stall_enqueue") stall_enqueue(unsigned long long *ctx)
{
	struct task_struct *p = (struct task_struct *)ctx[0];

	if (p->flags & SCHEDC_PF_KTHREAD)
		schedc_insert(p, SCX_DSQ_GLOBAL, SCX_SLICE_DFL, ctx[1]);
	else
		schedc_insert(p, 7, SCX_SLICE_DFL, ctx[1]);
	return 0;
}

const volatile bool drain = false;	/* a loader would have to set it */

s32 SEC("struct_ops/stall_dispatch") stall_dispatch(unsigned long long *ctx)
{
	if (drain)
		schedc_move_to_local(7);
	return 0;
}

s32 SEC("struct_ops.s/stall_init") stall_init(unsigned long long *ctx)
{
	return scx_bpf_create_dsq(7, -1);
}

SEC(".struct_ops.link")
struct sched_ext_ops stall_ops = {
	.enqueue	= (void *)stall_enqueue,
	.dispatch	= (void *)stall_dispatch,
	.init		= (void *)stall_init,
	.timeout_ms	= 1000,
	.name		= "stall",
};
