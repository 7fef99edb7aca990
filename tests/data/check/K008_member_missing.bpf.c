/*
 * K008: ops.cgroup_set_bandwidth exists from 6.17 on; written against 7.2's vmlinux.h, the
 * object does not load on 6.12, whose struct sched_ext_ops lacks the member (libbpf: "member
 * cgroup_set_bandwidth not found in kernel"). Parsed with the 7.2 kit's vmlinux.h, checked for
 * every kernel of the matrix (their BTF).
 * expect[matrix@7.2]: K008@28
 */
#include "check_test.h"

char _license[] SEC("license") = "GPL";

s32 SEC("struct_ops/t_enqueue") t_enqueue(unsigned long long *ctx)
{
	struct task_struct *p = (struct task_struct *)ctx[0];

	schedc_insert(p, SCX_DSQ_GLOBAL, SCX_SLICE_DFL, ctx[1]);
	return 0;
}

void SEC("struct_ops/t_set_bandwidth") t_set_bandwidth(unsigned long long *ctx)
{
}

SEC(".struct_ops.link")
struct sched_ext_ops t_ops = {
	.enqueue = (void *)t_enqueue,
	.name = "t",
	.cgroup_set_bandwidth = (void *)t_set_bandwidth,
};
