#!/usr/bin/env bash
# Builds a sched_ext sandbox kit from a distribution's kernel source package, for machines
# whose kernel has no sched_ext (no Debian kernel has it): a small x86-64 kernel for a
# virtme-ng/QEMU guest, its raw BTF, a static bpftool and the libbpf headers. Then point
# schedc at it:  scripts/setup.sh --kit OUTDIR   (or SCHEDC_KERNEL, SCHEDC_BTF, SCHEDC_BPFTOOL,
# SCHEDC_LIBBPF_INCLUDE). About 15-25 minutes on 2 cores; needs ~6 GB of free disk.
#
#   scripts/build-sandbox-kernel.sh [--source TARBALL] [--jobs N] OUTDIR
#
# Without --source it installs Debian's linux-source-6.12 and uses its tarball. Any kernel
# >= 6.12 works: sched_ext entered mainline in 6.12.
set -euo pipefail

source_tar=""
jobs=$(nproc)
out=""
while [ $# -gt 0 ]; do
    case "$1" in
        --source) source_tar=${2:?--source needs a tarball}; shift 2 ;;
        --jobs) jobs=${2:?--jobs needs a number}; shift 2 ;;
        -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
        -*) echo "build-sandbox-kernel.sh: unknown option $1" >&2; exit 2 ;;
        *) out=$1; shift ;;
    esac
done
[ -n "$out" ] || { echo "usage: build-sandbox-kernel.sh [--source TARBALL] [--jobs N] OUTDIR" >&2; exit 2; }
out=$(realpath -m "$out")

sudo=""
[ "$(id -u)" = 0 ] || sudo=sudo
echo "== build dependencies (apt)"
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    build-essential flex bison bc libelf-dev libssl-dev dwarves cpio zlib1g-dev xz-utils \
    python3 >/dev/null
if [ -z "$source_tar" ]; then
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q linux-source-6.12 >/dev/null
    source_tar=/usr/src/linux-source-6.12.tar.xz
fi
[ -f "$source_tar" ] || { echo "build-sandbox-kernel.sh: no kernel source at $source_tar" >&2; exit 2; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "== unpacking $source_tar"
tar -C "$work" -xf "$source_tar"
src=$(find "$work" -mindepth 1 -maxdepth 1 -type d | head -n 1)

echo "== configuring: x86-64 defconfig, trimmed for a guest, plus sched_ext and what it needs"
make -C "$src" -s defconfig
cfg() { "$src/scripts/config" --file "$src/.config" "$@"; }
# sched_ext and the BPF side of it; BTF so that libbpf and bpftool can use the kernel's types.
cfg -e BPF -e BPF_SYSCALL -e BPF_JIT -e BPF_JIT_ALWAYS_ON -e SCHED_CLASS_EXT \
    -e DEBUG_INFO -d DEBUG_INFO_NONE -e DEBUG_INFO_DWARF_TOOLCHAIN_DEFAULT -e DEBUG_INFO_BTF \
    -e PAHOLE_HAS_SPLIT_BTF -e FTRACE -e FUNCTION_TRACER -e DYNAMIC_FTRACE \
    -e CGROUPS -e CGROUP_SCHED -e FAIR_GROUP_SCHED -e EXT_GROUP_SCHED -e CGROUP_BPF
# What a virtme-ng guest boots from: virtio devices, 9p and virtiofs for the host's files,
# overlayfs for its throwaway writable layer, a serial console.
cfg -e VIRTIO -e VIRTIO_PCI -e VIRTIO_CONSOLE -e VIRTIO_BLK -e VIRTIO_NET \
    -e NET_9P -e NET_9P_VIRTIO -e 9P_FS -e 9P_FS_POSIX_ACL -e FUSE_FS -e VIRTIO_FS \
    -e OVERLAY_FS -e DEVTMPFS -e DEVTMPFS_MOUNT -e TMPFS -e SERIAL_8250 -e SERIAL_8250_CONSOLE
# Not needed in a guest and slow to build.
cfg -d DRM -d SOUND -d USB_SUPPORT -d WLAN -d WIRELESS -d BT -d MODULES
make -C "$src" -s olddefconfig
grep -q '^CONFIG_SCHED_CLASS_EXT=y' "$src/.config" || {
    echo "build-sandbox-kernel.sh: CONFIG_SCHED_CLASS_EXT did not stick (kernel < 6.12, or pahole too old?)" >&2
    exit 1
}

echo "== building the kernel (make -j$jobs bzImage)"
make -C "$src" -s -j"$jobs" bzImage
echo "== building a static bpftool and the libbpf headers"
make -C "$src/tools/bpf/bpftool" -s -j"$jobs" feature-llvm=0 feature-libbfd=0 \
    feature-libbfd-liberty=0 feature-libbfd-liberty-z=0 EXTRA_LDFLAGS=-static >/dev/null
make -C "$src/tools/lib/bpf" -s -j"$jobs" install_headers DESTDIR="$work/libbpf" prefix=/ >/dev/null

echo "== writing the kit to $out"
mkdir -p "$out/include"
cp "$src/arch/x86/boot/bzImage" "$out/bzImage"
cp "$src/.config" "$out/kernel.config"
objcopy -O binary --only-section=.BTF "$src/vmlinux" "$out/vmlinux.btf"
strip -o "$out/bpftool" "$src/tools/bpf/bpftool/bpftool"
cp -r "$work/libbpf/include/bpf" "$out/include/"
"$out/bpftool" btf dump file "$out/vmlinux.btf" format c | grep -q 'struct sched_ext_ops {' || {
    echo "build-sandbox-kernel.sh: the BTF has no struct sched_ext_ops" >&2
    exit 1
}
echo "kit written to $out: bzImage, vmlinux.btf, bpftool, include/bpf"
echo "use it: scripts/setup.sh --kit $out"
