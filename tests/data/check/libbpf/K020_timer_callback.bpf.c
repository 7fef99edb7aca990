/*
 * K020/K071 with libbpf: a bpf_timer callback holds no runqueue lock but is not ops.dispatch,
 * so it may not consume; bpf_printk() in ops.dispatch runs for every dispatch.
 * expect: K020@29 K071@35
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "check_test.h"

#define BPF_STRUCT_OPS(name, args...) SEC("struct_ops/" #name) BPF_PROG(name, ##args)
#define BPF_STRUCT_OPS_SLEEPABLE(name, args...) SEC("struct_ops.s/" #name) BPF_PROG(name, ##args)

char _license[] SEC("license") = "GPL";

struct timer_slot {
	struct bpf_timer timer;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct timer_slot);
} timers SEC(".maps");

static int kick(void *map, int *key, struct bpf_timer *timer)
{
	scx_bpf_consume(0);
	return 0;
}

void BPF_STRUCT_OPS(t_dispatch, s32 cpu, struct task_struct *prev)
{
	bpf_printk("dispatch on %d", cpu);
	scx_bpf_consume(0);
}

s32 BPF_STRUCT_OPS_SLEEPABLE(t_init)
{
	u32 key = 0;
	struct timer_slot *slot = bpf_map_lookup_elem(&timers, &key);

	if (!slot)
		return -1;
	bpf_timer_init(&slot->timer, &timers, 1);
	bpf_timer_set_callback(&slot->timer, kick);
	return bpf_timer_start(&slot->timer, 1000000, 0);
}

SEC(".struct_ops.link")
struct sched_ext_ops t_ops = {
	.dispatch = (void *)t_dispatch,
	.init = (void *)t_init,
	.name = "t",
};
