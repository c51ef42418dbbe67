#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# Build nvme-vfio-pci.ko out of tree against KDIR, with its KUnit modules
# (nvme-vfio-pci-test.ko, nvme-vfio-pci-live-test.ko).  Extra args go to
# kbuild.
#   build-module.sh KDIR [kbuild args...]
set -euo pipefail
. "$(dirname "$0")/lib.sh"
kdir=$1
shift
run_logged "$LOGDIR/module-build.log" make -C "$kdir" M="$ROOT" \
	CONFIG_NVME_VFIO_PCI_KUNIT_TEST=m "$@" modules
grep -E "warning:|error:" "$LOGDIR/module-build.log" && die "module build has warnings"
for m in nvme-vfio-pci nvme-vfio-pci-test nvme-vfio-pci-live-test; do
	[ -f "$ROOT/drivers/vfio/pci/nvme/$m.ko" ] || die "$m.ko not built"
done
