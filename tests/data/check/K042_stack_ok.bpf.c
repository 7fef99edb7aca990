/*
 * K042 negative: two 256-byte buffers in sibling blocks share the same stack slots.
 * expect: clean
 */
#include "check_test.h"

char _license[] SEC("license") = "GPL";

s32 SEC("struct_ops/t_running") t_running(unsigned long long *ctx)
{
	struct task_struct *p = (struct task_struct *)ctx[0];

	if (p->pid & 1) {
		u64 a[32] = {};

		a[p->pid & 31] = 1;
		return a[0] ? 0 : 1;
	} else {
		u64 b[32] = {};

		b[p->pid & 31] = 2;
		return b[1] ? 0 : 1;
	}
}

TEST_OPS(t_ops, .running = (void *)t_running, .name = "t");
