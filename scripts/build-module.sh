#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# Build nvme-vfio-pci.ko out of tree against KDIR, with its KUnit modules
# (nvme-vfio-pci-test.ko, nvme-vfio-pci-live-test.ko).  Any warning fails.
#   build-module.sh KDIR [--copy]
# --copy: build a copy of the sources in the cache, not the source tree
# (the out-of-tree build against another kernel than the one whose module
# the 6.12 guest loads from drivers/vfio/pci/nvme/).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
kdir=$1
dir=$ROOT
log=$LOGDIR/module-build.log
if [ "${2:-}" = --copy ]; then
	dir=$(oot_dir "$kdir")
	log=$LOGDIR/module-build-$(basename "$(dirname "$kdir")").log
	mkdir -p "$dir"
	# sources only: not the build output of the source tree's own build
	# (its *.mod lists objects built for the other kernel)
	rsync -rlc --delete --filter=':- .gitignore' --exclude-from="$ROOT/.gitignore" \
		"$ROOT/Kbuild" "$ROOT/drivers" "$dir/"
fi
run_logged "$log" make -C "$kdir" M="$dir" W=1 CONFIG_NVME_VFIO_PCI_KUNIT_TEST=m modules
grep -E "warning:|error:" "$log" && die "module build has warnings"
for m in nvme-vfio-pci nvme-vfio-pci-test nvme-vfio-pci-live-test; do
	[ -f "$dir/drivers/vfio/pci/nvme/$m.ko" ] || die "$m.ko not built"
done
msg "module: built out of tree against $(make -s -C "$kdir" kernelversion 2>/dev/null || echo "$kdir")"
