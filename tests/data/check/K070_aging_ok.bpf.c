/*
 * K070 negative: the same strict order, but a task of DSQ 1 that waited more than 100 ms is
 * served first.
 * expect: clean
 */
#include "check_test.h"

char _license[] SEC("license") = "GPL";

u64 low_since;

s32 SEC("struct_ops/t_enqueue") t_enqueue(unsigned long long *ctx)
{
	struct task_struct *p = (struct task_struct *)ctx[0];

	if (!scx_bpf_dsq_nr_queued(1))
		low_since = bpf_ktime_get_ns();
	scx_bpf_dispatch(p, p->scx.weight > 100 ? 0 : 1, SCX_SLICE_DFL, ctx[1]);
	return 0;
}

s32 SEC("struct_ops/t_dispatch") t_dispatch(unsigned long long *ctx)
{
	u64 now = bpf_ktime_get_ns();

	if (scx_bpf_dsq_nr_queued(1) && now - low_since > 100000000ULL) {
		if (scx_bpf_consume(1)) {
			low_since = now;
			return 0;
		}
	}
	if (scx_bpf_consume(0))
		return 0;
	if (scx_bpf_consume(1))
		low_since = now;
	return 0;
}

s32 SEC("struct_ops.s/t_init") t_init(unsigned long long *ctx)
{
	return scx_bpf_create_dsq(0, -1) ?: scx_bpf_create_dsq(1, -1);
}

TEST_OPS(t_ops, .enqueue = (void *)t_enqueue, .dispatch = (void *)t_dispatch,
	 .init = (void *)t_init, .name = "t");
