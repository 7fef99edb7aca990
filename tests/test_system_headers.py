"""A .bpf.c that includes a libc header (<limits.h>, as scx's intf.h does): clang's BPF target
does not search the host's multiarch headers, and the C001 says which folder to pass with -I;
then glibc's gnu/stubs.h wants the 32-bit stubs, and that C001 says which package has them.
Real clang in the sandbox, on this host's headers."""

from __future__ import annotations

from schedc.compiler.toolchain import compile_c, multiarch_folder
from schedc.diagnostics import Severity

POLICY = '#include <limits.h>\n#include "schedc_runtime.bpf.h"\n'
POLICY += 'char _license[] SEC("license") = "GPL";\nint biggest = INT_MAX;\n'


def _errors(diags):
    return [d for d in diags if d.severity is Severity.ERROR]


def test_the_multiarch_folder_is_found_by_the_missing_header(tmp_path):
    (tmp_path / "x86_64-linux-gnu" / "bits").mkdir(parents=True)
    (tmp_path / "x86_64-linux-gnu" / "bits" / "libc-header-start.h").write_text("/* canary */\n")
    message = "'bits/libc-header-start.h' file not found"
    assert multiarch_folder(message, tmp_path) == tmp_path / "x86_64-linux-gnu"
    assert multiarch_folder("'nothere.h' file not found", tmp_path) is None
    assert multiarch_folder("'/etc/passwd' file not found", tmp_path) is None


def test_a_libc_header_gets_the_folder_to_add_then_the_package(toolchain, tmp_path):
    source = tmp_path / "limits.bpf.c"
    source.write_text(POLICY)
    multiarch = multiarch_folder("'bits/libc-header-start.h' file not found")
    assert multiarch is not None, "this host has no multiarch libc headers (libc6-dev)"
    [first] = _errors(compile_c(toolchain, source, tmp_path / "a.bpf.o", use_pch=False))
    assert first.code == "C001" and "libc-header-start.h" in first.message
    assert f"-I {multiarch}" in (first.hint or "")
    again = compile_c(
        toolchain, source, tmp_path / "b.bpf.o", include_dirs=[multiarch], use_pch=False
    )
    if (multiarch / "gnu" / "stubs-32.h").exists():
        assert not _errors(again) and (tmp_path / "b.bpf.o").is_file()
    else:
        [stubs] = _errors(again)
        assert "stubs-32.h" in stubs.message and "libc6-dev-i386" in (stubs.hint or "")
        assert not (tmp_path / "b.bpf.o").exists()
