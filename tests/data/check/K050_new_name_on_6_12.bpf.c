/*
 * K050: scx_bpf_dsq_insert() is the 6.13 name; a 6.12 kernel has only scx_bpf_dispatch().
 * The same file is right for 6.13 and later.
 * expect: K050@13
 * expect[6.13]: clean
 */
#include "check_test.h"

char _license[] SEC("license") = "GPL";

s32 SEC("struct_ops/t_enqueue") t_enqueue(unsigned long long *ctx)
{
	scx_bpf_dsq_insert((struct task_struct *)ctx[0], SCX_DSQ_GLOBAL, SCX_SLICE_DFL, ctx[1]);
	return 0;
}

TEST_OPS(t_ops, .enqueue = (void *)t_enqueue, .name = "t");
