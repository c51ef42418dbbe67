#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# Build the L1 guest initramfs (uncompressed newc cpio).
#   mkinitramfs.sh OUT.cpio MODDIR TESTDIR CONFIG [EXTRA_ROOT]
# EXTRA_ROOT: a tree copied into the root as it is (the e2e payload).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

out=$1 moddir=$2 testdir=$3 config=$4 extra=${5:-}
stage=$(mktemp -d "$CACHE/initramfs.XXXXXX")
trap 'rm -rf "$stage"' EXIT

mkdir -p "$stage"/{bin,sbin,dev,proc,sys,tmp,run,rig,tests,lib/modules}
cp /bin/busybox "$stage/bin/busybox"
if ldd /bin/busybox >/dev/null 2>&1; then
	die "/bin/busybox is not static (install busybox-static)"
fi
cp "$ROOT/scripts/guest/init" "$stage/init"
chmod 755 "$stage/init"
cp "$moddir"/*.ko "$stage/lib/modules/"
cp "$testdir"/* "$stage/tests/"
cp "$config" "$stage/rig/config"
if [ -n "$extra" ]; then
	cp -a "$extra/." "$stage/"
fi
(cd "$stage" && find . | LC_ALL=C sort | cpio -o -H newc --quiet) >"$out"
