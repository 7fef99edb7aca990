/*
 * K010: typed parameters instead of the u64 context array, and a void function for
 * ops.select_cpu, which returns the CPU.
 * expect: K010@10 K010@16
 */
#include "check_test.h"

char _license[] SEC("license") = "GPL";

s32 SEC("struct_ops/t_enqueue") t_enqueue(struct task_struct *p, u64 enq_flags)
{
	scx_bpf_dispatch(p, SCX_DSQ_GLOBAL, SCX_SLICE_DFL, enq_flags);
	return 0;
}

void SEC("struct_ops/t_select_cpu") t_select_cpu(unsigned long long *ctx)
{
}

TEST_OPS(t_ops, .enqueue = (void *)t_enqueue, .select_cpu = (void *)t_select_cpu, .name = "t");
