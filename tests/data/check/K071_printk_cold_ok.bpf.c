/*
 * K071 negative: printing when a CPU comes online or the scheduler starts is fine.
 * expect: clean
 */
#include "check_test.h"

char _license[] SEC("license") = "GPL";

s32 SEC("struct_ops/t_enqueue") t_enqueue(unsigned long long *ctx)
{
	scx_bpf_dispatch((struct task_struct *)ctx[0], SCX_DSQ_GLOBAL, SCX_SLICE_DFL, ctx[1]);
	return 0;
}

s32 SEC("struct_ops/t_cpu_online") t_cpu_online(unsigned long long *ctx)
{
	bpf_printk("cpu %d online", (s32)ctx[0]);
	return 0;
}

s32 SEC("struct_ops.s/t_init") t_init(unsigned long long *ctx)
{
	bpf_printk("scheduler starting");
	return 0;
}

TEST_OPS(t_ops, .enqueue = (void *)t_enqueue, .cpu_online = (void *)t_cpu_online,
	 .init = (void *)t_init, .name = "t");
