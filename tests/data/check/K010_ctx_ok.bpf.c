/*
 * K010 negative: every slot in range and read as the type struct sched_ext_ops gives it.
 * expect: clean
 */
#include "check_test.h"

char _license[] SEC("license") = "GPL";

s32 SEC("struct_ops/t_select_cpu") t_select_cpu(unsigned long long *ctx)
{
	struct task_struct *p = (struct task_struct *)ctx[0];
	s32 prev_cpu = (s32)ctx[1];
	u64 wake_flags = ctx[2];
	bool is_idle = false;

	return scx_bpf_select_cpu_dfl(p, prev_cpu, wake_flags, &is_idle);
}

s32 SEC("struct_ops/t_stopping") t_stopping(unsigned long long *ctx)
{
	struct task_struct *p = (struct task_struct *)ctx[0];
	bool runnable = (bool)ctx[1];

	(void)p;
	(void)runnable;
	return 0;
}

TEST_OPS(t_ops, .select_cpu = (void *)t_select_cpu, .stopping = (void *)t_stopping, .name = "t");
