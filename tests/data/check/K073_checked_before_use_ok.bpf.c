/*
 * K073 negative, at the boundary: the check comes first, in the same condition (a && *a) or
 * in an earlier statement, and then the value is used, also inside a later condition.
 * expect: clean
 */
#include "check_test.h"

char _license[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, u64);
} counts SEC(".maps");

u64 seen;

s32 SEC("struct_ops/t_running") t_running(unsigned long long *ctx)
{
	u32 zero = 0;
	u64 *a = bpf_map_lookup_elem(&counts, &zero);
	u64 *b = bpf_map_lookup_elem(&counts, &zero);

	if (a && *a > 1)
		seen = 1;
	if (!b)
		return 0;
	if (*b > 1)
		seen = 2;
	*b += 1;
	return 0;
}

TEST_OPS(t_ops, .running = (void *)t_running, .name = "t");
