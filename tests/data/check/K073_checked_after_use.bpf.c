/*
 * K073: a lookup dereferenced before its only NULL check (the check after the use, or the
 * use inside the condition itself): a condition that comes later protects nothing.
 * expect: K073@25 K073@28
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

	*a += 1;
	if (a)
		seen = 1;
	if (*b > 1 && b)
		seen = 2;
	return 0;
}

TEST_OPS(t_ops, .running = (void *)t_running, .name = "t");
