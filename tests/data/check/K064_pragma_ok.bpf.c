/*
 * K064 negative: unrolling hints and diagnostic push/pop are fine.
 * expect: clean
 */
#include "check_test.h"

char _license[] SEC("license") = "GPL";

u64 slots[8];

s32 SEC("struct_ops/t_enqueue") t_enqueue(unsigned long long *ctx)
{
	u64 sum = 0;

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-variable"
	u32 unused;
#pragma GCC diagnostic pop
#pragma unroll
	for (u32 i = 0; i < 8; i++)
		sum += slots[i];
	_Pragma("clang loop unroll(full)")
	for (u32 i = 0; i < 8; i++)
		slots[i] = sum;
	scx_bpf_dispatch((struct task_struct *)ctx[0], SCX_DSQ_GLOBAL, SCX_SLICE_DFL, ctx[1]);
	return 0;
}

TEST_OPS(t_ops, .enqueue = (void *)t_enqueue, .name = "t");
