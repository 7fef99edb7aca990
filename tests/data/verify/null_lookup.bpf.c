/* Counts enqueues in an array map but forgets that bpf_map_lookup_elem can return NULL. The
 * result is copied before use, so `schedc check` only warns (K072: a check of the copy would
 * do) and the kernel verifier is the one that rejects it. */
#include "schedc_runtime.bpf.h"

char _license[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, u64);
} enqueues SEC(".maps");

s32 SEC("struct_ops/null_lookup_enqueue") null_lookup_enqueue(unsigned long long *ctx)
{
	struct task_struct *p = (struct task_struct *)ctx[0];
	u32 key = 0;
	u64 *slot = bpf_map_lookup_elem(&enqueues, &key);
	u64 *count = slot;

	*count += 1;
	schedc_insert(p, SCX_DSQ_GLOBAL, SCX_SLICE_DFL, ctx[1]);
	return 0;
}

SEC(".struct_ops.link")
struct sched_ext_ops null_lookup_ops = {
	.enqueue	= (void *)null_lookup_enqueue,
	.name		= "null_lookup",
};
