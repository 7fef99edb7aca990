"""The generated matcher C, executed: the class conditions and glob matchers that schedc emits
are compiled for the host (same source, host target) against fake kernel objects built from
vmlinux.h, and their answers are compared with a Python oracle over many tasks.

BPF helpers are replaced by host functions (probe reads become memcpy); everything else is
the exact C that goes into the BPF object.
"""

from __future__ import annotations

import fnmatch
import json
import random
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from schedc.agent.classify import HARNESS_PRELUDE  # the host stand-ins explain_classification uses
from schedc.compiler.pipeline import translate
from schedc.compiler.toolchain import runtime_dir


@dataclass
class FakeTask:
    comm: str
    parent: str
    cgroup: list[str]  # path components below the root
    kthread: bool
    nice: int
    uid: int
    pid: int
    weight: int


CLASSES = [
    ("c_eq", 'task.comm == "bash"', lambda t: t.comm == "bash"),
    ("c_in", 'task.comm in ["make", "ninja", "a"]', lambda t: t.comm in ("make", "ninja", "a")),
    ("c_pre", 'task.comm startswith "kworker"', lambda t: t.comm.startswith("kworker")),
    ("c_glob1", 'task.comm matches "*sql*d"', lambda t: fnmatch.fnmatchcase(t.comm, "*sql*d")),
    ("c_glob2", 'task.comm matches "py?hon*"', lambda t: fnmatch.fnmatchcase(t.comm, "py?hon*")),
    ("c_parent", 'task.parent.comm == "sshd"', lambda t: t.parent == "sshd"),
    (
        "c_cgroup",
        'task.cgroup under "/system.slice/nginx.service"',
        lambda t: t.cgroup[:2] == ["system.slice", "nginx.service"],
    ),
    ("c_kthread", "task.kthread and task.nice < 0", lambda t: t.kthread and t.nice < 0),
    ("c_ids", "task.uid == 1000 or task.pid in [1, 2]", lambda t: t.uid == 1000 or t.pid in (1, 2)),
    ("c_weight", "not (task.weight >= 100) and task.nice != 5", lambda t: t.weight < 100 and t.nice != 5),
]

NAMES = [
    "bash", "make", "ninja", "a", "", "kworker/0:1", "kworker", "kworke", "mysqld", "postgresqld",
    "sqld", "mysql", "python3", "python", "pyXhon", "pthon", "sshd", "bash2", "abcdefghijklmno",
    "*sql*d", "py?hon",
]
CGROUPS = [
    [], ["system.slice"], ["system.slice", "nginx.service"], ["system.slice", "nginx.service", "x"],
    ["system.slice", "nginx.servicex"], ["system.slice", "nginx"], ["user.slice", "nginx.service"],
]


def random_task(rnd: random.Random) -> FakeTask:
    def name() -> str:
        if rnd.random() < 0.7:
            return rnd.choice(NAMES)
        return "".join(rnd.choice("pysqlhdonkwer*?") for _ in range(rnd.randint(0, 15)))

    return FakeTask(
        comm=name(),
        parent=rnd.choice(["sshd", "init", "sshd2", "", "bash"]),
        cgroup=rnd.choice(CGROUPS),
        kthread=rnd.random() < 0.3,
        nice=rnd.randint(-20, 19),
        uid=rnd.choice([0, 1000, 1001]),
        pid=rnd.choice([1, 2, 3, 4242]),
        weight=rnd.choice([1, 50, 99, 100, 10000]),
    )


def c_string(s: str) -> str:
    return json.dumps(s)


def harness(tasks: list[FakeTask], glob_calls: list[tuple[str, str]]) -> str:
    """A main() that builds each fake task from a table and prints its class, then calls the
    glob matchers on names."""
    rows = []
    for t in tasks:
        parts = ", ".join(c_string(p) for p in t.cgroup) or "0"
        rows.append(
            f"\t{{ {c_string(t.comm)}, {c_string(t.parent)}, {{ {parts} }}, {len(t.cgroup)}, "
            f"{int(t.kthread)}, {t.nice}, {t.uid}, {t.pid}, {t.weight} }},"
        )
    calls = [f"\t{{ {func}, {c_string(name)} }}," for func, name in glob_calls]
    return f"""
struct fake {{ const char *comm, *parent; const char *cg[8]; int depth, kthread, nice, uid, pid, weight; }};
static const struct fake tasks[] = {{
{chr(10).join(rows)}
\t{{ 0 }}
}};
struct glob_call {{ bool (*fn)(const u8 *); const char *name; }};
static const struct glob_call calls[] = {{
{chr(10).join(calls)}
\t{{ 0 }}
}};

int main(void)
{{
\t/* These policies track no statistics: their classify() never touches tctx. */

\tfor (int i = 0; tasks[i].comm; i++) {{
\t\tconst struct fake *f = &tasks[i];
\t\tstruct task_struct task = {{}}, parent = {{}};
\t\tstruct cred cred = {{}};
\t\tstruct css_set cset = {{}};
\t\tstruct kernfs_node kn[9] = {{}};
\t\tstruct cgroup *cg[9];

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
\t\tcred.euid.val = f->uid;
\t\ttask.cred = &cred;
\t\ttask.flags = f->kthread ? SCHEDC_PF_KTHREAD : 0;
\t\ttask.static_prio = 120 + f->nice;
\t\ttask.pid = f->pid;
\t\ttask.scx.weight = f->weight;
\t\tprintf("task %d %u\\n", i, schedc_classify(&task, 0, 0));
\t}}
\tfor (int i = 0; calls[i].fn; i++) {{
\t\tu8 buf[16] = {{}};

\t\tstrncpy((char *)buf, calls[i].name, 15);
\t\tprintf("%d %d\\n", i, calls[i].fn(buf));
\t}}
\treturn 0;
}}
"""


def build_and_run(toolchain, tmp_path: Path, c_text: str, main: str) -> str:
    gen = tmp_path / "policy.bpf.c"
    gen.write_text(c_text)
    src = tmp_path / "harness.c"
    src.write_text(HARNESS_PRELUDE + f'#include "{gen}"\n' + main)
    exe = tmp_path / "harness"
    proc = subprocess.run(
        [toolchain.clang, "-O1", "-w", "-I", str(runtime_dir()), "-I", str(toolchain.vmlinux_dir),
         str(src), "-o", str(exe), "-Wl,--unresolved-symbols=ignore-all"],
        capture_output=True, text=True, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return subprocess.run([str(exe)], capture_output=True, text=True, check=True, timeout=60).stdout


def test_generated_class_conditions_agree_with_the_oracle(toolchain, tmp_path):
    policy = ['scheduler m "matchers" {']
    policy += [f"  class {name} when {cond}" for name, cond, _ in CLASSES]
    policy += ["  class other otherwise"]
    policy += ["  queue q for " + ", ".join([c for c, _, _ in CLASSES] + ["other"]) + " fifo", "}"]
    src = tmp_path / "m.sched"
    src.write_text("\n".join(policy) + "\n")
    result = translate(src)
    assert result.ok, result.diagnostics
    rnd = random.Random(1234)
    tasks = [random_task(rnd) for _ in range(400)]
    tasks += [FakeTask(n, "sshd", c, False, 0, 0, 3, 100) for n in NAMES for c in CGROUPS[:3]]
    out = build_and_run(toolchain, tmp_path, result.c_text, harness(tasks, []))
    got = [int(line.split()[2]) for line in out.splitlines()]
    want = []
    for t in tasks:
        idx = next((i for i, (_, _, pred) in enumerate(CLASSES) if pred(t)), len(CLASSES))
        want.append(idx)
    mismatches = [(t, g, w) for t, g, w in zip(tasks, got, want, strict=True) if g != w]
    assert mismatches == []
    # The sample exercises every class.
    assert set(want) == set(range(len(CLASSES) + 1))


@pytest.mark.parametrize("seed", range(3))
def test_glob_matchers_agree_with_fnmatch(toolchain, tmp_path, seed):
    rnd = random.Random(seed)
    alphabet = "ab*?"
    patterns = sorted({
        "".join(rnd.choice(alphabet) for _ in range(rnd.randint(1, 7))) for _ in range(12)
    } | {"*", "a*", "*b", "?", "a?b*"})
    patterns = [p for p in patterns if p.replace("*", "")] or ["a*"]
    body = ['scheduler g "globs" {']
    body += [f'  class g{i} when task.comm matches "{p}"' for i, p in enumerate(patterns)]
    body += ["  class other otherwise", "  queue q for "
             + ", ".join([f"g{i}" for i in range(len(patterns))] + ["other"]) + " fifo", "}"]
    src = tmp_path / "g.sched"
    src.write_text("\n".join(body) + "\n")
    result = translate(src)
    assert result.ok, result.diagnostics
    funcs = dict(re.findall(r'/\* task name matches the glob "(.*)" \*/\nstatic __always_inline '
                            r"bool (schedc_glob_\d+)", result.c_text))
    assert set(funcs) == set(patterns)
    names = {"".join(rnd.choice("ab") for _ in range(rnd.randint(0, 15))) for _ in range(60)}
    names |= {"", "a", "b", "ab", "ba", "aaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbb"}
    calls = [(funcs[p], n) for p in patterns for n in sorted(names)]
    out = build_and_run(toolchain, tmp_path, result.c_text, harness([], calls))
    pattern_of = {f: p for p, f in funcs.items()}
    results = [line.split() for line in out.splitlines()]
    assert [int(i) for i, _ in results] == list(range(len(calls)))
    wrong = [
        (pattern_of[func], name, got)
        for (func, name), (_, got) in zip(calls, results, strict=True)
        if bool(int(got)) != fnmatch.fnmatchcase(name, pattern_of[func])
    ]
    assert wrong == []
