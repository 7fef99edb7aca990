/*
 * K071 negative: prints that run only when a load-time switch (a `const volatile` global the
 * loader sets) is on: `if (debug)`, scx's dbg() macro, an early return when it is off, and a
 * helper every call of which is under the switch.
 * expect: clean
 */
#include "check_test.h"

char _license[] SEC("license") = "GPL";

const volatile u32 debug;
#define dbg(fmt, args...) do { if (debug > 1) bpf_printk(fmt, ##args); } while (0)

static void trace_task(struct task_struct *p)
{
	bpf_printk("task %d", p->pid);
}

static void report(struct task_struct *p)
{
	if (!debug)
		return;
	bpf_printk("report %d", p->pid);
}

s32 SEC("struct_ops/t_enqueue") t_enqueue(unsigned long long *ctx)
{
	struct task_struct *p = (struct task_struct *)ctx[0];

	if (debug)
		bpf_printk("enqueue");
	dbg("enqueue %d", p->pid);
	if (debug && p->pid == 1)
		trace_task(p);
	report(p);
	scx_bpf_dispatch(p, SCX_DSQ_GLOBAL, SCX_SLICE_DFL, ctx[1]);
	return 0;
}

TEST_OPS(t_ops, .enqueue = (void *)t_enqueue, .name = "t");
