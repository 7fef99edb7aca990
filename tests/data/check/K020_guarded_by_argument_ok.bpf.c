/*
 * K020 negative: scx_bpf_select_cpu_dfl() sits in a helper that ops.enqueue calls too, but
 * with a constant argument that returns before the call (scx_cosmos's
 * `if (from_enqueue) return -16;`), in a nested block, through `!` and `==` as well.
 * expect: clean
 */
#include "check_test.h"

char _license[] SEC("license") = "GPL";

static s32 pick_idle(struct task_struct *p, s32 prev_cpu, bool from_enqueue, int mode)
{
	bool is_idle = false;

	if (p->nr_cpus_allowed > 1) {
		if (from_enqueue)
			return -16;
		if (mode == 2)
			return -16;
		return scx_bpf_select_cpu_dfl(p, prev_cpu, 0, &is_idle);
	}
	return prev_cpu;
}

static s32 pick_other(struct task_struct *p, s32 prev_cpu, bool in_select)
{
	bool is_idle = false;

	if (!in_select)
		return prev_cpu;
	return scx_bpf_select_cpu_dfl(p, prev_cpu, 0, &is_idle);
}

s32 SEC("struct_ops/t_select_cpu") t_select_cpu(unsigned long long *ctx)
{
	struct task_struct *p = (struct task_struct *)ctx[0];

	return pick_idle(p, (s32)ctx[1], false, 0) + pick_other(p, (s32)ctx[1], true);
}

s32 SEC("struct_ops/t_enqueue") t_enqueue(unsigned long long *ctx)
{
	struct task_struct *p = (struct task_struct *)ctx[0];

	pick_idle(p, 0, true, 0);
	pick_idle(p, 0, false, 2);
	pick_other(p, 0, false);
	scx_bpf_dispatch(p, SCX_DSQ_GLOBAL, SCX_SLICE_DFL, ctx[1]);
	return 0;
}

TEST_OPS(t_ops, .select_cpu = (void *)t_select_cpu, .enqueue = (void *)t_enqueue, .name = "t");
