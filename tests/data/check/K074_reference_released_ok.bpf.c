/*
 * K074 negative: the map slot's old task released when it is not NULL; an acquired task stored in the
 * slot and the one it displaces returned to a helper that releases it.
 * expect: clean
 */
#include "check_test.h"

#ifndef __kptr
#define __kptr __attribute__((btf_type_tag("kptr")))
#endif
static void *(* const bpf_kptr_xchg)(void *dst, void *ptr) = (void *) 194;
extern struct task_struct *bpf_task_acquire(struct task_struct *p) __ksym;
extern void bpf_task_release(struct task_struct *p) __ksym;

char _license[] SEC("license") = "GPL";

struct slot {
	struct task_struct __kptr *task;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct slot);
} slots SEC(".maps");

static void drop(struct task_struct *old)
{
	if (old)
		bpf_task_release(old);
}

s32 SEC("struct_ops/t_running") t_running(unsigned long long *ctx)
{
	struct task_struct *p = (struct task_struct *)ctx[0], *mine, *old;
	struct slot *s;
	u32 zero = 0;

	s = bpf_map_lookup_elem(&slots, &zero);
	if (!s)
		return 0;
	old = bpf_kptr_xchg(&s->task, NULL);
	if (old)
		bpf_task_release(old);
	mine = bpf_task_acquire(p);
	if (!mine)
		return 0;
	drop(bpf_kptr_xchg(&s->task, mine));
	return 0;
}

TEST_OPS(t_ops, .running = (void *)t_running, .name = "t");
