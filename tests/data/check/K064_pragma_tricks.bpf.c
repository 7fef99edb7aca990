/*
 * K064: pragmas that change what gets built: symbol renaming, section placement, and a
 * _Pragma that silences every diagnostic.
 * expect: K064@8 K064@9 K064@10
 */
#include "check_test.h"

#pragma redefine_extname my_consume scx_bpf_consume
#pragma clang section text="struct_ops/evil"
_Pragma("GCC system_header")

char _license[] SEC("license") = "GPL";

s32 SEC("struct_ops/t_enqueue") t_enqueue(unsigned long long *ctx)
{
	scx_bpf_dispatch((struct task_struct *)ctx[0], SCX_DSQ_GLOBAL, SCX_SLICE_DFL, ctx[1]);
	return 0;
}

TEST_OPS(t_ops, .enqueue = (void *)t_enqueue, .name = "t");
