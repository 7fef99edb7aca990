/*
 * K060/K061/K062 negative: headers by name, from the include folders and from the policy's
 * own folder; #line naming the policy itself.
 * expect: clean
 */
#include "check_test.h"
#include "K061_local_header.h"
#if __has_include(<bpf/bpf_helpers.h>)
#define HAVE_LIBBPF 1
#endif

char _license[] SEC("license") = "GPL";

#line 14 "K061_local_header_ok.bpf.c"
s32 SEC("struct_ops/t_enqueue") t_enqueue(unsigned long long *ctx)
{
	scx_bpf_dispatch((struct task_struct *)ctx[0], SCX_DSQ_GLOBAL, LOCAL_SLICE, ctx[1]);
	return 0;
}

TEST_OPS(t_ops, .enqueue = (void *)t_enqueue, .name = "t");
