"""The precompiled runtime header is shared through the cache, and a PCH names the absolute
paths of the headers it was built from: a second checkout of schedc (another runtime folder)
must get a PCH of its own, or clang refuses every compile with 'malformed or corrupted AST'."""

from __future__ import annotations

import os
import shutil

from schedc.compiler import toolchain as tc_module
from schedc.compiler.pipeline import compile_policy
from tests.conftest import ROOT


def test_two_checkouts_sharing_a_cache_each_compile(tmp_path, settings, toolchain, monkeypatch):
    example = ROOT / "examples" / "fifo.sched"
    first = compile_policy(example, settings, out=tmp_path / "a.bpf.o", toolchain=toolchain)
    assert first.ok, first.diagnostics
    pch_first = tc_module.runtime_pch(toolchain)
    assert pch_first is not None

    other = tmp_path / "checkout2" / "codegen_templates"
    shutil.copytree(tc_module.runtime_dir(), other)
    monkeypatch.setattr(tc_module, "runtime_dir", lambda: other)
    pch_second = tc_module.runtime_pch(toolchain)
    assert pch_second is not None and pch_second != pch_first
    second = compile_policy(example, settings, out=tmp_path / "b.bpf.o", toolchain=toolchain)
    assert second.ok, second.diagnostics

    shutil.rmtree(other)  # the second checkout is gone: the first's PCH still serves the first
    monkeypatch.undo()
    third = compile_policy(example, settings, out=tmp_path / "c.bpf.o", toolchain=toolchain)
    assert third.ok, third.diagnostics


def test_a_header_rewritten_with_the_same_text_gets_a_new_pch(
    tmp_path, settings, toolchain, monkeypatch
):
    """A `git checkout` rewrites the runtime header with the same text and a new modification
    time; clang refuses a PCH built before ("has been modified since the precompiled header"),
    so the cached PCH must not be reused for it."""
    other = tmp_path / "checkout" / "codegen_templates"
    shutil.copytree(tc_module.runtime_dir(), other)
    monkeypatch.setattr(tc_module, "runtime_dir", lambda: other)
    example = ROOT / "examples" / "fifo.sched"
    first = compile_policy(example, settings, out=tmp_path / "a.bpf.o", toolchain=toolchain)
    assert first.ok, first.diagnostics
    before = tc_module.runtime_pch(toolchain)
    header = other / tc_module.RUNTIME_HEADER
    header.write_text(header.read_text())  # same text, new time
    later = header.stat().st_mtime_ns + 2_000_000_000
    os.utime(header, ns=(later, later))
    second = compile_policy(example, settings, out=tmp_path / "b.bpf.o", toolchain=toolchain)
    assert second.ok, second.diagnostics
    assert tc_module.runtime_pch(toolchain) != before
