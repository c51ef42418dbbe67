#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# make fuzz: the device model's Set Controller State fuzzer, FUZZ_CASES
# mutated states (default 100000) fed to a suspended VF of the rig's QEMU
# by the qtest; each one must end in a status, with QEMU alive and the VF
# answering Identify after a reset.  NVME_LM_FUZZ_SEED repeats a run.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

T0=$(date +%s)
phase deps bash "$ROOT/scripts/deps.sh"
phase qemu bash -c "bash '$ROOT/scripts/build-qemu.sh' >'$CACHE/.qemu-path'"
QEMU=$(cat "$CACHE/.qemu-path")
FW=$(dirname "$(dirname "$QEMU")")/fw
mkdir -p "$CACHE/run-fuzz"
RIG_QTEST_TIMEOUT=${RIG_QTEST_TIMEOUT:-3600} phase set-state-fuzz \
	bash "$ROOT/scripts/run-qtest.sh" "$QEMU" "$FW" "$CACHE/run-fuzz/qtest.log" \
	"${FUZZ_CASES:-100000}" /x86_64/nvme-lm/set-state-fuzz
msg "total $(($(date +%s) - T0))s"
exec /usr/bin/python3 "$ROOT/scripts/results.py" --host model "$CACHE/run-fuzz/qtest.log"
