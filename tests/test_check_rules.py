"""Every rule of `schedc check`, positive and negative, on small C policies.

Each file in tests/data/check/ says what it expects in its first comment:

    expect: K020@31 K021@40     findings (code@line, or a bare code for a file-level one)
    expect[6.17]: K050@12       the same for --target-kernel 6.17 (plain `expect:` is 6.12)
    expect[matrix@7.2]: K008@9  parsed with the 7.2 kit's vmlinux.h, checked for every kernel
                                of the matrix from its BTF (needs both kits)
    expect: clean               no findings at all

and the test runs the real libclang on it and compares the exact set. Files under libbpf/ use
libbpf's own headers (BPF_STRUCT_OPS), as hand-written schedulers do. Files named
`*.part.bpf.c` are pieces of a scheduler that a case includes, as scx's schedulers do.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from schedc.verifier.checks import check_c
from schedc.verifier.rules.catalog import RULES
from tests.conftest import ROOT, skip_or_fail

DATA = ROOT / "tests" / "data" / "check"
INCLUDE = DATA / "include"
_EXPECT = re.compile(r"expect(?:\[((?:matrix@)?\d+\.\d+)\])?:\s*([^\n*]*)")


def case_files() -> list[Path]:
    """Every case; `*.part.bpf.c` files are pieces other cases #include, not cases."""
    found = sorted(DATA.glob("*.bpf.c")) + sorted((DATA / "libbpf").glob("*.bpf.c"))
    return [p for p in found if not p.name.endswith(".part.bpf.c")]


def expectations(path: Path) -> dict[str, set[tuple[str, int | None]]]:
    header = path.read_text(encoding="utf-8").split("*/", 1)[0]
    out: dict[str, set[tuple[str, int | None]]] = {}
    for m in _EXPECT.finditer(header):
        found: set[tuple[str, int | None]] = set()
        for item in m.group(2).split():
            if item == "clean":
                continue
            code, _, line = item.partition("@")
            found.add((code, int(line) if line else None))
        out[m.group(1) or "6.12"] = found
    assert out, f"{path.name} says nothing it expects"
    return out


def cases() -> list[tuple[Path, str, set[tuple[str, int | None]]]]:
    return [
        (path, target, expected)
        for path in case_files()
        for target, expected in expectations(path).items()
    ]


@pytest.mark.parametrize(
    ("path", "target", "expected"),
    cases(),
    ids=[f"{p.relative_to(DATA)}[{t}]" for p, t, _ in cases()],
)
def test_rule_case(settings, toolchain, path: Path, target: str, expected):
    if path.parent.name == "libbpf" and toolchain.libbpf_include is None:
        skip_or_fail("SCHEDC_LIBBPF_INCLUDE is not set (libbpf >= 1.2 headers, e.g. a sandbox kit's include/)")
    if target.startswith("matrix@"):
        diags = _check_on_matrix(settings, path, target.removeprefix("matrix@"))
    else:
        diags = check_c(path, toolchain, [INCLUDE], target)
    found = {(d.code, d.line) for d in diags}
    assert found == expected, "\n".join(f"{d.line}: {d.code} {d.message}" for d in diags)


def _check_on_matrix(settings, path: Path, parsed_with: str) -> list:
    from schedc.compiler.toolchain import load_toolchain  # noqa: PLC0415
    from schedc.settings import kernel_matrix, kernel_name  # noqa: PLC0415
    from schedc.verifier.checks import kernel_targets  # noqa: PLC0415
    from tests.conftest import MATRIX, MATRIX_REMEDY  # noqa: PLC0415

    if len(MATRIX) < 2:
        skip_or_fail(MATRIX_REMEDY)
    matrix = settings.with_overrides(kernels=MATRIX)
    kits = [
        k
        for k in kernel_matrix(matrix, attach=False)
        if kernel_name(k).startswith(parsed_with + ".")
    ]
    if not kits:
        skip_or_fail(f"no {parsed_with} kernel in the matrix")
    return check_c(path, load_toolchain(kits[0]), [INCLUDE], kernel_targets(matrix))


def negative_codes(path: Path) -> set[str]:
    """Rules a case says it shows quiet: `K030/K031 negative: ...` in its first comment."""
    header = path.read_text(encoding="utf-8").split("*/", 1)[0]
    m = re.search(r"((?:K\d{3}/?)+) negative", header)
    return set(re.findall(r"K\d{3}", m.group(1))) if m else set()


def test_every_rule_fires_in_some_case_and_is_quiet_in_another():
    fired: set[str] = set()
    quiet: set[str] = set()
    for path in case_files():
        for expected in expectations(path).values():
            fired |= {code for code, _ in expected}
        quiet |= negative_codes(path)
        assert all(expected == set() for expected in expectations(path).values()) or not (
            negative_codes(path)
        ), f"{path.name} is a negative case but expects findings"
    assert sorted(set(RULES) - fired) == [], "rules no case makes fire"
    assert sorted(set(RULES) - quiet) == [], "rules without a negative case"
    assert sorted(set(RULES) - {p.name.split("_", 1)[0] for p in case_files()}) == [], (
        "rules without a case file named after them"
    )
