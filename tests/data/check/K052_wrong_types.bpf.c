/*
 * K052, K053: kfuncs declared with other types than the kernel's. A pointer where the
 * kernel takes a cpu number and void where it returns one are refused (K052); a u64 where it
 * returns an s32 loads, but is not what the kernel gives (K053). Declared in a header the
 * policy includes, the finding is at the call.
 * expect: clean
 * expect[matrix@7.2]: K052@17 K052@18 K053@19 K052@29
 */
#define BPF_NO_KFUNC_PROTOTYPES
#include "vmlinux.h"
#include "K052_wrong_types.h"

#define SEC(name) __attribute__((section(name), used))
#define __ksym __attribute__((section(".ksyms")))

char _license[] SEC("license") = "GPL";
extern void scx_bpf_kick_cpu(struct task_struct *p, u64 flags) __ksym;
extern void scx_bpf_task_cpu(const struct task_struct *p) __ksym;
extern u64 scx_bpf_dsq_nr_queued(u64 dsq_id) __ksym;

s32 SEC("struct_ops/t_enqueue") t_enqueue(unsigned long long *ctx)
{
	struct task_struct *p = (struct task_struct *)ctx[0];

	scx_bpf_task_cpu(p);
	scx_bpf_kick_cpu(p, 0);
	if (scx_bpf_dsq_nr_queued(1) > 4)
		return 0;
	return scx_bpf_nr_cpu_ids(1) > 1;
}

SEC(".struct_ops.link") struct sched_ext_ops t_ops = {
	.enqueue = (void *)t_enqueue,
	.name = "t",
};
