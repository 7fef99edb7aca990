/*
 * K041: a double, a float literal and a float global.
 * expect: K041@9 K041@15
 */
#include "check_test.h"

char _license[] SEC("license") = "GPL";

float scale = 1.5f;

s32 SEC("struct_ops/t_stopping") t_stopping(unsigned long long *ctx)
{
	struct task_struct *p = (struct task_struct *)ctx[0];

	double share = p->scx.weight / 100.0;

	p->scx.dsq_vtime += (u64)share;
	return 0;
}

TEST_OPS(t_ops, .stopping = (void *)t_stopping, .name = "t");
