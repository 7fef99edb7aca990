/*
 * K040: a bound read from a map at run time, and an endless loop left by a break.
 * expect: K040@23 K040@25
 */
#include "check_test.h"

char _license[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, u64);
} limits SEC(".maps");

s32 SEC("struct_ops/t_running") t_running(unsigned long long *ctx)
{
	u32 zero = 0, i = 0;
	u64 *n = bpf_map_lookup_elem(&limits, &zero), sum = 0;

	if (!n)
		return 0;
	for (i = 0; i < *n; i++)
		sum += i;
	while (1) {
		if (sum-- == 0)
			break;
	}
	return 0;
}

TEST_OPS(t_ops, .running = (void *)t_running, .name = "t");
