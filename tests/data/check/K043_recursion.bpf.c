/*
 * K043: depth() calls itself.
 * expect: K043@14
 */
#include "check_test.h"

char _license[] SEC("license") = "GPL";

static u32 depth(struct task_struct *p, u32 n)
{
	struct task_struct *parent = NULL;

	bpf_probe_read_kernel(&parent, sizeof(parent), &p->real_parent);
	return parent && parent != p && n < 8 ? depth(parent, n + 1) : n;
}

s32 SEC("struct_ops/t_enable") t_enable(unsigned long long *ctx)
{
	struct task_struct *p = (struct task_struct *)ctx[0];

	p->scx.dsq_vtime = depth(p, 0);
	return 0;
}

TEST_OPS(t_ops, .enable = (void *)t_enable, .name = "t");
