/*
 * K033: consuming a built-in DSQ: the global one (scx v1.0.6's scx_flatcg did) directly and
 * through a helper, under the 6.13 name (K050 on 6.12), and the local one; consuming a DSQ of
 * its own (7) is fine.
 * expect: K033@20 K033@22 K033@24 K050@24 K033@26 K070@26
 */
#include "check_test.h"

char _license[] SEC("license") = "GPL";

#define SHARED_DSQ 7

static bool pull(u64 dsq)
{
	return scx_bpf_consume(dsq);
}

s32 SEC("struct_ops/t_dispatch") t_dispatch(unsigned long long *ctx)
{
	if (scx_bpf_consume(SCX_DSQ_GLOBAL))
		return 0;
	if (pull(SCX_DSQ_GLOBAL))
		return 0;
	if (scx_bpf_dsq_move_to_local(SCX_DSQ_GLOBAL))
		return 0;
	if (scx_bpf_consume(SCX_DSQ_LOCAL))
		return 0;
	scx_bpf_consume(SHARED_DSQ);
	return 0;
}

TEST_OPS(t_ops, .dispatch = (void *)t_dispatch, .name = "t");
