/*
 * K010: ops.enqueue passes two arguments; ctx[2] does not exist, and ctx[1] is a u64 read as
 * a pointer.
 * expect: K010@13 K010@14
 */
#include "check_test.h"

char _license[] SEC("license") = "GPL";

s32 SEC("struct_ops/t_enqueue") t_enqueue(unsigned long long *ctx)
{
	struct task_struct *p = (struct task_struct *)ctx[0];
	u64 extra = ctx[2];
	struct task_struct *other = (struct task_struct *)ctx[1];

	(void)other;
	scx_bpf_dispatch(p, SCX_DSQ_GLOBAL, SCX_SLICE_DFL, extra);
	return 0;
}

TEST_OPS(t_ops, .enqueue = (void *)t_enqueue, .name = "t");
