// SPDX-License-Identifier: GPL-2.0
/* Like minimal.bpf.c, but reads a stack array at an index taken from the task with no bound,
 * so the verifier rejects enqueue (a variable-offset stack read that may leave the array).
 * Test data: its log, captured in the sandbox, is oob_stack.log. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char _license[] SEC("license") = "GPL";

void scx_bpf_dispatch(struct task_struct *p, u64 dsq_id, u64 slice, u64 enq_flags) __ksym;

SEC("struct_ops/oob_stack_enqueue")
void BPF_PROG(oob_stack_enqueue, struct task_struct *p, u64 enq_flags)
{
	volatile u64 slices[4] = { 5000000, 10000000, 20000000, 40000000 };	/* on the stack */
	u32 level = p->static_prio;

	/* Deliberately no "level &= 3;" here. */
	scx_bpf_dispatch(p, SCX_DSQ_GLOBAL, slices[level], enq_flags);
}

SEC(".struct_ops.link")
struct sched_ext_ops oob_stack_ops = {
	.enqueue = (void *)oob_stack_enqueue,
	.name = "oob_stack",
};
