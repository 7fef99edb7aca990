/*
 * K063: inline assembly, in a function and as an asm label that renames a kfunc.
 * expect: K063@9 K063@14
 */
#include "check_test.h"

char _license[] SEC("license") = "GPL";

extern bool my_consume(u64 dsq_id) __ksym __asm__("scx_bpf_consume");

s32 SEC("struct_ops/t_enqueue") t_enqueue(unsigned long long *ctx)
{
	scx_bpf_dispatch((struct task_struct *)ctx[0], SCX_DSQ_GLOBAL, SCX_SLICE_DFL, ctx[1]);
	asm volatile("r0 = 0" ::: "r0");
	my_consume(0);
	return 0;
}

TEST_OPS(t_ops, .enqueue = (void *)t_enqueue, .name = "t");
