/*
 * K072/K073 negative: every lookup checked before use, in the usual ways.
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

s32 SEC("struct_ops/t_running") t_running(unsigned long long *ctx)
{
	u32 zero = 0;
	u64 *a = bpf_map_lookup_elem(&counts, &zero), *b, *c, fallback = 0;

	if (!a)
		return 0;
	*a += 1;
	if ((b = bpf_map_lookup_elem(&counts, &zero)) != NULL)
		*b += 1;
	c = bpf_map_lookup_elem(&counts, &zero);
	if (!c)
		c = &fallback;
	*c += 1;
	return 0;
}

TEST_OPS(t_ops, .running = (void *)t_running, .name = "t");
