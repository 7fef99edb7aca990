"""The arithmetic operators are rows of `OPERATORS` (dsl/language.py): each row's fold (what
the front end computes for constants) is checked against its C (what the generated program
computes), compiled for this host from the same runtime header the BPF object uses; and a new
operator needs nothing but its row and its symbol in the grammar (docs/ARCHITECTURE.md)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from schedc.compiler.pipeline import translate
from schedc.dsl import parser
from schedc.dsl.language import OPERATORS, Operation, Operator, Ty, operator_words
from tests.test_latency_host import build_and_run

INTS = (-7, -3, -1, 0, 1, 2, 3, 7, 1_000_003)
DURATIONS = (0, 1, 3, 7, 20_000_000, 1_000_000_007)
C_TYPE = {Ty.INT: "s64", Ty.DURATION: "u64"}

PRELUDE = r"""
#define BPF_NO_KFUNC_PROTOTYPES
#include "vmlinux.h"
int printf(const char *fmt, ...);
#define __BPF_HELPERS__
#define SEC(name)
#define __always_inline inline __attribute__((always_inline))
#define __weak __attribute__((weak))
#define __ksym
#define __uint(name, val) int name
#define __type(name, val) val *name
static long bpf_probe_read_kernel(void *dst, u32 size, const void *src) { return 0; }
static long bpf_probe_read_kernel_str(void *dst, u32 size, const void *src) { return 0; }
#include "schedc_runtime.bpf.h"
"""


def _c_value(c: str, left: str, right: str) -> str:
    return f"{c}({left}, {right})" if c.isidentifier() else f"({left} {c} {right})"


def _cases() -> list[tuple[str, Ty, Ty, int, int, Operation]]:
    values = {Ty.INT: INTS, Ty.DURATION: DURATIONS}
    return [
        (symbol, lt, rt, a, b, operation)
        for symbol, op in OPERATORS.items()
        for (lt, rt), operation in op.operations.items()
        for a, b in itertools.product(values[lt], values[rt])
    ]


def test_every_fold_computes_what_its_c_computes(toolchain, tmp_path: Path):
    cases = _cases()
    body = []
    for _, lt, rt, a, b, operation in cases:
        # volatile operands: clang must compute the C at run time, not fold it itself
        fmt = "%lld" if operation.result == Ty.INT else "%llu"
        cast = "long long" if operation.result == Ty.INT else "unsigned long long"
        body.append(
            f"\t{{ volatile {C_TYPE[lt]} l = {a}LL; volatile {C_TYPE[rt]} r = {b}LL;\n"
            f'\t  printf("{fmt}\\n", ({cast}){_c_value(operation.c, "l", "r")}); }}'
        )
    src = tmp_path / "ops.c"
    src.write_text(PRELUDE + "int main(void)\n{\n" + "\n".join(body) + "\n\treturn 0;\n}\n")
    got = build_and_run(toolchain, src, timeout=30).split()
    assert len(got) == len(cases)
    wrong = [
        f"{a} {symbol} {b} ({lt.value}, {rt.value}): fold {operation.fold(a, b)}, C {c}"
        for (symbol, lt, rt, a, b, operation), c in zip(cases, got, strict=True)
        if operation.fold(a, b) != int(c)
    ]
    assert wrong == []


def _slice_message(tmp_path: Path, expr: str) -> str:
    src = tmp_path / "p.sched"
    src.write_text(
        f'scheduler p "folds" {{\n  class all otherwise\n  queue q for all fifo\n'
        f"  slice all = {expr}\n}}\n"
    )
    [diag] = translate(src).diagnostics
    assert diag.code == "E302", diag
    return diag.message


@pytest.mark.parametrize(
    ("expr", "value"),
    [
        ("1ms * -5", "0ns"),  # a negative factor of a duration counts as 0
        ("2s * (0 - -7 / 2)", "6s"),  # -7 / 2 is -3 in C, as in the fold (not Python's -4)
        ("10ms / -2", "0ns"),  # a negative divisor of a duration counts as 0
        ("30ms - 50ms", "0ns"),  # durations saturate at 0
        ("3s / 2s * 2s", "2s"),  # a ratio of durations is a whole count
    ],
)
def test_constant_slices_fold_as_the_c_computes(tmp_path, expr, value):
    """The slice range check (E302) reports the folded value: the C's, not Python's."""
    assert _slice_message(tmp_path, expr).startswith(f"time slice {value} is outside")


def test_the_grammar_levels_hold_exactly_the_operators_rows():
    grammar = parser._grammar()
    for level in {op.level for op in OPERATORS.values()}:
        line = next(x for x in grammar.splitlines() if x.startswith(f"{level}:"))
        symbols = {s.strip().strip('"') for s in line.split(":", 1)[1].split("|")}
        assert symbols == {s for s, op in OPERATORS.items() if op.level == level}, level
        assert all(f"'{s}'" in operator_words(level) for s in symbols)


def test_a_new_operator_is_its_row_and_its_grammar_symbol(tmp_path, monkeypatch):
    """`%` added as docs/ARCHITECTURE.md says: a row and one symbol in MUL_OP, nothing else."""
    grammar = parser._grammar().replace('MUL_OP: "*" | "/"', 'MUL_OP: "*" | "/" | "%"')
    assert '"%"' in grammar
    monkeypatch.setattr(parser, "_grammar", lambda: grammar)
    parser._lark.cache_clear()
    monkeypatch.setitem(
        OPERATORS,
        "%",
        Operator("MUL_OP", {(Ty.INT, Ty.INT): Operation(Ty.INT, lambda a, b: a % b, "%")}),
    )
    try:
        src = tmp_path / "p.sched"
        src.write_text(
            'scheduler p "mod" {\n  param k = 3\n  class odd when task.pid % 2 == 1\n'
            "  class rest otherwise\n  queue q for odd, rest fifo\n"
            "  slice odd = 1ms * (k % 2)\n}\n"
        )
        result = translate(src)
        assert result.ok, result.diagnostics
        assert "% 2" in result.c_text
        src.write_text(
            'scheduler p "mod" {\n  class all when task.avg_runtime % 2 == 1\n'
            "  queue q for all fifo\n}\n"
        )
        diags = translate(src).diagnostics
        assert [d.code for d in diags if "'%'" in d.message] == ["E105"], diags
        src.write_text('scheduler p "mod" {\n  class all when task.pid 2\n}\n')
        [diag] = translate(src).diagnostics
        assert diag.code == "E001" and "'%'" in diag.message  # the syntax error names it
    finally:
        parser._lark.cache_clear()
