#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# Run the device model's qtest (qemu/tests/qtest/nvme-lm-test.c) on the host
# against the rig's QEMU, no guest kernel.  Its TAP goes to LOG between the
# RIG-KTAP-BEGIN/END markers results.py reads.
#   run-qtest.sh QEMU FW LOG [CASES [TEST_PATH]]
# CASES: Set Controller State fuzz cases (default 2000); TEST_PATH: one
# test, e.g. /x86_64/nvme-lm/set-state-fuzz.  QEMU dying, a failed
# assertion or the time limit (RIG_QTEST_TIMEOUT, default 600 s) fail it.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

QEMU=$1 FW=$2 LOG=$3
CASES=${4:-2000}
TEST_PATH=${5:-}
BIN=$(dirname "$QEMU")/tests/qtest/nvme-lm-test
[ -x "$BIN" ] || die "no $BIN (scripts/build-qemu.sh builds it)"

args=(--tap -k)
[ -n "$TEST_PATH" ] && args+=(-p "$TEST_PATH")
seed=${NVME_LM_FUZZ_SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}
rc=0
QTEST_QEMU_BINARY=$QEMU NVME_LM_QEMU_ARGS="-L $FW" \
	NVME_LM_FUZZ_CASES=$CASES NVME_LM_FUZZ_SEED=$seed \
	timeout -k 10 "${RIG_QTEST_TIMEOUT:-600}" "$BIN" "${args[@]}" \
	>"$LOG.raw" 2>&1 || rc=$?
{
	echo "RIG-KTAP-BEGIN qtest"
	echo "# nvme-lm-test: $CASES fuzz cases, seed $seed (NVME_LM_FUZZ_SEED)"
	grep -av '^# starting QEMU' "$LOG.raw" || true
	[ "$rc" -ne 124 ] || echo "# nvme-lm-test: timed out"
	echo "RIG-KTAP-END qtest rc=$rc"
} >"$LOG"
rm -f "$LOG.raw"
grep -a '^\(not ok\|ok\|# set-state fuzz\|#   status\)' "$LOG" | sed 's/^/[qtest] /'
[ "$rc" -eq 0 ] || msg "nvme-lm-test exit status $rc (see $LOG)"
exit 0
