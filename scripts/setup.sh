#!/usr/bin/env bash
# Sets up schedc on a Debian 12 machine: clang-19 and friends from apt, a virtualenv in .venv
# with schedc and its test tools, and (with --kit DIR) a schedc.toml that points schedc at a
# sched_ext sandbox kit: bzImage, vmlinux.btf, bpftool and libbpf headers, and the kernel's
# example schedulers (a test input) in .cache/kernel-examples. --kit may be given several
# times: the first kit is the one policies compile against, all of them are the kernel matrix
# (`kernels`) that verify, test and bench run every policy on. Without --kit, apt also installs
# Debian's bpftool (7.1: enough to turn a BTF into vmlinux.h for compile and check; loading
# sched_ext objects needs the >= 7.2 of a kit), and schedc finds it in /usr/sbin.
#
#   scripts/setup.sh [--kit DIR]... [--no-apt]
set -euo pipefail

kits=()
apt=1
while [ $# -gt 0 ]; do
    case "$1" in
        --kit) kits+=("${2:?--kit needs a directory}"); shift 2 ;;
        --no-apt) apt=0; shift ;;
        -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
        *) echo "setup.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
for i in "${!kits[@]}"; do
    k=${kits[$i]}
    [ -d "$k" ] || { echo "setup.sh: kit folder $k does not exist" >&2; exit 2; }
    k=$(cd "$k" && pwd -P)  # absolute, links resolved: the cage binds real folders
    for f in bzImage vmlinux.btf bpftool include/bpf/bpf_helpers.h; do
        [ -e "$k/$f" ] || { echo "setup.sh: $k has no $f: not a sandbox kit" >&2; exit 2; }
    done
    kits[$i]=$k
done
kit=${kits[0]:-}
cd "$(dirname "$0")/.."

if [ "$apt" = 1 ]; then
    sudo=""
    [ "$(id -u)" = 0 ] || sudo=sudo
    echo "== apt: clang-19, llvm-19, qemu-system-x86, stress-ng, rt-tests, linux-source-6.12, python3-venv, bubblewrap, dbus-daemon, systemd (busctl)"
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        clang-19 llvm-19 qemu-system-x86 stress-ng rt-tests gcc make linux-source-6.12 python3-venv git bubblewrap \
        ca-certificates xz-utils dbus-daemon systemd >/dev/null
    if [ -z "$kit" ]; then
        # No kit, so no kit's bpftool: Debian's makes vmlinux.h from SCHEDC_BTF.
        echo "== apt: bpftool (no --kit: for vmlinux.h from SCHEDC_BTF)"
        $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends bpftool >/dev/null
    fi
elif [ -z "$kit" ] && ! command -v bpftool >/dev/null && [ ! -x /usr/sbin/bpftool ]; then
    echo "setup.sh: note: no --kit and no bpftool: compile needs one (apt-get install bpftool, or set SCHEDC_BPFTOOL)" >&2
fi

echo "== python: .venv with schedc and its test tools"
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# PyPI's "libclang" (bundling libclang 18) was the bindings' package before "clang" (the
# bindings only, loading clang-19's own libclang): both install clang/, so drop the old one.
if .venv/bin/python -m pip show -q libclang >/dev/null 2>&1; then
    .venv/bin/python -m pip uninstall -q -y libclang
fi
.venv/bin/python -m pip install -q -e '.[test,plot]'

if [ -n "$kit" ]; then
    cat > schedc.toml <<TOML
# Written by scripts/setup.sh --kit $kit
[schedc]
kernel = "$kit/bzImage"
btf = "$kit/vmlinux.btf"
bpftool = "$kit/bpftool"
libbpf_include = "$kit/include"
TOML
    # The kit's libbpf for the quiet verifier loader: the real file, not a link (copies of
    # kits can turn symlinks into small text files).
    for lib in "$kit"/lib/libbpf.so.*.*.*; do
        if [ -f "$lib" ] && [ "$(head -c 4 "$lib" | od -An -c | tr -d ' ')" = "177ELF" ]; then
            echo "libbpf = \"$lib\"" >> schedc.toml
            break
        fi
    done
    # The kernel's config, for objects with __kconfig externs (the guest has no /boot of its own).
    if [ -f "$kit/kernel.config" ]; then
        echo "kconfig = \"$kit/kernel.config\"" >> schedc.toml
    fi
    # The kernel's example schedulers: a test input for check and verify, never project code.
    examples=$(bash scripts/fetch-kernel-examples.sh "$PWD/.cache/kernel-examples")
    echo "kernel_examples = \"$examples\"" >> schedc.toml
    # The kernel matrix: every kit, in the order given.
    list=""
    for k in "${kits[@]}"; do list="$list${list:+, }\"$k\""; done
    echo "kernels = [$list]" >> schedc.toml
    echo "== wrote schedc.toml for the kit in $kit (kernel examples in $examples; kernels: ${kits[*]})"
fi
echo "== ready: .venv/bin/schedc --help"
