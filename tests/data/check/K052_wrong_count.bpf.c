/*
 * K052: scx_bpf_create_dsq() declared with 7.2's long form (the kernel's own
 * scx_bpf_create_dsq_impl() takes the implicit `aux` last): three parameters where both
 * kernels' BTF has two, so libbpf refuses the object on each.
 * expect: clean
 * expect[matrix@7.2]: K052@15
 */
#define BPF_NO_KFUNC_PROTOTYPES
#include "vmlinux.h"

#define SEC(name) __attribute__((section(name), used))
#define __ksym __attribute__((section(".ksyms")))

char _license[] SEC("license") = "GPL";
extern s32 scx_bpf_create_dsq(u64 dsq_id, s32 node, void *aux) __ksym;

s32 SEC("struct_ops.s/t_init") t_init(unsigned long long *ctx)
{
	return scx_bpf_create_dsq(1, -1, (void *)0);
}

SEC(".struct_ops.link") struct sched_ext_ops t_ops = {
	.init = (void *)t_init,
	.name = "t",
};
