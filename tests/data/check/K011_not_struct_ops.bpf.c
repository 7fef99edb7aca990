/*
 * K011: ops.enqueue points to a plain function, not a struct_ops program.
 * expect: K011@17
 */
#include "check_test.h"

char _license[] SEC("license") = "GPL";

s32 t_enqueue(unsigned long long *ctx)
{
	struct task_struct *p = (struct task_struct *)ctx[0];

	scx_bpf_dispatch(p, SCX_DSQ_GLOBAL, SCX_SLICE_DFL, ctx[1]);
	return 0;
}

TEST_OPS(t_ops, .enqueue = (void *)t_enqueue, .name = "t");
