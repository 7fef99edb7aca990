/*
 * K020: kfuncs outside the callbacks the kernel allows them in, directly and through a
 * static helper that two callbacks share.
 * expect: K020@13 K020@21 K020@29
 */
#include "check_test.h"

char _license[] SEC("license") = "GPL";

/* Called from ops.enqueue and ops.dispatch: only the dispatch path may consume. */
static bool pull(u64 dsq)
{
	return scx_bpf_consume(dsq);
}

s32 SEC("struct_ops/t_enqueue") t_enqueue(unsigned long long *ctx)
{
	struct task_struct *p = (struct task_struct *)ctx[0];
	bool is_idle = false;

	scx_bpf_select_cpu_dfl(p, 0, 0, &is_idle);
	scx_bpf_dispatch(p, SCX_DSQ_GLOBAL, SCX_SLICE_DFL, ctx[1]);
	pull(0);
	return 0;
}

s32 SEC("struct_ops/t_running") t_running(unsigned long long *ctx)
{
	scx_bpf_reenqueue_local();
	return 0;
}

s32 SEC("struct_ops/t_dispatch") t_dispatch(unsigned long long *ctx)
{
	pull(0);
	return 0;
}

TEST_OPS(t_ops, .enqueue = (void *)t_enqueue, .running = (void *)t_running,
	 .dispatch = (void *)t_dispatch, .name = "t");
