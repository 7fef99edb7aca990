/*
 * K050 at the boundary of the weak-extern guard: a guard counts only for a __weak extern (a
 * strong one that the kernel lacks fails in libbpf before any branch is dropped), and a
 * __weak extern counts only under a guard (called unguarded it is a call to address 0).
 * expect: K050@22 K050@30
 * expect[6.13]: clean
 */
#include "check_test.h"

char _license[] SEC("license") = "GPL";

extern void scx_bpf_dsq_insert___strong(struct task_struct *p, u64 dsq_id, u64 slice,
					u64 enq_flags) __ksym;
extern void scx_bpf_dsq_insert___weak(struct task_struct *p, u64 dsq_id, u64 slice,
				      u64 enq_flags) __ksym __weak;

s32 SEC("struct_ops/t_enqueue") t_enqueue(unsigned long long *ctx)
{
	struct task_struct *p = (struct task_struct *)ctx[0];

	if (scx_bpf_dsq_insert___strong)
		scx_bpf_dsq_insert___strong(p, SCX_DSQ_GLOBAL, SCX_SLICE_DFL, ctx[1]);
	return 0;
}

s32 SEC("struct_ops/t_select_cpu") t_select_cpu(unsigned long long *ctx)
{
	struct task_struct *p = (struct task_struct *)ctx[0];

	scx_bpf_dsq_insert___weak(p, SCX_DSQ_LOCAL, SCX_SLICE_DFL, 0);
	return 0;
}

TEST_OPS(t_ops, .enqueue = (void *)t_enqueue, .select_cpu = (void *)t_select_cpu, .name = "t");
