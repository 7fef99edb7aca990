/*
 * K043 negative: the same walk as a bounded loop.
 * expect: clean
 */
#include "check_test.h"

char _license[] SEC("license") = "GPL";

static u32 depth(struct task_struct *p)
{
	u32 n;

	for (n = 0; n < 8; n++) {
		struct task_struct *parent = NULL;

		bpf_probe_read_kernel(&parent, sizeof(parent), &p->real_parent);
		if (!parent || parent == p)
			break;
		p = parent;
	}
	return n;
}

s32 SEC("struct_ops/t_enable") t_enable(unsigned long long *ctx)
{
	struct task_struct *p = (struct task_struct *)ctx[0];

	p->scx.dsq_vtime = depth(p);
	return 0;
}

TEST_OPS(t_ops, .enable = (void *)t_enable, .name = "t");
