#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# Build the vfio-nvme selftests (static) against the kernel's uapi headers
# and kselftest_harness.h.   build-selftests.sh KDIR OUTDIR
set -euo pipefail
. "$(dirname "$0")/lib.sh"
kdir=$1 out=$2
ksrc=$(dirname "$kdir")/src
hdrs=$(dirname "$kdir")/headers
mkdir -p "$out"
run_logged "$LOGDIR/selftests-build.log" make -C "$ROOT/tools/testing/selftests/vfio-nvme" \
	KSFT_DIR="$ksrc/tools/testing/selftests" KHDR_INCLUDES="-isystem $hdrs/include" \
	O="$out"
grep -E "warning:" "$LOGDIR/selftests-build.log" && die "selftests build has warnings"
exit 0
