#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# The end-to-end migration payload for the L1 initramfs: the rig's QEMU
# (stripped) with every library ldd lists and the firmware, and the L2
# guest (its small kernel and a busybox initramfs running l2_workload).
#   mke2e.sh QEMU FWDIR L2_KERNEL TESTDIR OUTDIR
# OUTDIR becomes a tree that mkinitramfs.sh copies into the L1 root.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

qemu=$1 fw=$2 kernel=$3 testdir=$4 out=$5
rm -rf "$out"
mkdir -p "$out/usr/bin" "$out/e2e/fw" "$out/e2e/l2"
strip -o "$out/usr/bin/qemu-system-x86_64" "$qemu"
for lib in $(ldd "$qemu" | grep -o '/[^ ]*'); do
	mkdir -p "$out$(dirname "$lib")"
	cp -L "$lib" "$out$lib"
done
cp "$fw"/* "$out/e2e/fw/"
cp "$kernel" "$out/e2e/l2/bzImage"

l2=$(mktemp -d "$CACHE/l2root.XXXXXX")
trap 'rm -rf "$l2"' EXIT
mkdir -p "$l2"/{bin,dev,proc,sys,tmp}
cp /bin/busybox "$l2/bin/busybox"
install -m 755 "$testdir/l2_init" "$l2/init"
install -m 755 "$testdir/l2_workload" "$l2/bin/l2_workload"
(cd "$l2" && find . | LC_ALL=C sort | cpio -o -H newc --quiet) >"$out/e2e/l2/initrd.cpio"
