// SPDX-License-Identifier: GPL-2.0
/* Like minimal.bpf.c, but reads a map value without checking the lookup for NULL, so the
 * verifier rejects enqueue with "invalid mem access 'map_value_or_null'". Test data. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char _license[] SEC("license") = "GPL";

void scx_bpf_dispatch(struct task_struct *p, u64 dsq_id, u64 slice, u64 enq_flags) __ksym;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, u64);
} slices SEC(".maps");

/* A valid callback that the kernel verifies first, before it rejects enqueue. */
SEC("struct_ops/null_deref_select_cpu")
s32 BPF_PROG(null_deref_select_cpu, struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	return prev_cpu;
}

SEC("struct_ops/null_deref_enqueue")
void BPF_PROG(null_deref_enqueue, struct task_struct *p, u64 enq_flags)
{
	u32 zero = 0;
	u64 *slice = bpf_map_lookup_elem(&slices, &zero);

	/* Deliberately no "if (!slice) return;" here. */
	scx_bpf_dispatch(p, SCX_DSQ_GLOBAL, *slice, enq_flags);
}

SEC(".struct_ops.link")
struct sched_ext_ops null_deref_ops = {
	.select_cpu = (void *)null_deref_select_cpu,
	.enqueue = (void *)null_deref_enqueue,
	.name = "null_deref",
};
