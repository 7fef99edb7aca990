// SPDX-License-Identifier: GPL-2.0
/* A two-knob FIFO scheduler written in C: tasks go to the global queue with a tunable slice.
 * Test data for tests/test_repo_add.py. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char _license[] SEC("license") = "GPL";

const volatile u64 slice_ns = 5000000;
const volatile bool direct_idle = true;

void scx_bpf_dispatch(struct task_struct *p, u64 dsq_id, u64 slice, u64 enq_flags) __ksym;
s32 scx_bpf_select_cpu_dfl(struct task_struct *p, s32 prev_cpu, u64 wake_flags, bool *is_idle) __ksym;

SEC("struct_ops/pair_select_cpu")
s32 BPF_PROG(pair_select_cpu, struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	bool is_idle = false;
	s32 cpu = scx_bpf_select_cpu_dfl(p, prev_cpu, wake_flags, &is_idle);

	if (is_idle && direct_idle)
		scx_bpf_dispatch(p, SCX_DSQ_LOCAL, slice_ns, 0);
	return cpu;
}

SEC("struct_ops/pair_enqueue")
void BPF_PROG(pair_enqueue, struct task_struct *p, u64 enq_flags)
{
	scx_bpf_dispatch(p, SCX_DSQ_GLOBAL, slice_ns, enq_flags);
}

SEC(".struct_ops.link")
struct sched_ext_ops pair_ops = {
	.select_cpu = (void *)pair_select_cpu,
	.enqueue = (void *)pair_enqueue,
	.name = "tunable_pair",
};
