"""Inputs for fuzzing the DSL front end, and the property every input must satisfy.

Three kinds of input, each drawn from a `random.Random` (hypothesis hands the test a seeded
one; `benchmarks/fuzz_frontend.py` uses a fixed seed):

- `random_text`: random characters, or random bytes decoded as UTF-8 (or left undecodable);
- `mutated_example`: a real policy from `examples/*.sched` with tokens deleted, duplicated or
  swapped, lines spliced from other policies, huge numbers, unicode, NULs, deep nesting and
  very long names put in;
- `generated_policy`: a grammar-shaped policy from `tests/policygen.py`, sometimes mutated.

`check_front_end` runs the front end exactly as `schedc compile --emit-c` does up to the C
text (`translate`: read, parse, sema, lower; no clang) and checks that it returned: either C
text, or diagnostics that each point inside the file. Any exception escapes to the caller.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from pathlib import Path

from schedc.compiler.pipeline import translate
from schedc.diagnostics import Diagnostic
from tests.policygen import PolicyGen

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES: list[str] = [
    p.read_text(encoding="utf-8") for p in sorted((ROOT / "examples").glob("*.sched"))
]

_TOKEN = re.compile(r'"(?:[^"\\\n]|\\.)*"|\d+(?:\.\d+)?[a-z]*|[A-Za-z_]\w*|\s+|.', re.DOTALL)
_WORDS = [
    "scheduler", "class", "when", "otherwise", "queue", "for", "fifo", "vtime", "ordered", "by",
    "ascending", "descending", "deadline", "lag", "dispatch", "then", "weighted", "shares", "aging",
    "slice", "select", "cpu", "cpus", "on", "preempts", "watchdog", "param", "counter", "counts",
    "of", "tags", "and", "or", "not", "in", "true", "false", "task", "matches", "startswith",
    "under", "min", "max", "clamp", "task.comm", "task.nice", "task.avg_runtime", "task.cgroup",
    "(", ")", "[", "]", "{", "}", ",", ":", "=", "==", "!=", "<", "<=", ">", ">=", "+", "-",
    "*", "/", "..", ".", "#", '"', "\\", "\n", " ", "\t", "\r", "\x00", "\x0c", "\u2028",
    "\ufeff", "é", "日本", "𝔘", "\ud800",
]
_HUGE = [
    "9" * 5000, "1" + "0" * 4400, "0" * 5000 + "1", "18446744073709551616",
    "9223372036854775807", "9223372036854775808", "10000000000000000000", "4294967296",
]
_UNITS = ["", "ns", "us", "ms", "s", "x", "."]


def random_text(r: random.Random) -> str | bytes:
    """Random characters from a few alphabets, or random bytes (decoded when they can be)."""
    n = r.choice([0, 1, 2, 5, 20, 100, 1000])
    kind = r.randrange(4)
    if kind == 0:
        data = bytes(r.randrange(256) for _ in range(n))
        return data if r.random() < 0.5 else data.decode("utf-8", errors="replace")
    if kind == 1:
        return "".join(chr(r.randrange(32, 127)) for _ in range(n))
    if kind == 2:
        return "".join(chr(r.randrange(0, 0x3000)) for _ in range(n))
    return " ".join(r.choice(_WORDS) for _ in range(n))


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(text)


def _huge_number(r: random.Random) -> str:
    """Digits only. (Hypothesis's Random draws 0 and 0.0 often: those pick the worst case.)"""
    number = r.choice(_HUGE)
    if r.random() > 0.7:
        number = str(r.randrange(10 ** r.randrange(1, 30)))
    if r.random() > 0.8:
        number += "." + "0" * r.choice([1, 9, 10, 5000]) + r.choice(["", "5"])
    return number


def _deep(r: random.Random) -> str:
    n = r.choice([5000, 1000, 200, 129, 128, 127, 65, 64, 63, 10, 2])
    if r.random() > 0.99:
        n = 100_000  # slow to parse: rare
    kind = r.randrange(6)
    if kind == 0:
        return "(" * n + "true" + ")" * n
    if kind == 1:
        return " or ".join(["task.pinned"] * n)
    if kind == 2:
        return "not " * n + "true"
    if kind == 3:
        return "task.nice < " + "- " * n + "1"
    if kind == 4:
        return "min(" * n + "1ms" + ", 2ms)" * n
    return "1ms" + " + 1ms" * n


def _indices(toks: list[str], pattern: str) -> list[int]:
    return [i for i, t in enumerate(toks) if re.fullmatch(pattern, t)]


MUTATIONS = 17


def _mutate_once(r: random.Random, toks: list[str], op: int | None = None) -> list[str]:
    if not toks:
        return [r.choice(_WORDS)]
    i = r.randrange(len(toks))
    op = r.randrange(MUTATIONS) if op is None else op
    numbers = _indices(toks, r"\d+(?:\.\d+)?[a-z]*")
    names = _indices(toks, r"[A-Za-z_]\w*")
    if op == 0:
        del toks[i : i + r.randint(1, 3)]
    elif op == 1:
        toks[i:i] = toks[i : i + r.randint(1, 4)]
    elif op == 2:
        j = r.randrange(len(toks))
        toks[i], toks[j] = toks[j], toks[i]
    elif op == 3:
        toks.insert(i, r.choice(_WORDS) + r.choice(["", " "]))
    elif op in (4, 5) and numbers:  # a number stays a number, but a huge or odd one
        k = r.choice(numbers)
        unit = re.sub(r"[\d.]", "", toks[k]) if r.random() < 0.8 else r.choice(_UNITS)
        toks[k] = (_huge_number(r) if op == 4 else str(r.randint(0, 1100))) + unit
    elif op == 6:  # an expression made deep or long, in place of the rest of a line
        ends = [k for k, t in enumerate(toks) if "\n" in t]
        whens = [k for k, t in enumerate(toks) if t in ("when", "=", "by", "aging", "lag")]
        if whens:
            k = r.choice(whens) + 1
            end = next((e for e in ends if e > k), len(toks))
            toks[k:end] = [" " + _deep(r)]
        else:
            toks.insert(i, " " + _deep(r) + " ")
    elif op == 7 and names:  # a name made very long, or another name of the policy
        k = r.choice(names)
        if r.random() < 0.5:
            toks[k] = "x" * r.choice([24, 25, 100, 10_000, 200_000 if r.random() < 0.05 else 5])
        else:
            toks[k] = toks[r.choice(names)]
    elif op == 8:
        toks.insert(i, r.choice(["\x00", "\u2028", "\x0c", "\r", "\ufeff", "é", "\ud800"]))
    elif op == 9:  # splice lines of another example in
        other = r.choice(EXAMPLES).split("\n")
        k = r.randrange(len(other))
        toks.insert(i, "\n".join(other[k : k + r.randint(1, 5)]) + "\n")
    elif op in (10, 11):  # delete, duplicate or swap whole lines
        lines = "".join(toks).split("\n")
        a, b = r.randrange(len(lines)), r.randrange(len(lines))
        if op == 10:
            del lines[a]
        elif r.random() < 0.5:
            lines.insert(a, lines[b])
        else:
            lines[a], lines[b] = lines[b], lines[a]
        toks = _tokens("\n".join(lines))
    elif op == 12:
        strings = _indices(toks, r'".*"') or [i]
        toks[r.choice(strings)] = '"' + r.choice(
            ["", "*", "/a/../b", "[x]", "a" * 40, "\\n", "\\", "/sys/fs/cgroup/x", "x" * 5000]
        ) + '"'
    elif op == 13:  # another operator, or a number made zero (division by zero, ...)
        ops = _indices(toks, r"[-+*/<>=!]") + numbers
        if ops:
            k = r.choice(ops)
            toks[k] = r.choice(["+", "-", "*", "/", "<", ">", "==", "!=", "0", "0ms", "1"])
    elif op == 14 and names:  # a name replaced by a keyword or a known word
        toks[r.choice(names)] = r.choice(_WORDS[:48] + ["idle", "previous", "enqueue", "aging"])
    else:
        toks.insert(i, r.choice(_WORDS) + " ")
    return toks


def mutate(r: random.Random, text: str, rounds: int | None = None, op: int | None = None) -> str:
    """Apply a few token-level mutations to a policy; the first is `op` when given."""
    toks = _tokens(text)
    for n in range(rounds if rounds is not None else r.choice([1, 1, 2, 3, 8])):
        toks = _mutate_once(r, toks, op if n == 0 else None)
    return "".join(toks)


def mutated_example(r: random.Random) -> str:
    return mutate(r, r.choice(EXAMPLES))


def generated_policy(r: random.Random) -> str:
    text = PolicyGen(r).policy()
    return text if r.random() < 0.3 else mutate(r, text)


STRATEGIES: dict[str, Callable[[random.Random], str | bytes]] = {
    "random": random_text,
    "mutated-example": mutated_example,
    "generated": generated_policy,
}


def _lines(data: bytes) -> list[bytes]:
    return data.split(b"\n")


def bad_locations(diagnostics: list[Diagnostic], data: bytes, file: str) -> list[str]:
    """Diagnostics that do not point at a line:column of the file (lines split at '\\n')."""
    lines = _lines(data)
    text_lines = [ln.decode("utf-8", errors="replace") for ln in lines]
    problems: list[str] = []
    for d in diagnostics:
        where = f"{d.code} {d.message[:80]!r} at {d.line}:{d.column}-{d.end_line}:{d.end_column}"
        if d.file != file:
            problems.append(f"{where}: file is {d.file!r}")
            continue
        if d.line is None or d.column is None:
            problems.append(f"{where}: no line:column")
            continue
        for line, col in ((d.line, d.column), (d.end_line, d.end_column)):
            if line is None and col is None:
                continue
            if line is None or col is None or not 1 <= line <= len(lines):
                problems.append(f"{where}: line outside 1..{len(lines)}")
                break
            if not 1 <= col <= len(text_lines[line - 1]) + 1:
                problems.append(f"{where}: column outside line {line}")
                break
        else:
            if d.end_line is not None and (d.end_line, d.end_column or 0) < (d.line, d.column):
                problems.append(f"{where}: ends before it starts")
    return problems


class BadDiagnostics(AssertionError):
    """The front end returned, but with a diagnostic that points outside the file."""


def check_front_end(data: str | bytes, path: Path) -> list[Diagnostic]:
    """Run `translate` on the input; raise if it raises or reports outside the file."""
    raw = data if isinstance(data, bytes) else data.encode("utf-8", errors="surrogatepass")
    path.write_bytes(raw)
    result = translate(path)
    problems = bad_locations(result.diagnostics, raw, str(path))
    if result.ok and result.c_text is None:
        problems.append("no errors but no C text")
    if problems:
        raise BadDiagnostics("; ".join(problems))
    return result.diagnostics
