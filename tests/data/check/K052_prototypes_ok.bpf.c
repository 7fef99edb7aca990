/*
 * K052: declarations the kernel's BTF agrees with, written other ways: typedefs of the same
 * width and signedness (unsigned long long for u64, int for s32), const, a typedef of the
 * struct (cpumask_t), char for the kernel's (unsigned) char, parameters of array and function
 * type (C makes them pointers, as the kernel's are), and __weak kfuncs one kernel
 * lacks, called only where it has them (K050's business). K052/K053 negative: nothing to report.
 * expect: clean
 * expect[matrix@7.2]: clean
 */
#define BPF_NO_KFUNC_PROTOTYPES
#include "vmlinux.h"

#define SEC(name) __attribute__((section(name), used))
#define __ksym __attribute__((section(".ksyms")))
#define __weak __attribute__((weak))
#define bpf_ksym_exists(sym) ({ _Static_assert(!__builtin_constant_p(!!sym), "weak"); !!sym; })

char _license[] SEC("license") = "GPL";
typedef unsigned long long my_u64;
extern int scx_bpf_pick_idle_cpu(const cpumask_t *cpus_allowed, my_u64 flags) __ksym;
extern const struct cpumask *scx_bpf_get_idle_cpumask(void) __ksym;
extern void scx_bpf_put_idle_cpumask(const struct cpumask *cpumask) __ksym;
extern void scx_bpf_error_bstr(char fmt[], unsigned long long data[], u32 data_len) __ksym;
extern int bpf_rbtree_add_impl(struct bpf_rb_root *root, struct bpf_rb_node *node,
			       bool(less)(struct bpf_rb_node *a, const struct bpf_rb_node *b),
			       void *meta, __u64 off) __ksym;
extern _Bool scx_bpf_dsq_move_to_local___v2___compat(u64 dsq_id, u64 enq_flags) __ksym __weak;
extern bool scx_bpf_consume___old(u64 dsq_id) __ksym __weak;
extern u64 scx_bpf_now(void) __ksym __weak;

static bool before(struct bpf_rb_node *a, const struct bpf_rb_node *b)
{
	return a < b;
}

s32 SEC("struct_ops/t_dispatch") t_dispatch(unsigned long long *ctx)
{
	const struct cpumask *idle = scx_bpf_get_idle_cpumask();
	unsigned long long data[1] = { 0 };
	char fmt[] = "no cpu";

	if (scx_bpf_pick_idle_cpu(idle, 0) < 0)
		scx_bpf_error_bstr(fmt, data, sizeof(data));
	scx_bpf_put_idle_cpumask(idle);
	bpf_rbtree_add_impl((void *)0, (void *)0, before, (void *)0, 0);
	if (bpf_ksym_exists(scx_bpf_now) && scx_bpf_now() == 0)
		return 0;
	if (bpf_ksym_exists(scx_bpf_dsq_move_to_local___v2___compat))
		scx_bpf_dsq_move_to_local___v2___compat(1, 0);
	else
		scx_bpf_consume___old(1);
	return 0;
}

SEC(".struct_ops.link") struct sched_ext_ops t_ops = {
	.dispatch = (void *)t_dispatch,
	.name = "t",
};
