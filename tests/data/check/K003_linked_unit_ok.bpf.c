/*
 * K001/K003 negative: one unit of a scheduler built from several objects that are linked
 * (scx_wd40, scx_layered's timer.bpf.c): maps and helpers for the other units, but no
 * license, no sched_ext_ops and no struct_ops program, so no loader loads it on its own.
 * (K003_linked_unit_with_license_ok.bpf.c: the same with a license, as scx_rusty's
 * sdt_alloc.bpf.c has.)
 * expect: clean
 */
#include "check_test.h"

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
