"""Which libclang the Python bindings load: the toolchain's own (settings.find_libclang), so
the checks parse with the version of the clang that compiles. The bindings (PyPI "clang")
bundle none; their own search ("libclang.so" on the loader's path) is only the fallback."""

from __future__ import annotations

from clang import cindex as ci

from schedc.settings import EnvironmentProblem, find_clang, find_libclang, load_settings


def use_libclang(path: str | None) -> None:
    """Load this libclang (a worker is told the toolchain's), unless one is loaded already."""
    if path and not ci.Config.loaded:
        ci.Config.set_library_file(path)


def ensure_libclang() -> None:
    """Before a parse in this process: when nothing chose a libclang yet, the one beside the
    clang the settings select (as load_toolchain would). A process that cannot find one keeps
    the bindings' own search, whose error then names the library."""
    if ci.Config.loaded or ci.Config.library_file:
        return
    try:
        found = find_libclang(find_clang(load_settings()))
    except EnvironmentProblem:
        return
    use_libclang(found)
