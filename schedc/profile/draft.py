"""A first DSL policy (docs/dsl.md) whose classes are a profile's task groups: a DRAFT that
compiles, for a person or an agent to edit and test, not a tuned scheduler.

Each group becomes a class matched by its names (`task.comm`, and `task.process.comm` for
threads named apart from their process) and, where it is stable, its cgroup (`task.cgroup
under`); its label picks the queue:

| label | queue (dispatch order) | class | slice |
|---|---|---|---|
| latency-critical | `critical_q` fifo, first | `preempts`, and only while `task.avg_runtime` stays under 4 x its runtime per run (p90) | 2 x p90, 0.5-5 ms |
| interactive | `interactive_q` fifo | the same bound on `task.avg_runtime` | 2 x p90, 1-10 ms |
| io-bound, none | `normal_q` vtime, with `rest` | its names | the default 20 ms |
| batch | `batch_q` vtime, last | its names | 4 x p90, 20-100 ms |

Strict dispatch with aging (100 ms), so the batch work cannot starve. Groups with the same
matcher share a class; past the DSL's 32 classes the smallest groups are merged into one class
per label. Strings from the profile are escaped per the DSL's rules (only `\\"` and `\\\\`);
a name with characters a string cannot hold (control characters, undecodable bytes) is
matched by a glob with `?` for each such byte, and a group that leaves too little to match
is left out, with a comment saying so.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from schedc.dsl.language import (
    COMM_LEN,
    MAX_CGROUP_DEPTH,
    MAX_CGROUP_NAME,
    MAX_CLASSES,
    MAX_GLOB_LEN,
    MAX_LIST_ITEMS,
    NAME_RE,
)
from schedc.profile.model import Label, Profile, TaskGroup
from schedc.profile.scenario import comment_text

# Every word of the language (docs/dsl.md section 2) and the functions: a generated class
# name is none of them, although statement keywords could name a class, for readability.
DSL_WORDS = frozenset(
    (
        "scheduler tags param in true false counter counts of class when otherwise on cpus "
        "preempts queue for fifo vtime ordered by ascending descending deadline lag dispatch "
        "then aging weighted shares slice select cpu watchdog or and not task matches "
        "startswith under min max clamp"
    ).split()
)
DEFAULT_CLASS = "rest"
AGING = "100ms"
MAX_NAME = 24
MAX_MERGED_TERMS = 60  # terms of one merged class's `or` chain (E009 allows 128)

Role = str  # "latency-critical" | "interactive" | "normal" | "batch"
ROLES: tuple[Role, ...] = ("latency-critical", "interactive", "normal", "batch")
QUEUE_OF: dict[Role, tuple[str, str]] = {
    "latency-critical": ("critical_q", "fifo"),
    "interactive": ("interactive_q", "fifo"),
    "normal": ("normal_q", "vtime"),
    "batch": ("batch_q", "vtime"),
}

_CGROUP_OK = re.compile(r"(/[A-Za-z0-9_.@:+=,-]+)+")


class DraftError(ValueError):
    """An option the draft writer cannot use; the message names it and what to do."""


def role_of(labels: list[Label]) -> Role:
    for label in ("latency-critical", "interactive", "batch"):
        if label in labels:
            return label
    return "normal"  # io-bound or unlabeled: fair sharing, sleepers get vtime's credit


# --- strings and matchers -------------------------------------------------------------------


def dsl_string(text: str) -> str:
    """A DSL string literal: the only escapes are \\" and \\\\ (docs/dsl.md section 2)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _plain(ch: str) -> bool:
    """A character a DSL string holds as itself and that means itself in a name."""
    code = ord(ch)
    return ch.isprintable() and not 0xD800 <= code <= 0xDFFF and ch != "\ufffd"


def _cut(text: str, limit: int) -> str:
    """The longest prefix of text of at most `limit` UTF-8 bytes."""
    out, used = [], 0
    for ch in text:
        n = len(ch.encode("utf-8", "surrogatepass"))
        if used + n > limit:
            break
        out.append(ch)
        used += n
    return "".join(out)


def comm_test(attr: str, name: str) -> str | None:
    """A test of a task name, or None when too little of the name can be written.

    A name the DSL can hold is compared with `==` (or `startswith` its first 15 bytes, all the
    kernel keeps); otherwise a glob: `?` for each byte of a character a string cannot hold or
    a glob would misread (`[`, `]`), `*` for an undecodable character (U+FFFD: how many bytes
    it was is lost), and at least two characters of the name itself."""
    if not name:
        return None
    if all(_plain(ch) for ch in name):
        if len(name.encode()) <= COMM_LEN:
            return f"{attr} == {dsl_string(name)}"
        return f"{attr} startswith {dsl_string(_cut(name, COMM_LEN))}"
    pattern: list[str] = []
    used = literal = 0
    for ch in name:
        if ch == "\ufffd":
            piece, n = "*", 0
        elif _plain(ch) and ch not in "[]":
            piece, n = ch, len(ch.encode())
            literal += ch not in "*?"
        else:
            n = 1 if 0xD800 <= ord(ch) <= 0xDFFF else len(ch.encode("utf-8"))
            piece = "?" * n
        if used + n > COMM_LEN:
            pattern.append("*")
            break
        pattern.append(piece)
        used += n
    glob = re.sub(r"\*+", "*", "".join(pattern))
    if literal < 2 or len(glob) > MAX_GLOB_LEN:
        return None
    return f"{attr} matches {dsl_string(glob)}"


def cgroup_test(path: str) -> str | None:
    """`task.cgroup under PATH` for a cgroup worth matching: a valid DSL path (section 4.7) of
    plain ASCII, not the root, and not a transient `*.scope` (a login session or a terminal's
    app scope: the next run would be in another one)."""
    path = path.rstrip("/")
    if not path or not _CGROUP_OK.fullmatch(path) or path.startswith("/sys/fs/cgroup"):
        return None
    parts = path.strip("/").split("/")
    if any(p in (".", "..") or len(p) > MAX_CGROUP_NAME for p in parts):
        return None
    if len(parts) > MAX_CGROUP_DEPTH or any(p.endswith(".scope") for p in parts):
        return None
    return f"task.cgroup under {dsl_string(path)}"


def matcher_of(g: TaskGroup) -> tuple[str | None, list[str]]:
    """The group's condition (or None) and notes on what it could not match by."""
    notes: list[str] = []
    terms: list[str] = []
    if g.leader_comm and g.comm and g.leader_comm != g.comm:
        for attr, value in (("task.process.comm", g.leader_comm), ("task.comm", g.comm)):
            test = comm_test(attr, value)
            if test is None:
                notes.append(f"{attr} {value!r} cannot be written, not matched")
            else:
                terms.append(test)
    else:
        value = g.comm or g.leader_comm
        test = comm_test("task.comm", value)
        if test is None:
            notes.append(f"comm {value!r} cannot be written, not matched")
        else:
            terms.append(test)
    cgroup = cgroup_test(g.cgroup)
    if cgroup is not None:
        terms.append(cgroup)
    elif g.cgroup not in ("", "/"):
        notes.append(f"cgroup {g.cgroup!r} not matched (transient, or not a plain path)")
    if not any(t.startswith(("task.comm", "task.process.comm")) for t in terms):
        if cgroup is None:
            return None, notes
    return " and ".join(terms), notes


# --- classes --------------------------------------------------------------------------------


def class_name(name: str, taken: set[str]) -> str:
    """A DSL name from a group's name: lowercase `[a-z0-9_]`, starting with a letter, at most
    24 characters, no keyword, unique."""
    base = re.sub(r"[^a-z0-9_]+", "_", name.lower().encode("ascii", "ignore").decode())
    base = re.sub(r"_+", "_", base).strip("_")[:MAX_NAME].rstrip("_")
    if not base or not base[0].isalpha():
        base = ("c_" + base)[:MAX_NAME].rstrip("_") if base else "group"
    candidate, n = base, 2
    while candidate in taken or candidate in DSL_WORDS or candidate == DEFAULT_CLASS:
        suffix = f"_{n}"
        candidate = base[: MAX_NAME - len(suffix)] + suffix
        n += 1
    taken.add(candidate)
    return candidate


@dataclass
class _Class:
    role: Role
    groups: list[TaskGroup]
    terms: list[str]  # conditions, any of which matches (one unless merged)
    notes: list[str]
    name: str = ""
    merged: bool = False

    @property
    def p90_us(self) -> float:
        return max(g.runtime_per_run_us.p90 for g in self.groups)


def _us_text(us: float) -> str:
    whole = max(1, int(math.ceil(us)))
    if whole % 1000 == 0:
        return f"{whole // 1000}ms"
    return f"{whole}us"


def _bounded(us: float, low: float, high: float, step: float = 100) -> float:
    """us rounded up to `step`, within low..high."""
    return min(max(math.ceil(us / step) * step, low), high)


def _runtime_bound(c: _Class) -> float | None:
    if c.role == "latency-critical":
        return _bounded(4 * c.p90_us, 1000, 20_000)
    if c.role == "interactive":
        return _bounded(4 * c.p90_us, 2000, 20_000)
    return None


def _slice(c: _Class) -> float | None:
    if c.role == "latency-critical":
        return _bounded(2 * c.p90_us, 500, 5000)
    if c.role == "interactive":
        return _bounded(2 * c.p90_us, 1000, 10_000)
    if c.role == "batch":
        return _bounded(4 * c.p90_us, 20_000, 100_000, 1000)
    return None


def _condition(c: _Class) -> str:
    terms = c.terms
    text = terms[0] if len(terms) == 1 else " or ".join(f"({t})" for t in terms)
    bound = _runtime_bound(c)
    if bound is not None:
        inner = f"({text})" if " or " in text or len(terms) > 1 else text
        text = f"{inner} and task.avg_runtime < {_us_text(bound)}"
    return text


def _merge(role: Role, classes: list[_Class]) -> _Class:
    """One class for several: names compared with `==` go into `in [...]` lists of at most 32,
    the other matchers are `or`-ed, at most MAX_MERGED_TERMS terms."""
    plain: list[str] = []
    other: list[str] = []
    eq = re.compile(r'task\.comm == ("(?:[^"\\]|\\.)*")')
    for c in classes:
        for t in c.terms:
            m = eq.fullmatch(t)
            (plain if m else other).append(m.group(1) if m else t)
    terms = [
        "task.comm in [" + ", ".join(plain[i : i + MAX_LIST_ITEMS]) + "]"
        for i in range(0, len(plain), MAX_LIST_ITEMS)
    ] + other
    notes = [n for c in classes for n in c.notes]
    if len(terms) > MAX_MERGED_TERMS:
        notes.append(f"{len(terms) - MAX_MERGED_TERMS} matchers left out (too many for one class)")
        terms = terms[:MAX_MERGED_TERMS]
    return _Class(role, [g for c in classes for g in c.groups], terms, notes, merged=True)


def _classes(profile: Profile) -> tuple[list[_Class], list[str]]:
    by_matcher: dict[str, _Class] = {}
    skipped: list[str] = []
    for g in sorted(profile.groups, key=lambda g: -g.cpu_share):
        matcher, notes = matcher_of(g)
        if matcher is None:
            skipped.append(f"group {g.name!r}: nothing to match it by ({'; '.join(notes)})")
            continue
        known = by_matcher.get(matcher)
        if known is not None:
            known.groups.append(g)
            known.notes += notes
            continue
        role = role_of([c.label for c in g.classification])
        by_matcher[matcher] = _Class(role, [g], [matcher], notes)
    classes = list(by_matcher.values())
    limit = MAX_CLASSES - 1  # and `rest`
    if len(classes) > limit:
        keep = classes[: limit - len(ROLES)]
        extra = classes[limit - len(ROLES) :]
        merged = [
            _merge(role, [c for c in extra if c.role == role])
            for role in ROLES
            if any(c.role == role for c in extra)
        ]
        skipped.append(
            f"{len(classes)} classes is more than the DSL's {MAX_CLASSES}: the {len(extra)} "
            f"smallest merged into one class per label"
        )
        classes = keep + merged
    taken: set[str] = set()
    for c in classes:
        c.name = class_name(f"more_{c.role}" if c.merged else c.groups[0].name, taken)
    return classes, skipped


# --- the text -------------------------------------------------------------------------------


def _evidence(c: _Class) -> list[str]:
    lines = [f"{c.name} ({c.role}, queue {QUEUE_OF[c.role][0]}):"]
    for g in c.groups[:8]:
        labels = ", ".join(x.label for x in g.classification) or "no label"
        lines.append(
            f"  group {g.name!r} [{labels}]: {g.threads} threads, CPU share {g.cpu_share:.1%}, "
            f"runs p50 {g.runtime_per_run_us.p50:.0f}us p90 {g.runtime_per_run_us.p90:.0f}us, "
            f"wakes {g.wakeups_per_s:.1f}/s, run delay p99 {g.run_delay_us.p99:.0f}us"
        )
        for x in g.classification:
            for ev in x.evidence[:4]:
                lines.append(f"    {x.label}: {ev}")
    if len(c.groups) > 8:
        lines.append(f"  and {len(c.groups) - 8} more groups")
    bound, slice_us = _runtime_bound(c), _slice(c)
    if bound is not None:
        lines.append(
            f"  class only while task.avg_runtime < {_us_text(bound)} (4 x runtime per run p90)"
        )
    if slice_us is not None:
        lines.append(f"  slice {_us_text(slice_us)} from runtime per run p90 {c.p90_us:.0f}us")
    lines += [f"  note: {n}" for n in c.notes[:6]]
    return lines


def draft_policy(profile: Profile, *, name: str = "draft") -> str:
    """DSL source of a draft policy for the profile (module doc); it compiles as it is."""
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise DraftError(
            f"name: {name!r} is not a scheduler name; use 1-24 lowercase letters, digits and _, "
            "starting with a letter (e.g. 'draft')"
        )
    classes, skipped = _classes(profile)
    m = profile.machine
    head = [
        "DRAFT policy generated by `schedc profile --draft` from a workload profile.",
        "A starting point to edit, not a tuned scheduler: check its classes against the",
        "evidence below, then test it on the profile's scenario (schedc profile --scenario)",
        "with `schedc test` before using it.",
        f"Profile: created {profile.created.isoformat()}, window {profile.seconds:g} s, "
        f"machine: {m.cpus} CPUs, kernel {m.kernel}, scheduler {m.scheduler}.",
        "",
        "Classes and their evidence:",
    ]
    for c in classes:
        head += _evidence(c)
    head.append(f"{DEFAULT_CLASS} (normal, queue normal_q): every other task")
    head += [f"left out: {s}" for s in skipped]
    lines = [("# " + comment_text(h)).rstrip() for h in head]
    description = f"DRAFT from a workload profile of {profile.created.date().isoformat()}: edit me"
    lines.append(f"scheduler {name} {dsl_string(description)} {{")
    lines.append("  tags draft, profile")
    lines.append("")
    for c in classes:
        option = " preempts" if c.role == "latency-critical" else ""
        lines.append(f"  class {c.name} when {_condition(c)}{option}")
    lines.append(f"  class {DEFAULT_CLASS} otherwise")
    lines.append("")
    used = []
    for role in ROLES:
        members = [c.name for c in classes if c.role == role]
        if role == "normal":
            members.append(DEFAULT_CLASS)
        if members:
            queue, order = QUEUE_OF[role]
            used.append(queue)
            lines.append(f"  queue {queue} for {', '.join(members)} {order}")
    if len(used) > 1:
        lines.append(f"  dispatch {' then '.join(used)}, aging {AGING}")
    slices = [(c.name, s) for c in classes if (s := _slice(c)) is not None]
    if slices:
        lines.append("  slice " + ", ".join(f"{n} = {_us_text(s)}" for n, s in slices))
    lines.append("}")
    return "\n".join(lines) + "\n"
