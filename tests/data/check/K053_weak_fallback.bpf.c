/*
 * K053, K052 for __weak kfuncs: libbpf drops the last ___flavour of a ksym, so
 * scx_bpf_dsq_move_to_local___v2 names scx_bpf_dsq_move_to_local, whose one parameter does
 * not match these two. Under bpf_ksym_exists() the program loads on 7.2 but always takes the
 * fallback (K053; 6.12 has no scx_bpf_dsq_move_to_local, K050's business and guarded here);
 * a weak kfunc called unguarded with the wrong parameter count does not load (K052).
 * expect: clean
 * expect[matrix@7.2]: K053@19 K052@20
 */
#define BPF_NO_KFUNC_PROTOTYPES
#include "vmlinux.h"

#define SEC(name) __attribute__((section(name), used))
#define __ksym __attribute__((section(".ksyms")))
#define __weak __attribute__((weak))
#define bpf_ksym_exists(sym) ({ _Static_assert(!__builtin_constant_p(!!sym), "weak"); !!sym; })

char _license[] SEC("license") = "GPL";
bool scx_bpf_dsq_move_to_local___v2(u64 dsq_id, u64 enq_flags) __ksym __weak;
void scx_bpf_destroy_dsq(u64 dsq_id, u64 flags) __ksym __weak;
bool scx_bpf_consume___old(u64 dsq_id) __ksym __weak;

s32 SEC("struct_ops/t_dispatch") t_dispatch(unsigned long long *ctx)
{
	if (bpf_ksym_exists(scx_bpf_dsq_move_to_local___v2))
		scx_bpf_dsq_move_to_local___v2(1, 0);
	else
		scx_bpf_consume___old(1);
	scx_bpf_destroy_dsq(2, 0);
	return 0;
}

SEC(".struct_ops.link") struct sched_ext_ops t_ops = {
	.dispatch = (void *)t_dispatch,
	.name = "t",
};
