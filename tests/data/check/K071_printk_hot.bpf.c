/*
 * K071: bpf_printk() on every enqueue, directly and in a helper.
 * expect: K071@11 K071@18
 */
#include "check_test.h"

char _license[] SEC("license") = "GPL";

static void trace_task(struct task_struct *p)
{
	bpf_printk("task %d", p->pid);
}

s32 SEC("struct_ops/t_enqueue") t_enqueue(unsigned long long *ctx)
{
	struct task_struct *p = (struct task_struct *)ctx[0];

	bpf_printk("enqueue");
	trace_task(p);
	scx_bpf_dispatch(p, SCX_DSQ_GLOBAL, SCX_SLICE_DFL, ctx[1]);
	return 0;
}

TEST_OPS(t_ops, .enqueue = (void *)t_enqueue, .name = "t");
