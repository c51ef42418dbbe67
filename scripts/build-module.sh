#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# Build nvme-vfio-pci.ko out of tree against KDIR.  Extra args go to kbuild.
#   build-module.sh KDIR [kbuild args...]
set -euo pipefail
. "$(dirname "$0")/lib.sh"
kdir=$1
shift
run_logged "$LOGDIR/module-build.log" make -C "$kdir" M="$ROOT" "$@" modules
grep -E "warning:|error:" "$LOGDIR/module-build.log" && die "module build has warnings"
for m in nvme-vfio-pci nvme-vfio-pci-live-test; do
	[ -f "$ROOT/drivers/vfio/pci/nvme/$m.ko" ] || die "$m.ko not built"
done
