/*
 * K003 negative: one unit of a scheduler linked from several objects that has a license of
 * its own (scx_rusty's sdt_alloc.bpf.c) but no sched_ext_ops and no struct_ops program.
 * expect: clean
 */
#include "check_test.h"

char _license[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, u64);
} unit_counts SEC(".maps");

__attribute__((visibility("hidden"))) u64 unit_count(void)
{
	u32 zero = 0;
	u64 *count = bpf_map_lookup_elem(&unit_counts, &zero);

	return count ? *count : 0;
}
