/*
 * K063 negative: an asm statement whose template is the empty string emits no instruction (a
 * compiler barrier; 7.2's scx_qmap keeps its arena map referenced this way).
 * expect: clean
 */
#include "check_test.h"

char _license[] SEC("license") = "GPL";

u64 counter;

#define TOUCH(x) do { asm volatile("" :: "r"(&(x))); } while (0)

s32 SEC("struct_ops/t_enqueue") t_enqueue(unsigned long long *ctx)
{
	TOUCH(counter);
	__asm__ __volatile__("" ::: "memory");
	scx_bpf_dispatch((struct task_struct *)ctx[0], SCX_DSQ_GLOBAL, SCX_SLICE_DFL, ctx[1]);
	return 0;
}

TEST_OPS(t_ops, .enqueue = (void *)t_enqueue, .name = "t");
