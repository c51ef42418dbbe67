#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# make check / make demo / make shell: build everything (cached), lint, boot
# the rig and turn the guest's KTAP/TAP into "N passed, M failed".
#   check.sh [check|demo|bench|shell]
# Environment: TESTS="vf_basic_test ..." (default all), TEST_ARGS="-t name"
# (kselftest harness filter), RIG_TIMEOUT (seconds, default 900).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

MODE=${1:-check}
RUNDIR=$CACHE/run-$MODE
T0=$(date +%s)
msg "cache: $CACHE   mode: $MODE"

phase deps bash "$ROOT/scripts/deps.sh"
phase qemu bash -c "bash '$ROOT/scripts/build-qemu.sh' >'$CACHE/.qemu-path'"
QEMU=$(cat "$CACHE/.qemu-path")
phase kernel bash -c "bash '$ROOT/scripts/build-kernel.sh' >'$CACHE/.kdir-path'"
KDIR=$(cat "$CACHE/.kdir-path")
phase module bash "$ROOT/scripts/build-module.sh" "$KDIR"
if [ "$MODE" = check ]; then
	phase lint bash "$ROOT/scripts/lint.sh" "$KDIR"
	phase series bash "$ROOT/scripts/check-series.sh"
fi
rm -rf "$RUNDIR"
mkdir -p "$RUNDIR/tests"
phase selftests bash "$ROOT/scripts/build-selftests.sh" "$KDIR" "$RUNDIR/tests"

KERNEL=$KDIR/arch/x86/boot/bzImage
FW=$(dirname "$(dirname "$QEMU")")/fw
# The end-to-end migration test (QEMU in the guest, an L2 VM) runs in check
# and demo; E2E_BACKENDS="" skips it.  E2E_VF_OPTS adds options to QEMU's
# -device vfio-pci (only to show what the test catches without them).
case $MODE in
check) E2E_BACKENDS=${E2E_BACKENDS-legacy iommufd} ;;
demo) E2E_BACKENDS=${E2E_BACKENDS-iommufd} ;;
*) E2E_BACKENDS= ;;
esac
E2E_ROOT=
if [ -n "$E2E_BACKENDS" ] || [ "$MODE" = bench ]; then
	E2E_ROOT=$RUNDIR/e2e-root
	phase l2kernel bash -c "bash '$ROOT/scripts/build-kernel.sh' l2 >'$CACHE/.l2kdir-path'"
	L2KERNEL=$(cat "$CACHE/.l2kdir-path")/arch/x86/boot/bzImage
	phase e2e-image bash "$ROOT/scripts/mke2e.sh" "$QEMU" "$FW" "$L2KERNEL" \
		"$RUNDIR/tests" "$E2E_ROOT"
fi

cat >"$RUNDIR/config" <<EOT
MODE=$MODE
TESTS="${TESTS:-}"
TEST_ARGS="${TEST_ARGS:-}"
E2E_BACKENDS="$E2E_BACKENDS"
E2E_ROUNDS=${E2E_ROUNDS:-1}
E2E_VF_OPTS="${E2E_VF_OPTS:-}"
EOT
phase initramfs bash "$ROOT/scripts/mkinitramfs.sh" "$RUNDIR/initramfs.cpio" \
	"$ROOT/drivers/vfio/pci/nvme" "$RUNDIR/tests" "$RUNDIR/config" $E2E_ROOT
if [ "$MODE" = shell ]; then
	msg "guest shell: Ctrl-A X quits QEMU"
	exec bash "$ROOT/scripts/run-vm.sh" "$QEMU" "$FW" "$KERNEL" \
		"$RUNDIR/initramfs.cpio" "$RUNDIR" 0 interactive
fi

vm_rc=0
progress=
if [ "$MODE" = demo ]; then
	# live progress of the migrations while the guest runs
	: >"$RUNDIR/console.log"
	tail -F -n +1 "$RUNDIR/console.log" 2>/dev/null > >(grep --line-buffered -a \
		'^E2E T+\|^DEMO' | sed -u 's/^/[guest] /') &
	progress=$!
fi
RIG_APPEND="loglevel=5" phase vm bash "$ROOT/scripts/run-vm.sh" "$QEMU" "$FW" "$KERNEL" \
	"$RUNDIR/initramfs.cpio" "$RUNDIR" "${RIG_TIMEOUT:-1800}" || vm_rc=$?
if [ -n "$progress" ]; then
	sleep 1
	kill "$progress" 2>/dev/null || true
fi
msg "console log: $RUNDIR/console.log"

if [ "$MODE" = bench ]; then
	grep -a '^BENCH' "$RUNDIR/console.log" | sed 's/^BENCH //'
	grep -aq '^BENCH ratio' "$RUNDIR/console.log" || die "the benchmark did not finish (see console log)"
	exit 0
fi
if [ "$MODE" = demo ]; then
	sed -n '/RIG-TOPOLOGY-BEGIN/,/RIG-TOPOLOGY-END/p;/^VF /p;/SCID .*VID/p;/^DEMO/p;/^ok /p;/^not ok /p' \
		"$RUNDIR/console.log" | grep -av '^RIG-' | sed 's/^# *//; s/^DEMO //'
	grep -aq RIG-POWEROFF "$RUNDIR/console.log" || die "guest did not finish (see console log)"
	grep -aq '^not ok' "$RUNDIR/console.log" && die "the demo had failures (see console log)"
	exit 0
fi

msg "total $(($(date +%s) - T0))s"
exec /usr/bin/python3 "$ROOT/scripts/results.py" "$RUNDIR/console.log" "$vm_rc"
