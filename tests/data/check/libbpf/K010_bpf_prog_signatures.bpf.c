/*
 * K010 with libbpf's BPF_STRUCT_OPS: a u64 argument declared u32, a task declared as a
 * cgroup, and an argument ops.running does not pass.
 * expect: K010@16 K010@21 K010@26
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "check_test.h"

#define BPF_STRUCT_OPS(name, args...) SEC("struct_ops/" #name) BPF_PROG(name, ##args)
#define BPF_STRUCT_OPS_SLEEPABLE(name, args...) SEC("struct_ops.s/" #name) BPF_PROG(name, ##args)

char _license[] SEC("license") = "GPL";

void BPF_STRUCT_OPS(t_enqueue, struct task_struct *p, u32 enq_flags)
{
	scx_bpf_dispatch(p, SCX_DSQ_GLOBAL, SCX_SLICE_DFL, enq_flags);
}

void BPF_STRUCT_OPS(t_dispatch, s32 cpu, struct cgroup *prev)
{
	scx_bpf_consume(0);
}

void BPF_STRUCT_OPS(t_running, struct task_struct *p, u64 extra)
{
}

SEC(".struct_ops.link")
struct sched_ext_ops t_ops = {
	.enqueue = (void *)t_enqueue,
	.dispatch = (void *)t_dispatch,
	.running = (void *)t_running,
	.name = "t",
};
