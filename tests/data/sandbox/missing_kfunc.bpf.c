// SPDX-License-Identifier: GPL-2.0
/* Like minimal.bpf.c, but calls a kfunc that the kernel does not have, so libbpf gives up
 * before the verifier sees any program: the error comes from libbpf, not from the kernel. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char _license[] SEC("license") = "GPL";

void scx_bpf_no_such_kfunc(struct task_struct *p, u64 enq_flags) __ksym;

SEC("struct_ops/missing_kfunc_enqueue")
void BPF_PROG(missing_kfunc_enqueue, struct task_struct *p, u64 enq_flags)
{
	scx_bpf_no_such_kfunc(p, enq_flags);
}

SEC(".struct_ops.link")
struct sched_ext_ops missing_kfunc_ops = {
	.enqueue = (void *)missing_kfunc_enqueue,
	.name = "missing_kfunc",
};
