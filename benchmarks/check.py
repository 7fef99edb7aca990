"""Time of `schedc check` per policy: the example policies, the kernel's example schedulers
(when SCHEDC_KERNEL_EXAMPLES names them) and a generated 1,000-line C policy.

    python benchmarks/check.py [--repeat N] [--btf FILE] [--lines 1000]
    python benchmarks/check.py --corpus DIR [--target-kernel 6.12|matrix] [--errors-only]

cold:  a new process with an empty cache (vmlinux.h is generated from the BTF first)
first: a new process with a warm cache (imports and loading libclang included)
warm:  the median of N checks in one process (what an editor, agent or batch run sees)

Target (issue 3): under 0.5 s warm for a 1,000-line policy.

--corpus DIR checks every scheduler source under DIR (a checkout or `git archive` of
sched-ext/scx, the kernel's tools/sched_ext, a folder of LLM-written schedulers) instead, with
the include folders their own builds use (see corpus_includes), and prints the findings per
file, the error and warning counts per rule, and the K071 warning rate (issue 12).
`--target-kernel matrix` checks for every kernel of the settings' matrix, each judged by its
BTF (the rules that need a BTF, such as K052, run only then).
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from schedc.compiler.pipeline import check_file  # noqa: E402
from schedc.compiler.toolchain import load_toolchain  # noqa: E402
from schedc.diagnostics import Diagnostic, Severity, render_human  # noqa: E402
from schedc.settings import load_settings  # noqa: E402
from schedc.verifier.checks import kernel_targets  # noqa: E402

KERNEL_SCHEDULERS = ("scx_simple", "scx_qmap", "scx_central", "scx_flatcg")


def generated_policy(lines: int) -> str:
    """A plausible hand-written policy of about `lines` lines: many small helpers (a bounded
    loop, a checked lookup, arithmetic each), classes of tasks in their own DSQs, and the usual
    callbacks."""
    head = [
        '#include "schedc_runtime.bpf.h"',
        "",
        'char _license[] SEC("license") = "GPL";',
        "",
        "#define NR_CLASSES 8",
        "",
        "struct task_ctx { u64 runtime; u64 wakeups; u32 cls; };",
        "",
        "struct {",
        "\t__uint(type, BPF_MAP_TYPE_TASK_STORAGE);",
        "\t__uint(map_flags, BPF_F_NO_PREALLOC);",
        "\t__type(key, int);",
        "\t__type(value, struct task_ctx);",
        "} tasks SEC(\".maps\");",
        "",
        "u64 weights[NR_CLASSES];",
        "",
    ]
    helpers: list[str] = []
    count = 0
    while len(head) + len(helpers) + 90 < lines:
        helpers += [
            f"/* score {count}: a weighted sum over the class weights */",
            f"static __always_inline u64 score_{count}(struct task_struct *p, u64 base)",
            "{",
            "\tstruct task_ctx *tctx = bpf_task_storage_get(&tasks, p, 0, 0);",
            "\tu64 sum = base;",
            "",
            "\tif (!tctx)",
            "\t\treturn base;",
            "\tfor (u32 i = 0; i < NR_CLASSES; i++) {",
            f"\t\tif (weights[i] > {count})",
            "\t\t\tsum += weights[i] >> 2;",
            "\t\telse",
            f"\t\t\tsum += tctx->runtime >> {count % 7 + 1};",
            "\t}",
            f"\tsum = schedc_min_u64(sum, {1000 + count}ULL * 1000000ULL);",
            "\treturn schedc_max_u64(sum, tctx->wakeups);",
            "}",
            "",
        ]
        count += 1
    calls = " + ".join(f"score_{i}(p, {i})" for i in range(min(count, 6)))
    tail = [
        "static __always_inline u32 classify(struct task_struct *p)",
        "{",
        f"\tu64 s = {calls};",
        "",
        "\treturn (u32)(s % NR_CLASSES);",
        "}",
        "",
        's32 SEC("struct_ops/big_select_cpu") big_select_cpu(unsigned long long *ctx)',
        "{",
        "\tstruct task_struct *p = (struct task_struct *)ctx[0];",
        "\tbool is_idle = false;",
        "\ts32 cpu = scx_bpf_select_cpu_dfl(p, (s32)ctx[1], ctx[2], &is_idle);",
        "",
        "\tif (is_idle)",
        "\t\tschedc_insert(p, SCX_DSQ_LOCAL, SCX_SLICE_DFL, 0);",
        "\treturn cpu;",
        "}",
        "",
        's32 SEC("struct_ops/big_enqueue") big_enqueue(unsigned long long *ctx)',
        "{",
        "\tstruct task_struct *p = (struct task_struct *)ctx[0];",
        "\tu32 cls = classify(p);",
        "",
        "\tschedc_insert_vtime(p, cls, SCX_SLICE_DFL, p->scx.dsq_vtime, ctx[1]);",
        "\treturn 0;",
        "}",
        "",
        's32 SEC("struct_ops/big_dispatch") big_dispatch(unsigned long long *ctx)',
        "{",
        "\tfor (u32 i = 0; i < NR_CLASSES; i++)",
        "\t\tif (schedc_move_to_local(i))",
        "\t\t\treturn 0;",
        "\treturn 0;",
        "}",
        "",
        's32 SEC("struct_ops/big_running") big_running(unsigned long long *ctx)',
        "{",
        "\tstruct task_struct *p = (struct task_struct *)ctx[0];",
        "\tstruct task_ctx *tctx = bpf_task_storage_get(&tasks, p, 0, 0);",
        "",
        "\tif (tctx)",
        "\t\ttctx->wakeups++;",
        "\treturn 0;",
        "}",
        "",
        's32 SEC("struct_ops/big_stopping") big_stopping(unsigned long long *ctx)',
        "{",
        "\tstruct task_struct *p = (struct task_struct *)ctx[0];",
        "\tstruct task_ctx *tctx = bpf_task_storage_get(&tasks, p, 0, 0);",
        "",
        "\tif (!tctx)",
        "\t\treturn 0;",
        "\ttctx->runtime += SCX_SLICE_DFL - p->scx.slice;",
        "\tp->scx.dsq_vtime += (SCX_SLICE_DFL - p->scx.slice) * 100 / (p->scx.weight ?: 1);",
        "\treturn 0;",
        "}",
        "",
        's32 SEC("struct_ops/big_init_task") big_init_task(unsigned long long *ctx)',
        "{",
        "\tstruct task_struct *p = (struct task_struct *)ctx[0];",
        "",
        "\treturn bpf_task_storage_get(&tasks, p, 0, SCHEDC_STORAGE_CREATE) ? 0 : -ENOMEM;",
        "}",
        "",
        's32 SEC("struct_ops.s/big_init") big_init(unsigned long long *ctx)',
        "{",
        "\tfor (u32 i = 0; i < NR_CLASSES; i++) {",
        "\t\ts32 err = scx_bpf_create_dsq(i, SCHEDC_NUMA_NO_NODE);",
        "",
        "\t\tif (err)",
        "\t\t\treturn err;",
        "\t}",
        "\treturn 0;",
        "}",
        "",
        'SEC(".struct_ops.link")',
        "struct sched_ext_ops big_ops = {",
        "\t.select_cpu = (void *)big_select_cpu,",
        "\t.enqueue = (void *)big_enqueue,",
        "\t.dispatch = (void *)big_dispatch,",
        "\t.running = (void *)big_running,",
        "\t.stopping = (void *)big_stopping,",
        "\t.init_task = (void *)big_init_task,",
        "\t.init = (void *)big_init,",
        '\t.name = "big",',
        "};",
    ]
    return "\n".join(head + helpers + tail) + "\n"


def kernel_examples() -> list[tuple[Path, list[Path]]]:
    given = os.environ.get("SCHEDC_KERNEL_EXAMPLES")
    if not given:
        return []
    for folder in (Path(given) / "tools" / "sched_ext", Path(given)):
        if (folder / "scx_simple.bpf.c").is_file():
            include = [folder / "include", folder / "include" / "bpf-compat"]
            return [(folder / f"{name}.bpf.c", include) for name in KERNEL_SCHEDULERS]
    return []


def in_new_process(path: Path, include: list[Path], cache: Path, btf: str | None) -> float:
    env = dict(os.environ, SCHEDC_CACHE=str(cache), PYTHONPATH=str(ROOT))
    if btf:
        env["SCHEDC_BTF"] = btf
    args = [sys.executable, "-m", "schedc", "check", str(path)]
    for folder in include:
        args += ["-I", str(folder)]
    t = time.perf_counter()
    proc = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - t
    if proc.returncode not in (0, 1):
        raise SystemExit(f"check of {path} failed: {proc.stderr}")
    return elapsed


# Folders of a corpus that hold libraries, tests and tools rather than schedulers.
_NOT_SCHEDULERS = (
    "selftests", "scx_lib_selftests", "tools", "lib", "scx_arena", "scx_bpf_compat"
)
_SIBLING_INCLUDE = re.compile(r'^\s*#\s*include\s+"(scx_\w+)/([\w.]+)"', re.M)
# What scx's and the kernel's builds pass for the BPF target besides the libbpf headers.
_MULTIARCH = Path("/usr/include/x86_64-linux-gnu")


_SOURCE_INCLUDE = re.compile(r'^\s*#\s*include\s+"([\w./-]+\.bpf\.c)"', re.M)


def corpus_files(root: Path) -> list[Path]:
    """Every *.bpf.c that is a scheduler's source: not in a library or test folder, and not
    a piece another file #includes beside it (scx_lavd's util.bpf.c and the like)."""
    found = []
    for path in sorted(root.rglob("*.bpf.c")):
        parts = path.relative_to(root).parts[:-1]
        if any(p in _NOT_SCHEDULERS for p in parts):
            continue
        found.append(path)
    pieces = set()
    for path in found:
        text = path.read_text(encoding="utf-8", errors="replace")
        pieces |= {(path.parent / name).resolve() for name in _SOURCE_INCLUDE.findall(text)}
    return [p for p in found if p.resolve() not in pieces]


def corpus_includes(path: Path, root: Path, shims: Path) -> list[Path]:
    """The include folders scx's build gives a scheduler: every `include` folder (with its
    bpf-compat/ and lib/) from the file's folder up to the corpus root, the kernel examples'
    include/, and for `#include "scx_p2dq/main.bpf.c"` (scx_chaos) a copy of that
    scheduler's BPF folder under its name, as chaos's build.rs makes one."""
    dirs: list[Path] = []
    folder = path.parent
    while True:
        for inc in (folder / "include", folder / "scheds" / "include"):
            for d in (inc, inc / "bpf-compat", inc / "lib"):
                if d.is_dir() and d not in dirs:
                    dirs.append(d)
        if folder == root or folder == folder.parent:
            break
        folder = folder.parent
    text = path.read_text(encoding="utf-8", errors="replace")
    for name, _file in _SIBLING_INCLUDE.findall(text):
        source = next(root.rglob(f"{name}/src/bpf"), None)
        if source is None:
            continue
        copy = shims / path.parent.parent.parent.name / name
        if not copy.is_dir():
            shutil.copytree(source, copy)
        if copy.parent not in dirs:
            dirs.append(copy.parent)
    if _MULTIARCH.is_dir():
        dirs.append(_MULTIARCH)
    return dirs


def _short(d: Diagnostic, path: Path) -> str:
    where = f"@{d.line}" if d.line and d.file and Path(d.file) == path else ""
    elsewhere = "" if where or not d.file or Path(d.file) == path else f"@{Path(d.file).name}"
    return f"{d.code}{where}{elsewhere}"


def run_corpus(root: Path, settings, target: str, errors_only: bool) -> int:
    tc = load_toolchain(settings)
    targets = kernel_targets(settings) if target == "matrix" else ()
    files = corpus_files(root)
    errors: collections.Counter[str] = collections.Counter()
    warnings: collections.Counter[str] = collections.Counter()
    files_with_error = 0
    lines_total = 0
    k071_files = 0
    with tempfile.TemporaryDirectory() as tmp:
        for path in files:
            include = corpus_includes(path, root, Path(tmp))
            t = time.perf_counter()
            result = check_file(
                path,
                settings,
                toolchain=lambda: tc,
                include_dirs=include,
                target_kernel="6.12" if targets else target,
                targets=targets,
            )
            elapsed = time.perf_counter() - t
            lines_total += len(path.read_text(encoding="utf-8", errors="replace").splitlines())
            errs = [d for d in result.diagnostics if d.severity is Severity.ERROR]
            warns = [d for d in result.diagnostics if d.severity is Severity.WARNING]
            errors.update(d.code for d in errs)
            warnings.update(d.code for d in warns)
            files_with_error += bool(errs)
            k071_files += any(d.code == "K071" for d in warns)
            shown = errs if errors_only else errs + warns
            summary = " ".join(_short(d, path) for d in shown) or "-"
            print(f"{str(path.relative_to(root)):60} {len(errs):>3}E {len(warns):>3}W "
                  f"{elapsed:5.1f}s  {summary}")
            for d in errs:
                print(f"    {render_human([d]).splitlines()[0]}")
    print()
    print(f"{len(files)} files, {lines_total} lines, target kernel {target}: "
          f"{sum(errors.values())} errors in {files_with_error} files, "
          f"{sum(warnings.values())} warnings")
    for code in sorted(set(errors) | set(warnings)):
        print(f"  {code}: {errors[code]:>4} errors {warnings[code]:>4} warnings")
    k071 = warnings["K071"]
    print(f"K071 rate: {k071} warnings in {k071_files} of {len(files)} files, "
          f"{1000 * k071 / max(1, lines_total):.2f} per 1,000 lines")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--btf")
    ap.add_argument("--lines", type=int, default=1000)
    ap.add_argument("--corpus", type=Path, help="check every scheduler under this folder")
    ap.add_argument("--target-kernel", default="6.12", help="a version, or `matrix`")
    ap.add_argument("--errors-only", action="store_true", help="list only errors per file")
    args = ap.parse_args()
    if args.corpus is not None:
        settings = load_settings(btf=args.btf)
        return run_corpus(args.corpus.resolve(), settings, args.target_kernel, args.errors_only)

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        big = work / "big_policy.bpf.c"
        big.write_text(generated_policy(args.lines))
        inputs = [(p, []) for p in sorted((ROOT / "examples").glob("*.sched"))]
        inputs += kernel_examples() + [(big, [])]

        settings = load_settings(btf=args.btf, cache_dir=str(work / "cache"))
        tc = load_toolchain(settings)
        print(f"{'policy':22}{'lines':>7}{'cold':>9}{'first':>9}{'warm':>9}{'parse':>9}{'rules':>9}"
              f"   (ms; warm = median of {args.repeat})")
        warm_all = []
        for path, include in inputs:
            cold = in_new_process(path, include, work / f"cold-{path.stem}", args.btf)
            first = in_new_process(path, include, work / "cache", args.btf)
            warm, parse, rules = [], [], []
            for _ in range(args.repeat):
                t = time.perf_counter()
                result = check_file(path, settings, toolchain=lambda: tc, include_dirs=include)
                warm.append(time.perf_counter() - t)
                parse.append(result.timings.get("lint:parse", 0.0))
                rules.append(result.timings.get("lint:rules", 0.0))
            if result.diagnostics:
                print(render_human(result.diagnostics), file=sys.stderr)
            lines = len(path.read_text(encoding="utf-8").splitlines())
            if path.suffix == ".sched" and result.c_path:
                lines = len(result.c_path.read_text(encoding="utf-8").splitlines())
            median = statistics.median(warm)
            warm_all.append(median)
            print(f"{path.name:22}{lines:>7}{1000 * cold:>9.0f}{1000 * first:>9.0f}"
                  f"{1000 * median:>9.0f}{1000 * statistics.median(parse):>9.0f}"
                  f"{1000 * statistics.median(rules):>9.0f}")
        print()
        big_warm = warm_all[-1]
        verdict = "meets" if big_warm < 0.5 else "MISSES"
        print(f"generated {args.lines}-line policy: {1000 * big_warm:.0f} ms warm, {verdict} the "
              "0.5 s target. (.sched lines counted in the generated C.)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
