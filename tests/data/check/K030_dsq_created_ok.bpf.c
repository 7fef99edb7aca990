/*
 * K030/K031/K033 negative: every custom DSQ is created in ops.init and consumed in ops.dispatch;
 * ids computed at run time (like scx_flatcg's cgroup ids) are not judged.
 * expect: clean
 */
#include "check_test.h"

char _license[] SEC("license") = "GPL";

#define FAST_DSQ 1
#define SLOW_DSQ 2

s32 SEC("struct_ops/t_enqueue") t_enqueue(unsigned long long *ctx)
{
	struct task_struct *p = (struct task_struct *)ctx[0];
	u64 dsq = p->scx.weight > 100 ? FAST_DSQ : SLOW_DSQ;

	schedc_insert(p, dsq, SCX_SLICE_DFL, ctx[1]);
	schedc_insert(p, FAST_DSQ, SCX_SLICE_DFL, ctx[1]);
	return 0;
}

s32 SEC("struct_ops/t_dispatch") t_dispatch(unsigned long long *ctx)
{
	for (u32 i = FAST_DSQ; i <= SLOW_DSQ; i++)
		if (schedc_move_to_local(i))
			return 0;
	return 0;
}

s32 SEC("struct_ops.s/t_init") t_init(unsigned long long *ctx)
{
	s32 err = scx_bpf_create_dsq(FAST_DSQ, -1);

	return err ? err : scx_bpf_create_dsq(SLOW_DSQ, -1);
}

TEST_OPS(t_ops, .enqueue = (void *)t_enqueue, .dispatch = (void *)t_dispatch,
	 .init = (void *)t_init, .name = "t");
