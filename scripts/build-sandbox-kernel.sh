#!/usr/bin/env bash
# Builds a sched_ext sandbox kit from a distribution's kernel source package, for machines
# whose kernel has no sched_ext (no Debian kernel has it): a small x86-64 kernel for a
# virtme-ng/QEMU guest, its raw BTF, a static bpftool, libbpf (headers and libbpf.so) and the
# source's own example schedulers. Then point schedc at it:  scripts/setup.sh --kit OUTDIR
# (give --kit once per kit for a kernel matrix). About 15-25 minutes on 2 cores; ~6 GB of disk.
#
#   scripts/build-sandbox-kernel.sh [--version X.Y] [--source TARBALL|DIR] [--jobs N] OUTDIR
#   scripts/build-sandbox-kernel.sh --check-kit DIR
#
# Without --source it installs Debian's linux-source-X.Y (default 6.12; 7.2 is in Debian's
# unstable suite) and uses its /usr/src/linux-source-X.Y.tar.xz. Any kernel >= 6.12 works:
# sched_ext entered mainline in 6.12. A 7.x kernel needs pahole >= 1.26 on PATH (see below).
# --check-kit runs the checks a new kit gets on an existing one (files, BTF) and exits 0 or 1.
set -euo pipefail

me=build-sandbox-kernel.sh
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MIN_PAHOLE_7=126 # 1.26: the first pahole that writes the bpf_kfunc decl tags 7.x needs

die() { echo "$me: $1" >&2; exit "${2:-2}"; }

# The release X.Y of a kernel source tree, from its top Makefile.
tree_version() {
    local v p
    v=$(sed -n 's/^VERSION = \([0-9][0-9]*\)$/\1/p' "$1/Makefile" 2>/dev/null | head -n 1)
    p=$(sed -n 's/^PATCHLEVEL = \([0-9][0-9]*\)$/\1/p' "$1/Makefile" 2>/dev/null | head -n 1)
    [ -n "$v" ] && [ -n "$p" ] && echo "$v.$p"
}

# The release X.Y a tarball's name gives (linux-source-7.2.tar.xz, linux-7.2.13.tar.xz), if any.
tarball_version() {
    basename "$1" | sed -n 's/^linux-\(source-\)\{0,1\}\([0-9][0-9]*\.[0-9][0-9]*\).*/\2/p'
}

# pahole's version as one number (v1.24 -> 124), empty when it does not run.
pahole_version() {
    command -v pahole >/dev/null 2>&1 || return 0
    pahole --version 2>/dev/null | sed -n 's/^v\{0,1\}\([0-9][0-9]*\)\.\([0-9][0-9]*\).*/\1 \2/p' |
        head -n 1 | { read -r major minor && echo $((major * 100 + 10#$minor)); } || true
}

# Refuses a 7.x build whose pahole is missing or older than 1.26, before anything is built.
check_pahole() {
    local release=$1 have
    [ "${release%%.*}" -ge 7 ] || return 0
    have=$(pahole_version)
    if [ -n "$have" ] && [ "$have" -ge "$MIN_PAHOLE_7" ]; then
        return 0
    fi
    local found="no pahole is on PATH"
    if [ -n "$have" ]; then
        found="pahole on PATH is $(pahole --version 2>/dev/null | head -n 1) ($(command -v pahole))"
    elif command -v pahole >/dev/null 2>&1; then
        found="pahole on PATH ($(command -v pahole)) does not print its version"
    fi
    cat >&2 <<EOF
$me: Linux $release needs pahole >= 1.26 to build its BTF, and $found.
  Some 7.x kfuncs take an implicit argument (KF_IMPLICIT_ARGS): resolve_btfids rewrites their
  BTF prototypes to the short form BPF programs call, and finds them by the bpf_kfunc decl tags
  that only pahole >= 1.26 writes. With an older pahole (Debian 12 has 1.24) the build succeeds,
  but the BTF keeps the long prototypes and every scheduler fails to load with
  "func_proto ... incompatible with vmlinux".
  hint: build pahole >= 1.26 from source (git clone https://git.kernel.org/pub/scm/devel/pahole/pahole.git;
  cmake -B build -D__LIB=lib -DBUILD_SHARED_LIBS=OFF && make -C build install; needs cmake,
  libdw-dev, libelf-dev) and put it first on PATH, then run this again.
EOF
    exit 2
}

# The checks every kit gets: its files, a BTF with sched_ext, and schedc's own test for a BTF
# broken by an old pahole (schedc/verifier/btf.py). Prints why not and returns 1.
check_kit() {
    local kit=$1 f lib="" python bad=0
    for f in bzImage vmlinux.btf bpftool include/bpf/bpf_helpers.h; do
        [ -e "$kit/$f" ] || { echo "$me: $kit has no $f: not a sandbox kit" >&2; bad=1; }
    done
    for f in "$kit"/lib/libbpf.so.*.*.*; do
        [ -f "$f" ] && [ "$(head -c 4 "$f" | od -An -c | tr -d ' ')" = '177ELF' ] && lib=$f
    done
    [ -n "$lib" ] || { echo "$me: $kit has no lib/libbpf.so.X.Y.Z (an ELF shared library)" >&2; bad=1; }
    [ "$bad" = 0 ] || return 1
    [ -x "$kit/bpftool" ] || { echo "$me: $kit/bpftool is not executable" >&2; return 1; }
    "$kit/bpftool" btf dump file "$kit/vmlinux.btf" format c | grep 'struct sched_ext_ops {' >/dev/null || {
        echo "$me: $kit/vmlinux.btf has no struct sched_ext_ops: that kernel lacks sched_ext" >&2
        return 1
    }
    python=${SCHEDC_PYTHON:-}
    [ -n "$python" ] || { [ -x "$root/.venv/bin/python" ] && python=$root/.venv/bin/python; } || python=python3
    PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}" "$python" -m schedc.verifier.btf "$kit/vmlinux.btf" || {
        echo "$me: $kit/vmlinux.btf is not usable (above): the kit is broken" >&2
        return 1
    }
}

source_arg=""
version=""
check=""
jobs=$(nproc)
out=""
while [ $# -gt 0 ]; do
    case "$1" in
        --source) source_arg=${2:?--source needs a tarball or a source folder}; shift 2 ;;
        --version) version=${2:?--version needs a release such as 7.2}; shift 2 ;;
        --jobs) jobs=${2:?--jobs needs a number}; shift 2 ;;
        --check-kit) check=${2:?--check-kit needs a kit folder}; shift 2 ;;
        -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
        -*) die "unknown option $1" ;;
        *) out=$1; shift ;;
    esac
done

if [ -n "$check" ]; then
    [ -d "$check" ] || die "kit folder $check does not exist"
    check_kit "$check" || exit 1
    echo "kit $check: ok"
    exit 0
fi
usage="usage: $me [--version X.Y] [--source TARBALL|DIR] [--jobs N] OUTDIR | --check-kit DIR"
[ -n "$out" ] || die "$usage"
[ -z "$version" ] || [[ "$version" =~ ^[0-9]+\.[0-9]+$ ]] || die "--version is X.Y (such as 6.12 or 7.2), not '$version'"
out=$(realpath -m "$out")
[ ! -e "$out" ] || [ -z "$(ls -A "$out" 2>/dev/null)" ] || die "$out exists and is not empty: give a new folder"

# Which release this is, as early as it can be known: the pahole check comes before apt.
if [ -n "$source_arg" ]; then
    [ -e "$source_arg" ] || die "no kernel source at $source_arg"
    if [ -d "$source_arg" ]; then
        tree=$(tree_version "$source_arg") || die "$source_arg has no kernel Makefile (VERSION, PATCHLEVEL): not a kernel source tree"
        [ -z "$version" ] || [ "$version" = "$tree" ] || die "--version $version, but $source_arg is Linux $tree"
        version=$tree
    elif [ -z "$version" ]; then
        version=$(tarball_version "$source_arg")
    fi
else
    version=${version:-6.12}
fi
[ -z "$version" ] || check_pahole "$version"

sudo=""
[ "$(id -u)" = 0 ] || sudo=sudo
apt_install() { $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >/dev/null; }
deps=(build-essential flex bison bc libelf-dev libssl-dev cpio zlib1g-dev xz-utils python3 rsync)
# A 7.x build uses the pahole checked above; Debian 12's dwarves (1.24) must not replace it.
[ -n "$version" ] && [ "${version%%.*}" -ge 7 ] || deps+=(dwarves)
echo "== build dependencies (apt)"
apt_install "${deps[@]}"
if [ -z "$source_arg" ]; then
    package=linux-source-$version
    candidate=$(apt-cache policy "$package" 2>/dev/null | sed -n 's/^ *Candidate: //p')
    if [ -z "$candidate" ] || [ "$candidate" = "(none)" ]; then
        die "$package is not in this system's apt sources (Debian has 7.x sources in its unstable suite)
  hint: add a suite that has it, or download linux-$version.N.tar.xz from kernel.org and pass --source FILE"
    fi
    apt_install "$package"
    source_arg=/usr/src/$package.tar.xz
    [ -f "$source_arg" ] || die "$package is installed but $source_arg is missing"
fi

work=$(mktemp -d)
stage=""
trap 'rm -rf "$work" ${stage:+"$stage"}' EXIT
if [ -d "$source_arg" ]; then
    echo "== copying $source_arg (the given tree is not changed)"
    src=$work/linux
    cp -a "$source_arg" "$src"
else
    echo "== unpacking $source_arg"
    tar -C "$work" -xf "$source_arg"
    src=$(find "$work" -mindepth 1 -maxdepth 1 -type d | head -n 1)
fi
tree=$(tree_version "$src") || die "$source_arg holds no kernel source tree"
version=$tree
check_pahole "$version" # a tarball whose name did not say its release
seven=false
[ "${version%%.*}" -lt 7 ] || seven=true
pahole_make=()
! $seven || pahole_make=(PAHOLE="$(command -v pahole)")

echo "== configuring Linux $version: x86-64 defconfig, trimmed for a guest, plus sched_ext"
make -C "$src" -s "${pahole_make[@]}" defconfig
cfg() { "$src/scripts/config" --file "$src/.config" "$@"; }
# sched_ext and the BPF side of it; BTF so that libbpf and bpftool can use the kernel's types.
cfg -e BPF -e BPF_SYSCALL -e BPF_JIT -e BPF_JIT_ALWAYS_ON -e SCHED_CLASS_EXT \
    -e DEBUG_INFO -d DEBUG_INFO_NONE -e DEBUG_INFO_DWARF_TOOLCHAIN_DEFAULT -e DEBUG_INFO_BTF \
    -e PAHOLE_HAS_SPLIT_BTF -e FTRACE -e FUNCTION_TRACER -e DYNAMIC_FTRACE \
    -e CGROUPS -e CGROUP_SCHED -e FAIR_GROUP_SCHED -e EXT_GROUP_SCHED -e CGROUP_BPF
# 7.x: sub-schedulers in cgroups (EXT_SUB_SCHED), as in the project's 7.2 kit. (6.12 has no
# such symbol; olddefconfig drops it there.)
! $seven || cfg -e EXT_SUB_SCHED
# What a virtme-ng guest boots from: virtio devices, 9p and virtiofs for the host's files,
# overlayfs for its throwaway writable layer, a serial console.
cfg -e VIRTIO -e VIRTIO_PCI -e VIRTIO_CONSOLE -e VIRTIO_BLK -e VIRTIO_NET \
    -e NET_9P -e NET_9P_VIRTIO -e 9P_FS -e 9P_FS_POSIX_ACL -e FUSE_FS -e VIRTIO_FS \
    -e OVERLAY_FS -e DEVTMPFS -e DEVTMPFS_MOUNT -e TMPFS -e SERIAL_8250 -e SERIAL_8250_CONSOLE
# Not needed in a guest and slow to build.
cfg -d DRM -d SOUND -d USB_SUPPORT -d WLAN -d WIRELESS -d BT -d MODULES
make -C "$src" -s "${pahole_make[@]}" olddefconfig
for symbol in SCHED_CLASS_EXT DEBUG_INFO_BTF; do
    grep -q "^CONFIG_$symbol=y" "$src/.config" ||
        die "CONFIG_$symbol did not stick (kernel < 6.12, or pahole missing or too old?)" 1
done
if $seven; then # Kconfig records the pahole it saw: the build must use the one checked above
    seen=$(sed -n 's/^CONFIG_PAHOLE_VERSION=//p' "$src/.config")
    [ "${seen:-0}" -ge "$MIN_PAHOLE_7" ] ||
        die "the kernel's configuration saw pahole version '${seen:-none}', not >= $MIN_PAHOLE_7" 1
fi

echo "== building the kernel (make -j$jobs bzImage)"
make -C "$src" -s -j"$jobs" "${pahole_make[@]}" bzImage
echo "== building a static bpftool and libbpf (headers, libbpf.so)"
make -C "$src/tools/bpf/bpftool" -s -j"$jobs" feature-llvm=0 feature-libbfd=0 \
    feature-libbfd-liberty=0 feature-libbfd-liberty-z=0 EXTRA_LDFLAGS=-static >/dev/null
make -C "$src/tools/lib/bpf" -s -j"$jobs" >/dev/null
make -C "$src/tools/lib/bpf" -s install_headers DESTDIR="$work/libbpf" prefix=/ >/dev/null

# Written beside OUTDIR first and moved into place once checked: no half-written kit.
mkdir -p "$(dirname "$out")"
stage=$(mktemp -d "$(dirname "$out")/.kit-$(basename "$out").XXXXXX")
echo "== writing the kit"
mkdir -p "$stage/include" "$stage/lib"
cp "$src/arch/x86/boot/bzImage" "$stage/bzImage"
cp "$src/.config" "$stage/kernel.config"
objcopy -O binary --only-section=.BTF "$src/vmlinux" "$stage/vmlinux.btf"
strip -o "$stage/bpftool" "$src/tools/bpf/bpftool/bpftool"
cp -r "$work/libbpf/include/bpf" "$stage/include/"
for lib in "$src"/tools/lib/bpf/libbpf.so.*.*.*; do
    [ -f "$lib" ] || die "libbpf built no libbpf.so.X.Y.Z" 1
    cp "$lib" "$stage/lib/"
    name=$(basename "$lib")
    ln -sf "$name" "$stage/lib/libbpf.so.$(echo "${name#libbpf.so.}" | cut -d. -f1)"
    ln -sf "$name" "$stage/lib/libbpf.so"
done
# The source's own example schedulers, a test input (the generated vmlinux.h left out).
if [ -d "$src/tools/sched_ext" ]; then
    rsync -a --exclude vmlinux.h --exclude build "$src/tools/sched_ext/" "$stage/sched_ext-examples/"
fi
echo "== checking the kit"
check_kit "$stage" || exit 1
[ ! -d "$out" ] || rmdir "$out"
mv "$stage" "$out"
stage=""
echo "kit written to $out: bzImage, vmlinux.btf, bpftool, include/bpf, lib/libbpf.so, sched_ext-examples"
echo "use it: scripts/setup.sh --kit $out"
