/*
 * K040 negative: constant bounds, a rodata bound the verifier reads at load, sizeof, and
 * do { } while (0).
 * expect: clean
 */
#include "check_test.h"

char _license[] SEC("license") = "GPL";

const volatile u32 nr_slots = 8;
u64 slots[16];

s32 SEC("struct_ops/t_running") t_running(unsigned long long *ctx)
{
	u64 sum = 0;

	for (u32 i = 0; i < 16; i++)
		sum += slots[i];
	for (u32 i = 0; i < nr_slots && i < 16; i++)
		sum += slots[i];
	for (u32 i = 0; i < sizeof(slots) / sizeof(slots[0]); i++)
		sum -= slots[i];
	u32 j = 32;
	while (j > 0)
		j--;
	do {
		sum++;
	} while (0);
	return sum ? 0 : 1;
}

TEST_OPS(t_ops, .running = (void *)t_running, .name = "t");
