/*
 * K072: a lookup used without a NULL check, but copied first: the verifier would take a check
 * of the copy as a check of this one, so the rule cannot be sure (K073 when it can).
 * expect: K072@27
 */
#include "check_test.h"

char _license[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, u64);
} counts SEC(".maps");

u64 *last;

s32 SEC("struct_ops/t_running") t_running(unsigned long long *ctx)
{
	u32 zero = 0;
	u64 *a = bpf_map_lookup_elem(&counts, &zero);
	u64 *copy;

	copy = a;
	last = copy;
	*a += 1;
	return 0;
}

TEST_OPS(t_ops, .running = (void *)t_running, .name = "t");
