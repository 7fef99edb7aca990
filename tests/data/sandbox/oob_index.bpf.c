// SPDX-License-Identifier: GPL-2.0
/* Like minimal.bpf.c, but counts enqueues per CPU in a global array indexed by the task's CPU
 * with no bound, so the verifier rejects enqueue: "invalid access to map value" (the index may
 * be past the array's 8 entries). Test data: its log, captured in the sandbox, is
 * oob_index.log. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char _license[] SEC("license") = "GPL";

void scx_bpf_dispatch(struct task_struct *p, u64 dsq_id, u64 slice, u64 enq_flags) __ksym;

u64 enqueued[8];

SEC("struct_ops/oob_index_enqueue")
void BPF_PROG(oob_index_enqueue, struct task_struct *p, u64 enq_flags)
{
	u32 cpu = p->thread_info.cpu;

	/* Deliberately no "if (cpu >= 8) return;" here. */
	enqueued[cpu] += 1;
	scx_bpf_dispatch(p, SCX_DSQ_GLOBAL, SCX_SLICE_DFL, enq_flags);
}

SEC(".struct_ops.link")
struct sched_ext_ops oob_index_ops = {
	.enqueue = (void *)oob_index_enqueue,
	.name = "oob_index",
};
