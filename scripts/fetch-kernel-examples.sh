#!/usr/bin/env bash
# Extract the kernel's example sched_ext schedulers (tools/sched_ext of Debian's
# linux-source-6.12) into DEST/tools/sched_ext, as a test input for `schedc check`:
#   scripts/fetch-kernel-examples.sh DEST && export SCHEDC_KERNEL_EXAMPLES=DEST
# Only tools/sched_ext is extracted (about 1 s of work, 150 KB); nothing is copied into the
# project. Installs linux-source-6.12 with apt-get when its tarball is missing.
set -euo pipefail

dest=${1:?usage: $0 DEST}
version=${SCHEDC_KERNEL_SOURCE_VERSION:-6.12}
tarball=/usr/src/linux-source-$version.tar.xz

if [ ! -f "$tarball" ]; then
    echo "fetch-kernel-examples: $tarball missing; installing linux-source-$version" >&2
    sudo=""
    if [ "$(id -u)" != 0 ]; then sudo=sudo; fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "linux-source-$version" >/dev/null
fi

mkdir -p "$dest"
tar -xJf "$tarball" -C "$dest" --strip-components=1 "linux-source-$version/tools/sched_ext"
for f in scx_simple scx_qmap scx_central scx_flatcg; do
    test -f "$dest/tools/sched_ext/$f.bpf.c" || {
        echo "fetch-kernel-examples: $f.bpf.c is not in $tarball" >&2
        exit 1
    }
done
echo "$dest/tools/sched_ext"
