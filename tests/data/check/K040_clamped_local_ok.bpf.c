/*
 * K040 negative: the bound is a local that is only ever given load-time values, a rodata
 * global clamped to a constant (scx_mitosis's critical_section_record()), or a runtime count
 * clamped in the condition itself (`i < nr && i < MAX_CPUS`).
 * expect: clean
 */
#include "check_test.h"

char _license[] SEC("license") = "GPL";

#define MAX_CPUS 64
const volatile u32 nr_possible_cpus = 1;
u32 state[MAX_CPUS];
u32 nr_running;

s32 SEC("struct_ops/t_running") t_running(unsigned long long *ctx)
{
	int nr_cpus = nr_possible_cpus;
	u32 nr = nr_running;
	u32 sum = 0;

	if (nr_cpus > MAX_CPUS)
		nr_cpus = MAX_CPUS;
	for (int i = 0; i < nr_cpus; ++i)
		sum += state[i & (MAX_CPUS - 1)];
	for (u32 i = 0; i < nr && i < MAX_CPUS; i++)
		sum += state[i];
	return sum;
}

TEST_OPS(t_ops, .running = (void *)t_running, .name = "t");
