/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Declarations the small test policies of tests/data/check/ share: the schedc runtime, plus
 * the sched_ext kfuncs it does not declare (6.12 names and 6.13 names, all strong: each test
 * says which kernel it targets) and a bpf_printk() like libbpf's.
 */
#ifndef CHECK_TEST_H
#define CHECK_TEST_H

#include "schedc_runtime.bpf.h"

extern void scx_bpf_dispatch(struct task_struct *p, u64 dsq_id, u64 slice, u64 enq_flags) __ksym;
extern void scx_bpf_dispatch_vtime(struct task_struct *p, u64 dsq_id, u64 slice, u64 vtime,
				   u64 enq_flags) __ksym;
extern bool scx_bpf_consume(u64 dsq_id) __ksym;
extern void scx_bpf_dsq_insert(struct task_struct *p, u64 dsq_id, u64 slice, u64 enq_flags) __ksym;
extern bool scx_bpf_dsq_move_to_local(u64 dsq_id) __ksym;
extern u32 scx_bpf_dispatch_nr_slots(void) __ksym;
extern u32 scx_bpf_reenqueue_local(void) __ksym;
extern struct cgroup *scx_bpf_task_cgroup(struct task_struct *p) __ksym;
extern void bpf_cgroup_release(struct cgroup *cgrp) __ksym;

#ifndef __BPF_HELPERS__	/* libbpf's bpf_helpers.h has its own */
static long (* const bpf_trace_printk)(const char *fmt, u32 fmt_size, ...) = (void *)6;
#define bpf_printk(fmt, args...)					\
({									\
	static const char ___fmt[] = fmt;				\
	bpf_trace_printk(___fmt, sizeof(___fmt), ##args);		\
})
#endif

#define TEST_OPS(name, ...)						\
	SEC(".struct_ops.link") struct sched_ext_ops name = { __VA_ARGS__ }

#endif
