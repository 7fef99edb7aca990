/*
 * K020 negative: each kfunc where the kernel allows it; the shared helper only in dispatch.
 * expect: clean
 */
#include "check_test.h"

char _license[] SEC("license") = "GPL";

static bool pull(u64 dsq)
{
	return scx_bpf_consume(dsq);
}

s32 SEC("struct_ops/t_select_cpu") t_select_cpu(unsigned long long *ctx)
{
	struct task_struct *p = (struct task_struct *)ctx[0];
	bool is_idle = false;
	s32 cpu = scx_bpf_select_cpu_dfl(p, (s32)ctx[1], ctx[2], &is_idle);

	if (is_idle)
		scx_bpf_dispatch(p, SCX_DSQ_LOCAL, SCX_SLICE_DFL, 0);
	return cpu;
}

s32 SEC("struct_ops/t_enqueue") t_enqueue(unsigned long long *ctx)
{
	struct task_struct *p = (struct task_struct *)ctx[0];

	scx_bpf_dispatch(p, SCX_DSQ_GLOBAL, SCX_SLICE_DFL, ctx[1]);
	return 0;
}

s32 SEC("struct_ops/t_dispatch") t_dispatch(unsigned long long *ctx)
{
	if (scx_bpf_dispatch_nr_slots())
		pull(0);
	return 0;
}

s32 SEC("struct_ops/t_cpu_release") t_cpu_release(unsigned long long *ctx)
{
	scx_bpf_reenqueue_local();
	return 0;
}

s32 SEC("struct_ops/t_running") t_running(unsigned long long *ctx)
{
	struct task_struct *p = (struct task_struct *)ctx[0];
	struct cgroup *cgrp = scx_bpf_task_cgroup(p);

	bpf_cgroup_release(cgrp);
	return 0;
}

TEST_OPS(t_ops, .select_cpu = (void *)t_select_cpu, .enqueue = (void *)t_enqueue,
	 .dispatch = (void *)t_dispatch, .cpu_release = (void *)t_cpu_release,
	 .running = (void *)t_running, .name = "t");
