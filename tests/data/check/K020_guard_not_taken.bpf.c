/*
 * K020: the same helper, but ops.enqueue passes `false` (or a value only known at run time),
 * so the guard does not return and scx_bpf_select_cpu_dfl() runs in ops.enqueue.
 * expect: K020@17
 */
#include "check_test.h"

char _license[] SEC("license") = "GPL";

static s32 pick_idle(struct task_struct *p, s32 prev_cpu, bool from_enqueue)
{
	bool is_idle = false;

	if (from_enqueue)
		return -16;

	return scx_bpf_select_cpu_dfl(p, prev_cpu, 0, &is_idle);
}

s32 SEC("struct_ops/t_enqueue") t_enqueue(unsigned long long *ctx)
{
	struct task_struct *p = (struct task_struct *)ctx[0];

	pick_idle(p, 0, true);
	pick_idle(p, 0, ctx[1] & 1);
	scx_bpf_dispatch(p, SCX_DSQ_GLOBAL, SCX_SLICE_DFL, ctx[1]);
	return 0;
}

TEST_OPS(t_ops, .enqueue = (void *)t_enqueue, .name = "t");
