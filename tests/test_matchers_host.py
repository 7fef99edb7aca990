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
from dataclasses import dataclass

import pytest

from schedc.agent.classify import HostTask, build_and_run, harness_main
from schedc.compiler.pipeline import translate


@dataclass
class FakeTask:
    comm: str
    parent: str
    process: str | None  # None: the task is its process's main thread
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
    # names of 9 or more bytes (compared in two words), and bytes that a C character literal
    # must escape: a quote and a backslash
    ("c_long", 'task.comm == "abcdefghijklmno"', lambda t: t.comm == "abcdefghijklmno"),
    ("c_quote", 'task.comm in ["it\'s", "a\\\\b"]', lambda t: t.comm in ("it's", "a\\b")),
    ("c_eight", 'task.comm == "abcdefgh"', lambda t: t.comm == "abcdefgh"),
    ("c_glob3", 'task.comm matches "*\'*\\\\?"',
     lambda t: fnmatch.fnmatchcase(t.comm, "*'*\\?")),
    ("c_parent", 'task.parent.comm == "sshd"', lambda t: t.parent == "sshd"),
    (
        "c_process",
        'task.process.comm in ["firefox", "java"] and task.comm != "java"',
        lambda t: (t.comm if t.process is None else t.process) in ("firefox", "java")
        and t.comm != "java",
    ),
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
    "*sql*d", "py?hon", "firefox", "java",
    # near misses of the names above: one bit off in the first byte ('c' is 'b' | 1), a byte
    # more or less at the end of a word; and the escaped bytes
    "cash", "abcdefgh", "abcdefghi", "abcdefg", "abcdefghijklmnn", "abcdefghijklmn",
    "it's", "a\\b", "it", "a\\", "'", "\\", "x'y\\z", "'\\",
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
        process=rnd.choice([None, None, "firefox", "java", "firefox2", "", "bash"]),
        cgroup=rnd.choice(CGROUPS),
        kthread=rnd.random() < 0.3,
        nice=rnd.randint(-20, 19),
        uid=rnd.choice([0, 1000, 1001]),
        pid=rnd.choice([1, 2, 3, 4242]),
        weight=rnd.choice([1, 50, 99, 100, 10000]),
    )


def host_task(t: FakeTask) -> HostTask:
    return HostTask(
        comm=t.comm,
        parent_comm=t.parent,
        process_comm=t.process,
        cgroup=tuple(t.cgroup),
        kthread=t.kthread,
        nice=t.nice,
        uid=t.uid,
        pid=t.pid,
        weight=t.weight,
    )


def harness(tasks: list[FakeTask], glob_calls: list[tuple[str, str]]) -> str:
    """explain_classification's main(): each fake task's class, then the glob matchers called
    on names ("I RESULT" lines). These policies track no statistics: no tctx."""
    calls = [f"\t{{ {func}, {json.dumps(name)} }}," for func, name in glob_calls]
    tables = f"""struct glob_call {{ bool (*fn)(const u8 *); const char *name; }};
static const struct glob_call calls[] = {{
{chr(10).join(calls)}
\t{{ 0 }}
}};
"""
    after = """\tfor (int i = 0; calls[i].fn; i++) {
\t\tu8 buf[16] = {};

\t\tstrncpy((char *)buf, calls[i].name, 15);
\t\tprintf("%d %d\\n", i, calls[i].fn(buf));
\t}
"""
    return harness_main([host_task(t) for t in tasks], False, tables=tables, after=after)


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
    tasks += [FakeTask(n, "sshd", None, c, False, 0, 0, 3, 100) for n in NAMES for c in CGROUPS[:3]]
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


def test_pinned_means_exactly_one_allowed_cpu(toolchain, tmp_path):
    src = tmp_path / "p.sched"
    src.write_text(
        'scheduler p "pinned" {\n  class one when task.pinned\n  class many otherwise\n'
        "  queue q for one, many fifo\n}\n"
    )
    result = translate(src)
    assert result.ok, result.diagnostics
    counts = [1, 2, 3, 4, 8, 64, 1, 0]
    tasks = [HostTask(comm=f"t{i}", nr_cpus_allowed=n) for i, n in enumerate(counts)]
    out = build_and_run(toolchain, tmp_path, result.c_text, harness_main(tasks, False))
    got = [int(line.split()[2]) for line in out.splitlines()]
    assert got == [0 if n == 1 else 1 for n in counts]
