/*
 * K041 negative: the same in fixed point (1024 = 1.0).
 * expect: clean
 */
#include "check_test.h"

char _license[] SEC("license") = "GPL";

u64 scale = 1536;	/* 1.5 */

s32 SEC("struct_ops/t_stopping") t_stopping(unsigned long long *ctx)
{
	struct task_struct *p = (struct task_struct *)ctx[0];
	u64 share = (u64)p->scx.weight * 1024 / 100;

	p->scx.dsq_vtime += share * scale / 1024;
	return 0;
}

TEST_OPS(t_ops, .stopping = (void *)t_stopping, .name = "t");
