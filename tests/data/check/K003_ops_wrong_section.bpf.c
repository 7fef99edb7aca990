/*
 * K003: an ops struct outside .struct_ops: libbpf ignores it.
 * expect: K003@17
 */
#include "check_test.h"

char _license[] SEC("license") = "GPL";

s32 SEC("struct_ops/t_enqueue") t_enqueue(unsigned long long *ctx)
{
	struct task_struct *p = (struct task_struct *)ctx[0];

	scx_bpf_dispatch(p, SCX_DSQ_GLOBAL, SCX_SLICE_DFL, ctx[1]);
	return 0;
}

struct sched_ext_ops t_ops SEC(".data") = {
	.enqueue = (void *)t_enqueue,
	.name = "t",
};
