/*
 * K042: 320 bytes in a helper plus 256 in the callback: more than 512 on one call chain.
 * expect: K042@18
 */
#include "check_test.h"

char _license[] SEC("license") = "GPL";

static __attribute__((noinline)) u64 sum_names(struct task_struct *p)
{
	u8 names[20][16] = {};
	u64 sum = 0;

	schedc_read_comm(names[0], p);
	return sum + names[0][0] + names[19][15];
}

s32 SEC("struct_ops/t_running") t_running(unsigned long long *ctx)
{
	struct task_struct *p = (struct task_struct *)ctx[0];
	u64 history[32] = {};

	history[p->pid & 31] = sum_names(p);
	return history[0] ? 0 : 1;
}

TEST_OPS(t_ops, .running = (void *)t_running, .name = "t");
