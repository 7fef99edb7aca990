"""Real schedulers through check, compile, the kernel verifier and a short run (issue 12).

    python benchmarks/realworld.py --corpus DIR [--kernel KIT ...] [--run-seconds 3]
                                   [--no-run] [--json OUT] [--limit N]

For every scheduler source under DIR (benchmarks/check.py's corpus_files, with the include
folders of corpus_includes) this records the static checks' findings, whether clang compiled
it, and for every kernel of the matrix (the settings' `kernels`, or each --kernel) what the
verifier said and whether the scheduler stayed enabled under a short workload. Each file is
compiled whatever its check findings (with the corpus's own vmlinux.h when it has one, as scx's
build does), so that the kernel can judge the checks: every object is loaded (and run) in one
boot per kernel.

Per kernel it counts the false-positive candidates (a check error, yet the kernel loaded the
object and it stayed enabled) and the missed defects (no check error, yet the kernel rejected
or ejected it). Progress goes to stderr, the table and totals to stdout.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import tempfile
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.check import corpus_files, corpus_includes  # noqa: E402
from schedc.compiler.pipeline import check_file, compile_policy, verify_policies  # noqa: E402
from schedc.compiler.toolchain import Toolchain, load_toolchain  # noqa: E402
from schedc.diagnostics import Diagnostic, Severity  # noqa: E402
from schedc.settings import Settings, kernel_matrix, load_settings  # noqa: E402
from schedc.verifier.checks import kernel_targets  # noqa: E402
from schedc.verifier.verify import KernelVerdict  # noqa: E402

LOADED, REJECTED, NOT_REACHED = "loaded", "rejected", "not reached"
# One object of a scheduler its build links from several (scx's Rust schedulers, with scx's
# lib/): libbpf cannot resolve its externs alone, or it has no ops to attach. Not a verdict
# on the code, so neither a missed defect nor a false positive.
NOT_STANDALONE = "not standalone"
_UNIT = ("failed to find BTF for extern", "no struct_ops found")
ENABLED, EJECTED, NOT_RUN = "stayed enabled", "ejected", "not run"
# What the sandbox says of an object the guest never got to (a time limit, a guest crash).
_NOT_VERIFIED = "not verified"


@dataclass
class KernelOutcome:
    """One kernel's verdict on one file's object."""

    kernel: str
    load: str = NOT_REACHED  # LOADED | REJECTED | NOT_REACHED
    load_message: str | None = None
    run: str = NOT_RUN  # ENABLED | EJECTED | NOT_RUN
    run_message: str | None = None


@dataclass
class FileResult:
    """Everything measured for one scheduler source."""

    file: str  # relative to the corpus
    errors: dict[str, int] = field(default_factory=dict)  # check errors by code
    warnings: dict[str, int] = field(default_factory=dict)
    first_error: str | None = None  # the first check error, in one line
    compiled: bool = False
    compile_codes: list[str] = field(default_factory=list)  # C001, K061 ... when it did not
    compile_message: str | None = None
    kernels: list[KernelOutcome] = field(default_factory=list)
    crash: str | None = None  # a traceback of this tool on this file

    @property
    def check_errors(self) -> int:
        return sum(self.errors.values())


def _one_line(d: Diagnostic) -> str:
    where = f":{d.line}" if d.line else ""
    return f"{d.code} {Path(d.file).name if d.file else ''}{where}: {d.message}".strip()


def _counts(diags: Sequence[Diagnostic], severity: Severity) -> dict[str, int]:
    return dict(
        sorted(collections.Counter(d.code for d in diags if d.severity is severity).items())
    )


def kernel_outcome(k: KernelVerdict) -> KernelOutcome:
    """A kernel's verdict as load and run verdicts. A run test that went wrong leaves its
    RunReport (the object loaded); an object the guest never reached says so in its error."""
    out = KernelOutcome(k.kernel)
    problem = k.error or ""
    if any(u in problem for u in _UNIT):
        out.load, out.load_message = NOT_STANDALONE, problem.splitlines()[0]
    elif k.run is not None:
        out.load = LOADED
        if k.run.ok:
            out.run = ENABLED
        else:
            out.run = EJECTED
            if not k.run.attached:
                out.run_message = f"did not attach: {k.run.attach_error}"
            elif not k.run.enabled_throughout:
                reason = k.run.exit_reason or "not enabled"
                out.run_message = reason + (f": {k.run.exit_message}" if k.run.exit_message else "")
            else:
                out.run_message = "a workload process crashed"
    elif k.ok:
        out.load = LOADED
    elif k.error and k.error.startswith(_NOT_VERIFIED):
        out.load_message = k.error
    else:
        out.load = REJECTED
        out.load_message = (k.error or "rejected").splitlines()[0]
    return out


def false_positive(r: FileResult, k: KernelOutcome, ran: bool) -> bool:
    """A check error, yet this kernel loaded the object and (when run) it stayed enabled."""
    return r.check_errors > 0 and k.load == LOADED and (k.run == ENABLED or not ran)


def missed_defect(r: FileResult, k: KernelOutcome) -> bool:
    """No check error, yet this kernel rejected the object or ejected the scheduler."""
    return r.check_errors == 0 and r.compiled and (k.load == REJECTED or k.run == EJECTED)


def _reason(k: KernelOutcome) -> str:
    return k.run_message or k.load_message or k.load


def corpus_vmlinux(root: Path) -> Path | None:
    """The folder of the vmlinux.h a corpus builds with (scx: scheds/vmlinux/vmlinux.h, a link
    to this architecture's copy), or None: then the target kernel's, from its BTF."""
    for folder in (root / "scheds" / "vmlinux", root / "vmlinux"):
        if (folder / "vmlinux.h").is_file():
            return folder
    return None


def check_and_compile(
    path: Path,
    root: Path,
    settings: Settings,
    tc: Callable[[], Toolchain],
    shims: Path,
    build: Path,
    index: int,
) -> tuple[FileResult, Path | None]:
    """One file's check findings and its object (None when it did not compile)."""
    r = FileResult(str(path.relative_to(root)))
    include = corpus_includes(path, root, shims)
    found = check_file(
        path, settings, toolchain=tc, include_dirs=include, targets=kernel_targets(settings)
    )
    r.errors = _counts(found.diagnostics, Severity.ERROR)
    r.warnings = _counts(found.diagnostics, Severity.WARNING)
    first = next((d for d in found.diagnostics if d.severity is Severity.ERROR), None)
    r.first_error = _one_line(first) if first else None
    # Compiled whatever the checks said: the kernel is the judge of the checks here. Against
    # the corpus's own vmlinux.h when it has one, as its build does (CO-RE adapts the object
    # to the kernel); the checks above judge by the target kernel's types.
    own = corpus_vmlinux(root)
    compile_tc = tc if own is None else (lambda: replace(tc(), vmlinux_dir=own))
    out = build / str(index) / (path.name.split(".")[0] + ".bpf.o")
    built = compile_policy(path, settings, out=out, include_dirs=include, toolchain=compile_tc)
    failed = [d for d in built.diagnostics if d.severity is Severity.ERROR]
    r.compiled = built.object_path is not None and not failed
    r.compile_codes = sorted({d.code for d in failed})
    r.compile_message = _one_line(failed[0]) if failed else None
    return r, (built.object_path if r.compiled else None)


def measure(
    root: Path,
    settings: Settings,
    *,
    run_seconds: float | None,
    limit: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[FileResult]:
    """Check and compile every file of the corpus, then load (and run) every object on every
    kernel of the settings' matrix in one boot each."""
    say = progress or (lambda _m: None)
    files = corpus_files(root)[:limit] if limit else corpus_files(root)
    say(f"{len(files)} scheduler sources under {root}")
    tools: dict[str, Toolchain] = {}

    def tc() -> Toolchain:
        if "tc" not in tools:
            tools["tc"] = load_toolchain(settings)
        return tools["tc"]

    results: list[FileResult] = []
    objects: list[tuple[FileResult, Path]] = []
    with tempfile.TemporaryDirectory(prefix="schedc-realworld-") as tmp:
        work = Path(tmp)
        for n, path in enumerate(files):
            name = str(path.relative_to(root))
            try:
                r, obj = check_and_compile(path, root, settings, tc, work / "shims", work, n)
            except Exception:  # noqa: BLE001 - one file's crash is that file's result
                r, obj = FileResult(name, crash=traceback.format_exc()), None
            results.append(r)
            state = "crashed" if r.crash else "compiled" if obj else "did not compile"
            say(f"[{n + 1}/{len(files)}] {name}: {r.check_errors} check errors, {state}")
            if obj is not None:
                objects.append((r, obj))
        if objects:
            say(
                f"verifying {len(objects)} objects"
                + (f", {run_seconds:g} s run each" if run_seconds else "")
            )
            verdicts = verify_policies(
                [obj for _, obj in objects],
                settings,
                mode="sandbox",
                run_seconds=run_seconds,
                progress=say,
            )
            for (r, _), v in zip(objects, verdicts, strict=True):
                r.kernels = [kernel_outcome(k) for k in v.kernels]
                if not v.kernels:  # stopped before loading: the object itself was refused
                    r.crash = "; ".join(_one_line(d) for d in v.diagnostics) or v.stage
    return results


@dataclass
class Totals:
    kernel: str
    files: int = 0
    check_errors: int = 0  # files with a check error
    compiled: int = 0
    loaded: int = 0
    ran: int = 0  # stayed enabled through the run
    not_standalone: int = 0  # a unit of a linked scheduler: not judged
    false_positives: list[str] = field(default_factory=list)  # "file: first check error"
    missed: list[str] = field(default_factory=list)  # "file: the kernel's reason"


def totals(results: Sequence[FileResult], ran: bool) -> list[Totals]:
    """Per kernel (in the order the results name them): the counts and the classified files."""
    kernels = list(dict.fromkeys(k.kernel for r in results for k in r.kernels)) or ["-"]
    out = []
    for kernel in kernels:
        t = Totals(kernel, files=len(results))
        for r in results:
            t.check_errors += r.check_errors > 0
            t.compiled += r.compiled
            k = next((k for k in r.kernels if k.kernel == kernel), None)
            if k is None:
                continue
            t.loaded += k.load == LOADED
            t.ran += k.run == ENABLED
            t.not_standalone += k.load == NOT_STANDALONE
            if false_positive(r, k, ran):
                t.false_positives.append(f"{r.file}: {r.first_error}")
            if missed_defect(r, k):
                t.missed.append(f"{r.file}: {_reason(k)}")
        out.append(t)
    return out


def _codes(counts: dict[str, int]) -> str:
    return " ".join(f"{c}x{n}" if n > 1 else c for c, n in counts.items()) or "-"


def table(results: Sequence[FileResult], ran: bool) -> list[str]:
    """The per-file lines, then each kernel's totals and its classified files."""
    lines = []
    for r in results:
        if r.crash and not r.kernels:
            lines.append(f"{r.file}: CRASH {r.crash.strip().splitlines()[-1]}")
            continue
        compiled = "compiled" if r.compiled else f"not compiled ({' '.join(r.compile_codes)})"
        lines.append(
            f"{r.file}: errors {_codes(r.errors)}; warnings {_codes(r.warnings)}; {compiled}"
        )
        for k in r.kernels:
            load = k.load + (f" ({k.load_message})" if k.load_message else "")
            run = k.run + (f" ({k.run_message})" if k.run_message else "")
            lines.append(f"    {k.kernel}: {load}; {run}")
    for t in totals(results, ran):
        lines += [
            "",
            f"kernel {t.kernel}: {t.files} files, {t.check_errors} with check errors, "
            f"{t.compiled} compiled, {t.loaded} loaded, {t.ran} ran"
            + ("" if ran else " (no run)")
            + f", {t.not_standalone} not standalone"
            + f"; {len(t.false_positives)} false-positive candidates, {len(t.missed)} missed "
            "defects",
        ]
        lines += [f"  false-positive candidate: {f}" for f in t.false_positives]
        lines += [f"  missed defect: {m}" for m in t.missed]
    return lines


def to_json(results: Sequence[FileResult], ran: bool) -> dict[str, object]:
    return {
        "files": [asdict(r) for r in results],
        "totals": [asdict(t) for t in totals(results, ran)],
    }


def first_kernels_types(settings: Settings) -> Settings:
    """The settings with the first kernel's BTF and libbpf headers (its kit's), so that the
    checks parse with that kernel's vmlinux.h: `--kernel ../shared/sandbox-7.2` judges by 7.2's
    types, whatever `btf` the configuration names. (The loads use each kit's own anyway.)"""
    if not settings.kernels:
        return settings
    first = kernel_matrix(settings, attach=False)[0]
    return settings.with_overrides(btf=first.btf, libbpf_include=first.libbpf_include)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, required=True, help="a folder of scheduler sources")
    ap.add_argument(
        "--kernel",
        dest="kernels",
        action="append",
        metavar="KIT",
        help="a sandbox kit (repeatable; default: the settings' kernel matrix)",
    )
    ap.add_argument("--run-seconds", type=float, default=3.0, help="the run per object")
    ap.add_argument("--no-run", action="store_true", help="load only, attach nothing")
    ap.add_argument("--json", type=Path, metavar="OUT", help="write the records here too")
    ap.add_argument("--limit", type=int, metavar="N", help="only the first N files")
    args = ap.parse_args(argv)
    settings = first_kernels_types(load_settings(kernels=args.kernels, host="no"))
    run_seconds = None if args.no_run else args.run_seconds
    results = measure(
        args.corpus.resolve(),
        settings,
        run_seconds=run_seconds,
        limit=args.limit,
        progress=lambda m: print(m, file=sys.stderr, flush=True),
    )
    print("\n".join(table(results, run_seconds is not None)))
    if args.json is not None:
        args.json.write_text(json.dumps(to_json(results, run_seconds is not None), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
