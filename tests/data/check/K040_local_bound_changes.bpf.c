/*
 * K040: a local bound the verifier cannot know: set from a global it cannot read at load
 * (bss), or grown inside the loop.
 * expect: K040@21 K040@24
 */
#include "check_test.h"

char _license[] SEC("license") = "GPL";

#define MAX_CPUS 64
const volatile u32 nr_possible_cpus = 1;
u32 state[MAX_CPUS];
u32 nr_running;

s32 SEC("struct_ops/t_running") t_running(unsigned long long *ctx)
{
	u32 nr = nr_running;
	int grow = nr_possible_cpus;
	u32 sum = 0;

	for (u32 i = 0; i < nr; i++)
		sum += state[i & (MAX_CPUS - 1)];
	/* grows with every step: never reached */
	for (int i = 0; i < grow; i++, grow++)
		sum += state[i & (MAX_CPUS - 1)];
	return sum;
}

TEST_OPS(t_ops, .running = (void *)t_running, .name = "t");
