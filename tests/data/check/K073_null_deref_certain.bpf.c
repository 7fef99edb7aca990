/*
 * K073: lookups dereferenced with no NULL check anywhere: through a variable, a wrapper, and
 * directly. The verifier always rejects these.
 * expect: K073@27 K073@28 K073@29
 */
#include "check_test.h"

char _license[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, u64);
} counts SEC(".maps");

static u64 *count_slot(u32 key)
{
	return bpf_map_lookup_elem(&counts, &key);
}

s32 SEC("struct_ops/t_running") t_running(unsigned long long *ctx)
{
	u32 zero = 0;
	u64 *a = bpf_map_lookup_elem(&counts, &zero), *b = count_slot(0);

	*a += 1;
	b[0] += 1;
	return ((struct schedc_exit_info *)bpf_map_lookup_elem(&counts, &zero))->kind;
}

TEST_OPS(t_ops, .running = (void *)t_running, .name = "t");
