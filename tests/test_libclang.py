"""The checks parse C with the libclang of the clang that compiles (issue 20): the Python
bindings are clang 19's (PyPI "clang"), and the worker loads the toolchain's own libclang,
found beside its clang (settings.find_libclang), not a copy bundled with the bindings."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from schedc.settings import EnvironmentProblem, find_libclang
from schedc.verifier.checks import analyse

VERSION_OF = """
import ctypes, sys
class CXString(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("flags", ctypes.c_uint)]
lib = ctypes.CDLL(sys.argv[1])
lib.clang_getClangVersion.restype = CXString
lib.clang_getCString.argtypes = [CXString]
lib.clang_getCString.restype = ctypes.c_char_p
print(lib.clang_getCString(lib.clang_getClangVersion()).decode())
"""


def _version(text: str) -> str:
    found = re.search(r"clang version (\d+\.\d+\.\d+)", text)
    assert found, text
    return found.group(1)


def test_the_libclang_found_is_the_compilers_own_version(toolchain):
    path = toolchain.libclang
    assert path is not None and path == find_libclang(toolchain.clang)
    said = subprocess.run([sys.executable, "-c", VERSION_OF, path],
                          capture_output=True, text=True, check=True).stdout
    compiler = subprocess.run([toolchain.clang, "--version"],
                              capture_output=True, text=True, check=True).stdout
    assert _version(said) == _version(compiler), (said, compiler)
    # and the bindings are that major version's (no bundled libclang of another one)
    bindings = metadata.version("clang")
    assert bindings.split(".")[0] == _version(compiler).split(".")[0], bindings
    with pytest.raises(metadata.PackageNotFoundError):
        metadata.version("libclang")


def test_a_clang_without_its_libclang_is_an_environment_problem(toolchain, tmp_path: Path):
    llvm = tmp_path / "llvm-19"
    (llvm / "bin").mkdir(parents=True)
    (llvm / "lib").mkdir()
    fake = llvm / "bin" / "clang"
    fake.write_text(f'#!/bin/sh\nexec {Path(toolchain.clang).resolve()} "$@"\n')
    fake.chmod(0o755)  # a clang of another LLVM folder, which has no libclang
    assert find_libclang(str(fake)) is None
    (llvm / "lib" / "libclang-19.so.1").write_bytes(b"")
    assert find_libclang(str(fake)) == str(llvm / "lib" / "libclang-19.so.1")
    bare = dataclasses.replace(toolchain, clang=str(fake), libclang=None)
    policy = tmp_path / "p.bpf.c"
    policy.write_text("int x;\n")
    with pytest.raises(EnvironmentProblem) as caught:
        analyse("check", policy, policy.read_text(), bare)
    assert "no libclang beside" in caught.value.message
    assert "apt-get install libclang1-19" in caught.value.remedy
