/*
 * K060/K061/K062/K063/K064 negative: what the preprocessor skips is never compiled, so it is
 * not judged. scx_layered, mitosis, p2dq and rusty include scx's headers by a relative path
 * under `#ifdef LSP`, for editors; the build takes the #else branch.
 * expect: clean
 */
#ifdef LSP
#define __bpf__
#include "../../../../include/scx/common.bpf.h"
#include "/usr/include/linux/sched.h"
#include LSP_HEADER
#else
#include "check_test.h"
#endif

#if 0
__asm__("r0 = 0");
#pragma clang attribute push (__attribute__((section("x"))), apply_to = function)
#elif defined(NEVER_DEFINED)
#include "../secret.h"
#endif

char _license[] SEC("license") = "GPL";

s32 SEC("struct_ops/t_enqueue") t_enqueue(unsigned long long *ctx)
{
	scx_bpf_dispatch((struct task_struct *)ctx[0], SCX_DSQ_GLOBAL, SCX_SLICE_DFL, ctx[1]);
	return 0;
}

TEST_OPS(t_ops, .enqueue = (void *)t_enqueue, .name = "t");
