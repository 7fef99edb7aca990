/*
 * K063 negative: "asm" in comments, strings and longer names is not assembly.
 * expect: clean
 */
#include "check_test.h"

char _license[] SEC("license") = "GPL";

/* no asm here; __asm__ only in this comment */
const char banner[] = "asm-free scheduler";
u64 asm_count;

s32 SEC("struct_ops/t_enqueue") t_enqueue(unsigned long long *ctx)
{
	asm_count++;
	scx_bpf_dispatch((struct task_struct *)ctx[0], SCX_DSQ_GLOBAL, SCX_SLICE_DFL, ctx[1]);
	return 0;
}

TEST_OPS(t_ops, .enqueue = (void *)t_enqueue, .name = "t");
