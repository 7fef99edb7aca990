/* The other unit of main.bpf.c: a global function, verified once on its own. */
#include "schedc_runtime.bpf.h"

__attribute__((noinline)) u64 linked_slice(u64 nr_queued)
{
	/* 20 ms shared by the waiting tasks, at least 1 ms each */
	u64 slice = 20000000ULL / (nr_queued + 1);

	return slice < 1000000ULL ? 1000000ULL : slice;
}
