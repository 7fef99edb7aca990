/* One scheduler in two C files, as scx's schedulers that build in lib/ sources are: this file
 * has the ops; unit.bpf.c defines linked_slice(), which only `schedc compile --link unit.bpf.c`
 * (the static linker) resolves. Alone, this object has an unresolved extern. */
#include "schedc_runtime.bpf.h"

char _license[] SEC("license") = "GPL";

extern u64 linked_slice(u64 nr_queued);

s32 SEC("struct_ops/linked_enqueue") linked_enqueue(unsigned long long *ctx)
{
	struct task_struct *p = (struct task_struct *)ctx[0];

	schedc_insert(p, SCX_DSQ_GLOBAL, linked_slice(scx_bpf_dsq_nr_queued(SCX_DSQ_GLOBAL)),
		      ctx[1]);
	return 0;
}

SEC(".struct_ops.link")
struct sched_ext_ops linked_ops = {
	.enqueue	= (void *)linked_enqueue,
	.name		= "linked",
};
