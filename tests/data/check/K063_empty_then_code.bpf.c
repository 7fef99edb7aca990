/*
 * K063: only a template of empty strings alone is harmless; one that goes on ("" "r0 = 0"),
 * or is a macro, is assembly.
 * expect: K063@15 K063@16
 */
#include "check_test.h"

char _license[] SEC("license") = "GPL";

#define TEMPLATE "r0 = 0"

s32 SEC("struct_ops/t_enqueue") t_enqueue(unsigned long long *ctx)
{
	/* each of these emits an instruction */
	asm volatile("" "r0 = 0" ::: "r0");
	asm volatile(TEMPLATE ::: "r0");
	scx_bpf_dispatch((struct task_struct *)ctx[0], SCX_DSQ_GLOBAL, SCX_SLICE_DFL, ctx[1]);
	return 0;
}

TEST_OPS(t_ops, .enqueue = (void *)t_enqueue, .name = "t");
