/*
 * K050/K051 negative: both names declared __weak, each call under a bpf_ksym_exists()-style
 * test (an if/else, and an early return): loads on every kernel.
 * expect: clean
 * expect[6.13]: clean
 * expect[6.17]: clean
 */
#include "check_test.h"

char _license[] SEC("license") = "GPL";

extern void scx_bpf_dsq_insert___v1(struct task_struct *p, u64 dsq_id, u64 slice,
				    u64 enq_flags) __ksym __weak;
extern void scx_bpf_dispatch___v0(struct task_struct *p, u64 dsq_id, u64 slice,
				  u64 enq_flags) __ksym __weak;
extern bool scx_bpf_dsq_move_to_local___v1(u64 dsq_id) __ksym __weak;
extern bool scx_bpf_consume___v0(u64 dsq_id) __ksym __weak;

s32 SEC("struct_ops/t_enqueue") t_enqueue(unsigned long long *ctx)
{
	struct task_struct *p = (struct task_struct *)ctx[0];

	if (scx_bpf_dsq_insert___v1)
		scx_bpf_dsq_insert___v1(p, 2, SCX_SLICE_DFL, ctx[1]);
	else
		scx_bpf_dispatch___v0(p, 2, SCX_SLICE_DFL, ctx[1]);
	return 0;
}

static bool move_to_local(u64 dsq_id)
{
	if (SCHEDC_KSYM_EXISTS(scx_bpf_dsq_move_to_local___v1))
		return scx_bpf_dsq_move_to_local___v1(dsq_id);
	return scx_bpf_consume___v0(dsq_id);
}

s32 SEC("struct_ops/t_dispatch") t_dispatch(unsigned long long *ctx)
{
	move_to_local(2);
	return 0;
}

s32 SEC("struct_ops.s/t_init") t_init(unsigned long long *ctx)
{
	return scx_bpf_create_dsq(2, -1);
}

TEST_OPS(t_ops, .enqueue = (void *)t_enqueue, .dispatch = (void *)t_dispatch,
	 .init = (void *)t_init, .name = "t");
