"""Build the embedded default BTF (schedc/codegen_templates/default_kernel/): the types generated
policies need, cut from a kit's full vmlinux BTF by schedc.verifier.btf_min.

    .venv/bin/python scripts/make_default_btf.py --btf /path/to/kit/vmlinux.btf \\
        --bpftool /path/to/kit/bpftool [--out schedc/codegen_templates/default_kernel]

What it does, with progress on stderr:
1. compiles a corpus against the full BTF: every example, the DSL reference's policies and
   random well-typed ones (tests/policygen.py, fixed seeds);
2. asks `bpftool gen min_core_btf` which records the objects reach through CO-RE relocations;
3. cuts the full BTF to those, the records the C names (the template, the runtime header and
   the corpus' generated C) and what they hold by value; writes vmlinux.btf and, dumped by
   bpftool, vmlinux.h;
4. compiles the whole corpus again against the cut, so a cut that misses a type fails here.
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from schedc.compiler.pipeline import compile_policy, translate  # noqa: E402
from schedc.compiler.toolchain import load_toolchain, runtime_dir  # noqa: E402
from schedc.settings import load_settings  # noqa: E402
from schedc.verifier.btf_min import minimal_btf  # noqa: E402
from tests.policygen import PolicyGen  # noqa: E402

GENERATED = 40  # random policies in the corpus (seeds 0..39)
_SCHED_BLOCK = re.compile(r"^```sched\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def corpus(folder: Path) -> list[Path]:
    """The corpus' policy files: examples, the DSL reference's clean blocks, generated ones."""
    paths = sorted((ROOT / "examples").glob("*.sched"))
    blocks = _SCHED_BLOCK.findall((ROOT / "docs" / "dsl.md").read_text(encoding="utf-8"))
    for i, text in enumerate(blocks):
        path = folder / f"doc{i}.sched"
        path.write_text(text, encoding="utf-8")
        if translate(path).ok:
            paths.append(path)
    for seed in range(GENERATED):
        path = folder / f"gen{seed}.sched"
        path.write_text(PolicyGen(random.Random(seed)).policy(f"gen{seed}"), encoding="utf-8")
        paths.append(path)
    return paths


def compile_all(
    paths: list[Path], btf: Path, bpftool: str, out: Path, what: str, header: Path | None = None
) -> list[Path]:
    """Each policy compiled against `btf` (with the vmlinux.h in folder `header`, when given,
    instead of bpftool's dump of it)."""
    settings = load_settings(btf=str(btf), bpftool=bpftool)
    toolchain = load_toolchain(settings)
    if header is not None:
        toolchain = dataclasses.replace(toolchain, vmlinux_dir=header)
    objects = []
    for n, path in enumerate(paths, 1):
        obj = out / f"{path.stem}.{what}.bpf.o"
        result = compile_policy(path, settings, out=obj, toolchain=toolchain, use_pch=False)
        if not result.ok:
            raise SystemExit(f"{path}: does not compile against {btf}: {result.diagnostics}")
        objects.append(obj)
        print(f"[{n}/{len(paths)}] {what}: {path.name}", file=sys.stderr)
    return objects


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--btf", type=Path, required=True, help="a kit's full vmlinux BTF")
    ap.add_argument("--bpftool", required=True, help="a bpftool with gen min_core_btf")
    ap.add_argument("--out", type=Path, default=ROOT / "schedc/codegen_templates/default_kernel")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="schedc-btf-") as tmp:
        work = Path(tmp)
        paths = corpus(work)
        objects = compile_all(paths, args.btf, args.bpftool, work, "full")
        core = work / "core.btf"
        subprocess.run(
            [args.bpftool, "gen", "min_core_btf", str(args.btf), str(core), *map(str, objects)],
            check=True,
        )
        sources = [
            (runtime_dir() / "schedc_runtime.bpf.h").read_text(encoding="utf-8"),
            (ROOT / "schedc/codegen_templates/policy.bpf.c.j2").read_text(encoding="utf-8"),
        ]
        sources += [translate(p).c_text or "" for p in paths]
        cut = minimal_btf(args.btf.read_bytes(), sources, core.read_bytes())
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "vmlinux.btf").write_bytes(cut)
        header = subprocess.run(
            # unsorted: bpftool 7.5's sorted dump leaves out an anonymous enum of the cut
            # (BPF_F_NO_PREALLOC's), which its dump of the full BTF keeps
            [args.bpftool, "btf", "dump", "file", str(args.out / "vmlinux.btf"), "format", "c",
             "unsorted"],
            check=True,
            capture_output=True,
        ).stdout
        (args.out / "vmlinux.h").write_bytes(header)
        print(
            f"cut {args.btf.stat().st_size} bytes of BTF to {len(cut)}; vmlinux.h {len(header)}",
            file=sys.stderr,
        )
        compile_all(paths, args.out / "vmlinux.btf", args.bpftool, work, "cut", header=args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
