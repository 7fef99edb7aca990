"""Which class and queue a DSL policy puts a task in, answered by the policy's own compiled
class conditions run on the host: the generated C (the exact `schedc_classify` that goes into
the BPF object) is compiled for the host against fake kernel objects built from vmlinux.h,
with the BPF helpers replaced by host functions (probe reads become memcpy). No VM, no
kernel: the same harness tests/test_matchers_host.py checks against a Python oracle.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from schedc.compiler.toolchain import Toolchain, runtime_dir
from schedc.dsl.ir import TClass, TypedPolicy
from schedc.settings import EnvironmentProblem

RUN_TIMEOUT_S = 20.0
NOW_NS = 1 << 40  # the classifier's `now`: far enough from 0 for any since_ran

HARNESS_PRELUDE = r"""
#define BPF_NO_KFUNC_PROTOTYPES
#include "vmlinux.h"
/* libc's headers clash with vmlinux.h: declare the few functions used. */
int printf(const char *fmt, ...);
void *calloc(unsigned long n, unsigned long size);
void *memcpy(void *dst, const void *src, unsigned long n);
void *memset(void *dst, int c, unsigned long n);
char *strncpy(char *dst, const char *src, unsigned long n);
unsigned long strnlen(const char *s, unsigned long n);

/* Host stand-ins for the BPF helpers the runtime header would declare. */
#define __BPF_HELPERS__
#define SEC(name)
#define __always_inline inline __attribute__((always_inline))
#define __weak __attribute__((weak))
#define __ksym __attribute__((weak))	/* kfuncs resolve to 0: never called here */
#define __uint(name, val) int name
#define __type(name, val) val *name
static long bpf_probe_read_kernel(void *dst, u32 size, const void *src)
{
	memcpy(dst, src, size);
	return 0;
}
static long bpf_probe_read_kernel_str(void *dst, u32 size, const void *src)
{
	size_t n = strnlen(src, size - 1);
	memcpy(dst, src, n);
	((char *)dst)[n] = 0;
	return n + 1;
}
static void *bpf_task_storage_get(void *map, struct task_struct *p, void *v, u64 flags)
{
	return 0;
}
static void *bpf_map_lookup_elem(void *map, const void *key) { return 0; }
static u64 bpf_ktime_get_ns(void) { return 0; }
"""


@dataclass(frozen=True)
class HostTask:
    """A task as the class conditions see it. Durations in nanoseconds."""

    comm: str = "task"
    parent_comm: str = "bash"
    process_comm: str | None = None  # its process's name; None: it is the main thread itself
    cgroup: tuple[str, ...] = ()  # path components below the root: "/a/b" is ("a", "b")
    kthread: bool = False
    nice: int = 0
    uid: int = 0
    pid: int = 1000
    tgid: int = 1000
    weight: int = 100
    nr_cpus_allowed: int = 4
    avg_runtime_ns: int = 0
    wakeup_rate: int = 0
    since_ran_ns: int = 0


def _c_string(s: str) -> str:
    return json.dumps(s)  # a JSON string of ASCII-safe text is a valid C string literal


def harness_main(
    tasks: list[HostTask], with_stats: bool, *, tables: str = "", after: str = ""
) -> str:
    """A main() that builds each task from a table, classifies it and prints "task I CLASS";
    `tables` are more definitions before it, `after` more statements at its end (the tests'
    glob matcher calls)."""
    rows = []
    for t in tasks:
        parts = ", ".join(_c_string(p) for p in t.cgroup) or "0"
        rows.append(
            f"\t{{ {_c_string(t.comm)}, {_c_string(t.parent_comm)}, "
            f"{'0' if t.process_comm is None else _c_string(t.process_comm)}, {{ {parts} }}, "
            f"{len(t.cgroup)}, {int(t.kthread)}, {t.nice}, {t.uid}, {t.pid}, {t.tgid}, "
            f"{t.weight}, {t.nr_cpus_allowed}, {t.avg_runtime_ns}ULL, {t.wakeup_rate}ULL, "
            f"{t.since_ran_ns}ULL }},"
        )
    if with_stats:
        stats = (
            "\t\tstruct schedc_task stats = {};\n"
            "\t\tstats.avg_runtime = f->avg_runtime;\n"
            "\t\tstats.wakeup_rate = f->wakeup_rate;\n"
            f"\t\tstats.last_stopped = {NOW_NS}ULL - f->since_ran;\n"
            "\t\tstruct schedc_task *tctx = &stats;\n"
        )
    else:  # the policy keeps no per-task state: its classify() never touches tctx
        stats = "\t\tstruct schedc_task *tctx = 0;\n"
    table = "\n".join(rows)
    return f"""
struct fake {{ const char *comm, *parent, *process; const char *cg[8]; int depth, kthread, nice, uid, pid,
	tgid, weight, nr_cpus_allowed; unsigned long long avg_runtime, wakeup_rate, since_ran; }};
static const struct fake tasks[] = {{
{table}
\t{{ 0 }}
}};
{tables}
int main(void)
{{
\tfor (int i = 0; tasks[i].comm; i++) {{
\t\tconst struct fake *f = &tasks[i];
\t\tstruct task_struct task = {{}}, parent = {{}}, leader = {{}};
\t\tstruct cred cred = {{}};
\t\tstruct css_set cset = {{}};
\t\tstruct kernfs_node kn[9] = {{}};
\t\tstruct cgroup *cg[9];
{stats}
\t\tfor (int l = 0; l <= f->depth; l++) {{
\t\t\tcg[l] = calloc(1, sizeof(struct cgroup) + 9 * sizeof(void *));
\t\t\tcg[l]->level = l;
\t\t\tcg[l]->kn = &kn[l];
\t\t\tkn[l].name = l ? f->cg[l - 1] : "";
\t\t}}
\t\tfor (int l = 0; l <= f->depth; l++)
\t\t\tcg[f->depth]->ancestors[l] = cg[l];
\t\tcset.dfl_cgrp = cg[f->depth];
\t\ttask.cgroups = &cset;
\t\tstrncpy(task.comm, f->comm, 15);
\t\tstrncpy(parent.comm, f->parent, 15);
\t\ttask.real_parent = &parent;
\t\tif (f->process)
\t\t\tstrncpy(leader.comm, f->process, 15);
\t\ttask.group_leader = f->process ? &leader : &task;
\t\tcred.euid.val = f->uid;
\t\ttask.cred = &cred;
\t\ttask.flags = f->kthread ? SCHEDC_PF_KTHREAD : 0;
\t\ttask.static_prio = 120 + f->nice;
\t\ttask.pid = f->pid;
\t\ttask.tgid = f->tgid;
\t\ttask.scx.weight = f->weight;
\t\ttask.nr_cpus_allowed = f->nr_cpus_allowed;
\t\tprintf("task %d %u\\n", i, schedc_classify(&task, tctx, {NOW_NS}ULL));
\t}}
{after}\treturn 0;
}}
"""


def build_and_run(
    toolchain: Toolchain, folder: Path, c_text: str, main: str, prelude: str = HARNESS_PRELUDE
) -> str:
    """The generated C between `prelude` (the host stand-ins) and `main`, compiled for the
    host and run; its standard output. Raises EnvironmentProblem when the host compile or the
    run fails."""
    gen = folder / "policy.bpf.c"
    gen.write_text(c_text, encoding="utf-8")
    src = folder / "harness.c"
    src.write_text(prelude + f'#include "{gen}"\n' + main, encoding="utf-8")
    exe = folder / "harness"
    command = [
        str(toolchain.clang),
        "-O1",
        "-w",
        "-I",
        str(runtime_dir()),
        "-I",
        str(toolchain.vmlinux_dir),
        str(src),
        "-o",
        str(exe),
        "-Wl,--unresolved-symbols=ignore-all",
    ]
    built = subprocess.run(
        command, capture_output=True, text=True, check=False, timeout=RUN_TIMEOUT_S * 6
    )
    if built.returncode != 0:
        raise EnvironmentProblem(
            f"the class conditions did not compile for the host: {built.stderr[-600:]}",
            "explain_classification needs clang able to link a host program (libc)",
        )
    ran = subprocess.run(
        [str(exe)], capture_output=True, text=True, check=False, timeout=RUN_TIMEOUT_S
    )
    if ran.returncode != 0:
        raise EnvironmentProblem(
            f"the host classifier exited with status {ran.returncode}: {ran.stderr[-300:]}",
            None,
        )
    return ran.stdout


def classify(
    policy: TypedPolicy, c_text: str, toolchain: Toolchain, tasks: list[HostTask]
) -> list[TClass]:
    """The class of each task, in order: the first class whose compiled condition holds."""
    with_stats = "struct schedc_task {" in c_text
    with tempfile.TemporaryDirectory(prefix="schedc-classify-") as tmp:
        out = build_and_run(toolchain, Path(tmp), c_text, harness_main(tasks, with_stats))
    by_index = {c.index: c for c in policy.classes}
    found: dict[int, TClass] = {}
    for line in out.splitlines():
        word, number, cls = line.split()
        if word == "task" and int(cls) in by_index:
            found[int(number)] = by_index[int(cls)]
    if sorted(found) != list(range(len(tasks))):
        raise EnvironmentProblem("the host classifier did not answer for every task", None)
    return [found[i] for i in range(len(tasks))]
