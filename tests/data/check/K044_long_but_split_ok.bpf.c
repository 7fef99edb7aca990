/*
 * K044 negative: many operators in total, but split over statements; a long initializer list.
 * expect: clean
 */
#include "check_test.h"

char _license[] SEC("license") = "GPL";

const volatile u64 weights[16] = { 1 << 0, 1 << 1, 1 << 2, 1 << 3, 1 << 4, 1 << 5, 1 << 6, 1 << 7,
				   1 << 8, 1 << 9, 1 << 10, 1 << 11, 1 << 12, 1 << 13, 1 << 14, 1 << 15 };

s32 SEC("struct_ops/t_enqueue") t_enqueue(unsigned long long *ctx)
{
	u64 sum = weights[0] + weights[1] + weights[2] + weights[3];

	sum += weights[4] + weights[5] + weights[6] + weights[7];
	sum += weights[8] + weights[9] + weights[10] + weights[11];
	sum += weights[12] + weights[13] + weights[14] + weights[15];
	scx_bpf_dispatch((struct task_struct *)ctx[0], SCX_DSQ_GLOBAL, SCX_SLICE_DFL + sum, ctx[1]);
	return 0;
}

TEST_OPS(t_ops, .enqueue = (void *)t_enqueue, .name = "t");
