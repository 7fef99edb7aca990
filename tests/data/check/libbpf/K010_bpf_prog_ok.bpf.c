/*
 * K010 negative with BPF_STRUCT_OPS: exact signatures, fewer arguments than passed (allowed),
 * a sleepable ops.init, a timer callback that moves tasks (allowed without a runqueue lock),
 * and bpf_printk() where it is cheap.
 * expect: clean
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "check_test.h"

#define BPF_STRUCT_OPS(name, args...) SEC("struct_ops/" #name) BPF_PROG(name, ##args)
#define BPF_STRUCT_OPS_SLEEPABLE(name, args...) SEC("struct_ops.s/" #name) BPF_PROG(name, ##args)
#define BPF_FOR_EACH_ITER (&___it)

extern int bpf_iter_scx_dsq_new(struct bpf_iter_scx_dsq *it, u64 dsq_id, u64 flags) __ksym __weak;
extern struct task_struct *bpf_iter_scx_dsq_next(struct bpf_iter_scx_dsq *it) __ksym __weak;
extern void bpf_iter_scx_dsq_destroy(struct bpf_iter_scx_dsq *it) __ksym __weak;
extern bool scx_bpf_dispatch_from_dsq(struct bpf_iter_scx_dsq *it__iter, struct task_struct *p,
				      u64 dsq_id, u64 enq_flags) __ksym __weak;

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

s32 BPF_STRUCT_OPS(t_select_cpu, struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	bool is_idle = false;

	return scx_bpf_select_cpu_dfl(p, prev_cpu, wake_flags, &is_idle);
}

void BPF_STRUCT_OPS(t_enqueue, struct task_struct *p, u64 enq_flags)
{
	scx_bpf_dispatch(p, 1, SCX_SLICE_DFL, enq_flags);
}

void BPF_STRUCT_OPS(t_dispatch, s32 cpu)
{
	scx_bpf_consume(1);
}

static int rebalance(void *map, int *key, struct bpf_timer *timer)
{
	struct task_struct *p;

	bpf_for_each(scx_dsq, p, 1, 0) {
		scx_bpf_dispatch_from_dsq(BPF_FOR_EACH_ITER, p, SCX_DSQ_GLOBAL, 0);
		break;
	}
	bpf_timer_start(timer, 1000000, 0);
	return 0;
}

s32 BPF_STRUCT_OPS_SLEEPABLE(t_init)
{
	u32 key = 0;
	struct timer_slot *slot = bpf_map_lookup_elem(&timers, &key);

	bpf_printk("t starting");
	if (!slot)
		return -1;
	bpf_timer_init(&slot->timer, &timers, 1);
	bpf_timer_set_callback(&slot->timer, rebalance);
	bpf_timer_start(&slot->timer, 1000000, 0);
	return scx_bpf_create_dsq(1, -1);
}

SEC(".struct_ops.link")
struct sched_ext_ops t_ops = {
	.select_cpu = (void *)t_select_cpu,
	.enqueue = (void *)t_enqueue,
	.dispatch = (void *)t_dispatch,
	.init = (void *)t_init,
	.name = "t",
};
