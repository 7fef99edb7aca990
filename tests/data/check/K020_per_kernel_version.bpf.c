/*
 * K020 per kernel version: 7.2's verifier lets ops.enqueue and the unlocked callbacks
 * (ops.init, ...) call scx_bpf_select_cpu_dfl(), 6.12 only ops.select_cpu; neither lets
 * ops.tick call scx_bpf_dispatch_nr_slots() (ops.dispatch only).
 * expect: K020@18 K020@27 K020@32
 * expect[7.2]: K020@32
 */
#include "check_test.h"

char _license[] SEC("license") = "GPL";

s32 SEC("struct_ops/t_enqueue") t_enqueue(unsigned long long *ctx)
{
	struct task_struct *p = (struct task_struct *)ctx[0];
	bool is_idle = false;
	s32 cpu;

	cpu = scx_bpf_select_cpu_dfl(p, 0, 0, &is_idle);
	schedc_insert(p, cpu < 0 ? SCX_DSQ_GLOBAL : SCX_DSQ_LOCAL, SCX_SLICE_DFL, ctx[1]);
	return 0;
}

s32 SEC("struct_ops.s/t_init_task") t_init_task(unsigned long long *ctx)
{
	bool is_idle = false;

	return scx_bpf_select_cpu_dfl((struct task_struct *)ctx[0], 0, 0, &is_idle) < -1;
}

s32 SEC("struct_ops/t_tick") t_tick(unsigned long long *ctx)
{
	return scx_bpf_dispatch_nr_slots() > 0;
}

TEST_OPS(t_ops, .enqueue = (void *)t_enqueue, .init_task = (void *)t_init_task,
	 .tick = (void *)t_tick, .name = "t");
