/*
 * K071: a condition on run-time state is no switch: a global the program writes (.bss),
 * a task's field, the negated switch (prints when debugging is off), and a helper that one
 * call reaches outside the switch.
 * expect: K071@16 K071@26 K071@28 K071@30
 */
#include "check_test.h"

char _license[] SEC("license") = "GPL";

const volatile u32 debug;
u32 verbose;

static void trace_task(struct task_struct *p)
{
	bpf_printk("task %d", p->pid);
}

s32 SEC("struct_ops/t_enqueue") t_enqueue(unsigned long long *ctx)
{
	struct task_struct *p = (struct task_struct *)ctx[0];

	if (debug)
		trace_task(p);
	if (verbose)
		bpf_printk("enqueue");
	if (p->pid == 1)
		bpf_printk("init");
	if (!debug)
		bpf_printk("quiet");
	trace_task(p);
	scx_bpf_dispatch(p, SCX_DSQ_GLOBAL, SCX_SLICE_DFL, ctx[1]);
	return 0;
}

TEST_OPS(t_ops, .enqueue = (void *)t_enqueue, .name = "t");
