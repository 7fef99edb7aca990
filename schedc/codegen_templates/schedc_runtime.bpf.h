/* SPDX-License-Identifier: GPL-2.0 */
/*
 * schedc runtime for sched_ext BPF programs.
 *
 * Everything a generated (or hand-written) schedc policy needs on top of vmlinux.h: section
 * and map macros, the BPF helpers it calls, the sched_ext kfuncs with their 6.12 and 6.13+
 * names, and small arithmetic helpers whose results are defined for every input (no division
 * by zero, no signed division, which BPF before cpu=v4 cannot do).
 *
 * One object runs on 6.12 and on later kernels: kfuncs that were renamed in 6.13 are declared
 * weak under both names; libbpf resolves the one the running kernel has and leaves the other
 * at address 0, and the verifier drops the branch that calls it.
 *
 * If you also use libbpf's <bpf/bpf_helpers.h>, include it before this file.
 */
#ifndef SCHEDC_RUNTIME_BPF_H
#define SCHEDC_RUNTIME_BPF_H

/* vmlinux.h of newer bpftool also declares kfuncs, without the attributes used here. */
#define BPF_NO_KFUNC_PROTOTYPES
#include "vmlinux.h"

#ifndef __BPF_HELPERS__
#define SEC(name) __attribute__((section(name), used))
#define __always_inline inline __attribute__((always_inline))
#define __weak __attribute__((weak))
#define __ksym __attribute__((section(".ksyms")))
#define __uint(name, val) int (*name)[val]
#define __type(name, val) typeof(val) *name

static void *(* const bpf_map_lookup_elem)(void *map, const void *key) =
	(void *)BPF_FUNC_map_lookup_elem;
static __u64 (* const bpf_ktime_get_ns)(void) = (void *)BPF_FUNC_ktime_get_ns;
static long (* const bpf_probe_read_kernel)(void *dst, __u32 size, const void *unsafe_ptr) =
	(void *)BPF_FUNC_probe_read_kernel;
static long (* const bpf_probe_read_kernel_str)(void *dst, __u32 size, const void *unsafe_ptr) =
	(void *)BPF_FUNC_probe_read_kernel_str;
static void *(* const bpf_task_storage_get)(void *map, struct task_struct *task, void *value,
					    __u64 flags) = (void *)BPF_FUNC_task_storage_get;
#endif /* __BPF_HELPERS__ */

#ifndef NULL
#define NULL ((void *)0)
#endif
#ifndef ENOMEM
#define ENOMEM 12
#endif

#define SCHEDC_KSYM_EXISTS(sym) (!!(sym))
#define SCHEDC_STORAGE_CREATE 1ULL	/* BPF_LOCAL_STORAGE_GET_F_CREATE */
#define SCHEDC_PF_KTHREAD 0x00200000	/* include/linux/sched.h: PF_KTHREAD */
#define SCHEDC_NICE_0_PRIO 120		/* static_prio of nice 0 */
#define SCHEDC_NUMA_NO_NODE (-1)
#define SCHEDC_MAX_CPUS 1024
_Static_assert((SCHEDC_MAX_CPUS & (SCHEDC_MAX_CPUS - 1)) == 0, "a CPU index is masked by SCHEDC_MAX_CPUS - 1");
#define SCHEDC_COMM_LEN 16

/* ---- sched_ext kfuncs (kernel/sched/ext.c) ---------------------------------------------- */
/* Stable since 6.12. */
extern s32 scx_bpf_create_dsq(u64 dsq_id, s32 node) __ksym;
extern s32 scx_bpf_select_cpu_dfl(struct task_struct *p, s32 prev_cpu, u64 wake_flags,
				  bool *is_idle) __ksym;
extern s32 scx_bpf_dsq_nr_queued(u64 dsq_id) __ksym;
extern void scx_bpf_kick_cpu(s32 cpu, u64 flags) __ksym;
extern s32 scx_bpf_task_cpu(const struct task_struct *p) __ksym;
extern bool scx_bpf_test_and_clear_cpu_idle(s32 cpu) __ksym;
extern s32 scx_bpf_pick_idle_cpu(const struct cpumask *cpus_allowed, u64 flags) __ksym;
extern u32 scx_bpf_nr_cpu_ids(void) __ksym;
extern bool bpf_cpumask_test_cpu(u32 cpu, const struct cpumask *cpumask) __ksym;

/* Renamed in 6.13: scx_bpf_dispatch -> scx_bpf_dsq_insert, and so on. Both are weak. */
extern void scx_bpf_dsq_insert___new(struct task_struct *p, u64 dsq_id, u64 slice,
				     u64 enq_flags) __ksym __weak;
extern void scx_bpf_dispatch___old(struct task_struct *p, u64 dsq_id, u64 slice,
				   u64 enq_flags) __ksym __weak;
extern void scx_bpf_dsq_insert_vtime___new(struct task_struct *p, u64 dsq_id, u64 slice,
					   u64 vtime, u64 enq_flags) __ksym __weak;
extern void scx_bpf_dispatch_vtime___old(struct task_struct *p, u64 dsq_id, u64 slice,
					 u64 vtime, u64 enq_flags) __ksym __weak;
extern bool scx_bpf_dsq_move_to_local___new(u64 dsq_id) __ksym __weak;
extern bool scx_bpf_consume___old(u64 dsq_id) __ksym __weak;

static __always_inline void schedc_insert(struct task_struct *p, u64 dsq_id, u64 slice,
					  u64 enq_flags)
{
	if (SCHEDC_KSYM_EXISTS(scx_bpf_dsq_insert___new))
		scx_bpf_dsq_insert___new(p, dsq_id, slice, enq_flags);
	else
		scx_bpf_dispatch___old(p, dsq_id, slice, enq_flags);
}

static __always_inline void schedc_insert_vtime(struct task_struct *p, u64 dsq_id, u64 slice,
						u64 vtime, u64 enq_flags)
{
	if (SCHEDC_KSYM_EXISTS(scx_bpf_dsq_insert_vtime___new))
		scx_bpf_dsq_insert_vtime___new(p, dsq_id, slice, vtime, enq_flags);
	else
		scx_bpf_dispatch_vtime___old(p, dsq_id, slice, vtime, enq_flags);
}

static __always_inline bool schedc_move_to_local(u64 dsq_id)
{
	if (SCHEDC_KSYM_EXISTS(scx_bpf_dsq_move_to_local___new))
		return scx_bpf_dsq_move_to_local___new(dsq_id);
	return scx_bpf_consume___old(dsq_id);
}

/*
 * Walking a queue (Linux 6.12+): the DSQ iterator gives its tasks in dispatch order, and a task
 * it gave can be moved to this CPU's local queue (dispatch() only). The move was named
 * scx_bpf_dispatch_from_dsq in 6.12, scx_bpf_dsq_move from 6.13. Every iterator is destroyed
 * before the program returns.
 */
struct bpf_iter_scx_dsq;
extern int bpf_iter_scx_dsq_new(struct bpf_iter_scx_dsq *it, u64 dsq_id, u64 flags) __ksym;
extern struct task_struct *bpf_iter_scx_dsq_next(struct bpf_iter_scx_dsq *it) __ksym;
extern void bpf_iter_scx_dsq_destroy(struct bpf_iter_scx_dsq *it) __ksym;
extern bool scx_bpf_dsq_move___new(struct bpf_iter_scx_dsq *it__iter, struct task_struct *p,
				   u64 dsq_id, u64 enq_flags) __ksym __weak;
extern bool scx_bpf_dispatch_from_dsq___old(struct bpf_iter_scx_dsq *it__iter,
					    struct task_struct *p, u64 dsq_id,
					    u64 enq_flags) __ksym __weak;

/* Moves p, which the iterator it has just given, to this CPU's local queue. */
static __always_inline bool schedc_move_task_to_local(struct bpf_iter_scx_dsq *it,
						      struct task_struct *p)
{
	if (SCHEDC_KSYM_EXISTS(scx_bpf_dsq_move___new))
		return scx_bpf_dsq_move___new(it, p, SCX_DSQ_LOCAL, 0);
	return scx_bpf_dispatch_from_dsq___old(it, p, SCX_DSQ_LOCAL, 0);
}

/*
 * A task's slice and virtual time. Newer kernels (7.x here) have setter kfuncs and log every
 * direct write to p->scx.slice / p->scx.dsq_vtime as deprecated; older ones (6.12) have only
 * the fields. The branch not taken is dead code to the verifier of either kernel.
 */
extern bool scx_bpf_task_set_slice___new(struct task_struct *p, u64 slice) __ksym __weak;
extern bool scx_bpf_task_set_dsq_vtime___new(struct task_struct *p, u64 vtime) __ksym __weak;

static __always_inline void schedc_set_slice(struct task_struct *p, u64 slice)
{
	if (SCHEDC_KSYM_EXISTS(scx_bpf_task_set_slice___new))
		scx_bpf_task_set_slice___new(p, slice);
	else
		p->scx.slice = slice;
}

static __always_inline void schedc_set_vtime(struct task_struct *p, u64 vtime)
{
	if (SCHEDC_KSYM_EXISTS(scx_bpf_task_set_dsq_vtime___new))
		scx_bpf_task_set_dsq_vtime___new(p, vtime);
	else
		p->scx.dsq_vtime = vtime;
}

/*
 * A task was queued on a shared queue: wake a CPU that idles so that it dispatches. The CPU
 * select_cpu chose first (it may have claimed it idle without dispatching to it), then any idle
 * CPU the task may run on. SCX_KICK_IDLE does nothing to a CPU that is busy.
 */
static __always_inline void schedc_kick_idle_cpu(struct task_struct *p)
{
	s32 cpu = scx_bpf_task_cpu(p);

	scx_bpf_kick_cpu(cpu, SCX_KICK_IDLE);
	cpu = scx_bpf_pick_idle_cpu(p->cpus_ptr, 0);
	if (cpu >= 0)
		scx_bpf_kick_cpu(cpu, SCX_KICK_IDLE);
}

/* ---- loops the verifier checks once ------------------------------------------------------ */
/*
 * The kernel's numbers iterator (bpf_iter_num, Linux 6.4+): bpf_iter_num_next() gives start,
 * start + 1, ..., end - 1, then NULL. The verifier checks a loop over it once rather than once
 * per step, so a walk over a 1000-CPU set costs what a walk over two does. The value is not
 * bounded for the verifier: test it before indexing. Every iterator is destroyed before the
 * program returns (the verifier insists), so loops over it end with `break`, never `return`.
 */
struct bpf_iter_num;
extern int bpf_iter_num_new(struct bpf_iter_num *it, int start, int end) __ksym;
extern int *bpf_iter_num_next(struct bpf_iter_num *it) __ksym;
extern void bpf_iter_num_destroy(struct bpf_iter_num *it) __ksym;

/* ---- arithmetic with defined results ---------------------------------------------------- */
static __always_inline u64 schedc_sat_sub(u64 a, u64 b)
{
	return a > b ? a - b : 0;
}

/*
 * now - then, or 0 when then is later, for clock readings and slices (differences far below
 * 2^63), without a branch: the sign of the signed difference masks it. The empty asm keeps the
 * mask a mask: clang would fold d & ~(d >> 63) back into a test and a branch, and the verifier
 * then walks all that follows twice, where schedc_sat_sub (right for any u64) has two branches.
 */
static __always_inline u64 schedc_elapsed(u64 now, u64 then)
{
	s64 d = (s64)(now - then);
	s64 later = d >> 63;	/* all ones when then is later */

	asm volatile("" : "+r"(later));
	return (u64)(d & ~later);
}

static __always_inline u64 schedc_div_u64(u64 a, u64 b)
{
	return b ? a / b : 0;
}

/*
 * Signed division through unsigned division: -mcpu=v3 has no signed divide. Signs are handled
 * with arithmetic rather than branches, which would multiply the verifier's paths.
 */
static __always_inline s64 schedc_div_s64(s64 a, s64 b)
{
	u64 sa = (u64)(a >> 63), sb = (u64)(b >> 63);	/* all ones when negative */
	u64 ua = ((u64)a ^ sa) - sa, ub = ((u64)b ^ sb) - sb;
	u64 q = ub ? ua / ub : 0;
	u64 s = sa ^ sb;

	return (s64)((q ^ s) - s);
}

static __always_inline s64 schedc_int(s64 v)
{
	return v;
}

/* A count used as a factor of a duration: negative counts scale to zero. */
static __always_inline u64 schedc_count_u64(s64 v)
{
	return v < 0 ? 0 : (u64)v;
}

/* Durations scaled by counts, and a ratio of durations (dsl/language.py's OPERATORS). */
static __always_inline u64 schedc_mul_count_dur(s64 c, u64 d)
{
	return schedc_count_u64(c) * d;
}

static __always_inline u64 schedc_mul_dur_count(u64 d, s64 c)
{
	return d * schedc_count_u64(c);
}

static __always_inline u64 schedc_div_dur_count(u64 d, s64 c)
{
	return schedc_div_u64(d, schedc_count_u64(c));
}

static __always_inline s64 schedc_div_dur_dur(u64 a, u64 b)
{
	return (s64)schedc_div_u64(a, b);
}

static __always_inline u64 schedc_min_u64(u64 a, u64 b) { return a < b ? a : b; }
static __always_inline u64 schedc_max_u64(u64 a, u64 b) { return a > b ? a : b; }
static __always_inline s64 schedc_min_s64(s64 a, s64 b) { return a < b ? a : b; }
static __always_inline s64 schedc_max_s64(s64 a, s64 b) { return a > b ? a : b; }
static __always_inline u64 schedc_clamp_u64(u64 v, u64 lo, u64 hi)
{
	return v < lo ? lo : (v > hi ? hi : v);
}
static __always_inline s64 schedc_clamp_s64(s64 v, s64 lo, s64 hi)
{
	return v < lo ? lo : (v > hi ? hi : v);
}

/* time_before() of the kernel: correct across u64 wrap-around. */
static __always_inline bool schedc_before(u64 a, u64 b)
{
	return (s64)(a - b) < 0;
}

/* Exponentially weighted moving average, 7/8 old + 1/8 new; the first sample is taken whole. */
static __always_inline u64 schedc_ewma(u64 avg, u64 sample)
{
	return avg ? avg - (avg >> 3) + (sample >> 3) : sample;
}

/* ---- task attributes -------------------------------------------------------------------- */
static __always_inline void schedc_read_comm(u8 *buf, struct task_struct *p)
{
	bpf_probe_read_kernel(buf, SCHEDC_COMM_LEN, p->comm);
}

/* The name of the task p's pointer FIELD names (real_parent, group_leader): empty if none. */
#define schedc_read_comm_via(buf, p, field)                                            \
	do {                                                                           \
		struct task_struct *schedc_other = NULL;                               \
                                                                                       \
		bpf_probe_read_kernel(&schedc_other, sizeof(schedc_other), &(p)->field); \
		if (schedc_other)                                                      \
			bpf_probe_read_kernel((buf), SCHEDC_COMM_LEN, schedc_other->comm); \
	} while (0)

static __always_inline s64 schedc_task_uid(struct task_struct *p)
{
	const struct cred *cred = NULL;
	kuid_t uid = {};

	bpf_probe_read_kernel(&cred, sizeof(cred), &p->cred);
	if (cred)
		bpf_probe_read_kernel(&uid, sizeof(uid), &cred->euid);
	return uid.val;
}

/* Word i (8 bytes, little-endian) of a name buffer, for masked string comparisons. */
static __always_inline u64 schedc_word(const u8 *buf, u32 i)
{
	u64 w;

	__builtin_memcpy(&w, buf + 8 * i, sizeof(w));
	return w;
}

/*
 * Glob matching over a 16-byte name with bit sets instead of backtracking: bit j of a state
 * means "the pattern so far matches the first j characters", and each pattern character is
 * one shift-and-mask step. Everything is branch-free arithmetic (SWAR byte compares): a
 * data-dependent branch per character would multiply the paths the kernel verifier walks.
 */
static __always_inline u32 schedc_zero_bytes8(u64 w)
{
	u64 hi = ~(((w & 0x7f7f7f7f7f7f7f7fULL) + 0x7f7f7f7f7f7f7f7fULL) | w |
		   0x7f7f7f7f7f7f7f7fULL);

	/* gather the high bit of each byte: bit i <=> byte i of w is zero */
	return (u32)(((hi >> 7) * 0x0102040810204080ULL) >> 56);
}

/* Bit i set where byte i of the 16-byte name (w0, w1) equals c. */
static __always_inline u32 schedc_byte_positions(u64 w0, u64 w1, u8 c)
{
	u64 rep = (u64)c * 0x0101010101010101ULL;

	return schedc_zero_bytes8(w0 ^ rep) | (schedc_zero_bytes8(w1 ^ rep) << 8);
}

/* The '*' step: every position at or after the first one matched so far (none if none). */
static __always_inline u32 schedc_glob_star(u32 state, u32 valid)
{
	return valid & ~((state & -state) - 1);
}

/* The task's cgroup (v2 default hierarchy) at depth `level`, or NULL. */
static __always_inline struct cgroup *schedc_task_cgroup_at(struct task_struct *p, int level)
{
	struct css_set *cset = NULL;
	struct cgroup *cgrp = NULL, *anc = NULL;
	int depth = 0;

	bpf_probe_read_kernel(&cset, sizeof(cset), &p->cgroups);
	if (!cset)
		return NULL;
	bpf_probe_read_kernel(&cgrp, sizeof(cgrp), &cset->dfl_cgrp);
	if (!cgrp)
		return NULL;
	bpf_probe_read_kernel(&depth, sizeof(depth), &cgrp->level);
	if (depth < level)
		return NULL;
	bpf_probe_read_kernel(&anc, sizeof(anc), &cgrp->ancestors[level]);
	return anc;
}

/* Reads the name of the task's cgroup at depth `level` (1 = child of the root) into buf. */
static __always_inline bool schedc_cgroup_name(struct task_struct *p, int level, u8 *buf,
					       u32 size)
{
	struct cgroup *cgrp = schedc_task_cgroup_at(p, level);
	struct kernfs_node *kn = NULL;
	const char *name = NULL;

	if (!cgrp)
		return false;
	bpf_probe_read_kernel(&kn, sizeof(kn), &cgrp->kn);
	if (!kn)
		return false;
	bpf_probe_read_kernel(&name, sizeof(name), &kn->name);
	if (!name)
		return false;
	return bpf_probe_read_kernel_str(buf, size, name) > 0;
}

/* ---- exit information, read by loaders after the scheduler was ejected ------------------ */
struct schedc_exit_info {
	s32 kind;
	s64 exit_code;
	char reason[128];
	char msg[1024];
};

#define SCHEDC_EXIT_INFO_DEFINE() struct schedc_exit_info schedc_exit SEC(".data")

#define SCHEDC_RECORD_EXIT(ei)							\
	do {									\
		bpf_probe_read_kernel_str(schedc_exit.reason,			\
					  sizeof(schedc_exit.reason), (ei)->reason);	\
		bpf_probe_read_kernel_str(schedc_exit.msg,			\
					  sizeof(schedc_exit.msg), (ei)->msg);	\
		schedc_exit.exit_code = (ei)->exit_code;			\
		schedc_exit.kind = (ei)->kind;					\
	} while (0)

#endif /* SCHEDC_RUNTIME_BPF_H */
