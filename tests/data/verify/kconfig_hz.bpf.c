/* A FIFO scheduler whose slice is one timer tick: it reads CONFIG_HZ through a __kconfig
 * extern, which libbpf fills from the kernel's config before loading. Without that config
 * (the guest's /boot is the host's) libbpf fails before the verifier runs: V008. */
#include "schedc_runtime.bpf.h"

char _license[] SEC("license") = "GPL";

extern int CONFIG_HZ __attribute__((section(".kconfig")));

s32 SEC("struct_ops/kconfig_hz_enqueue") kconfig_hz_enqueue(unsigned long long *ctx)
{
	struct task_struct *p = (struct task_struct *)ctx[0];
	u64 hz = CONFIG_HZ > 0 ? CONFIG_HZ : 1000;

	schedc_insert(p, SCX_DSQ_GLOBAL, 1000000000ULL / hz, ctx[1]);
	return 0;
}

SEC(".struct_ops.link")
struct sched_ext_ops kconfig_hz_ops = {
	.enqueue	= (void *)kconfig_hz_enqueue,
	.name		= "kconfig_hz",
};
