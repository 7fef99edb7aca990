"""Lowering of typed policies to C, the clang step, vmlinux.h from BTF, caching."""
