#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# make check / make demo / make shell: build everything (cached), lint, boot
# the rig and turn the guest's KTAP/TAP into "N passed, M failed".
#   check.sh [check|check-debug|demo|bench|shell]
# check-debug: the full suite on the debug flavour of the guest kernel
# (scripts/kconfig/debug.config: KASAN, UBSAN, kmemleak, debug objects;
# default RIG_KERNEL=7.3, no end-to-end test unless E2E_BACKENDS is set).
# Environment: TESTS="vf_basic_test ..." (default all), TEST_ARGS="-t name"
# (kselftest harness filter), RIG_TIMEOUT (seconds, default 1800),
# RIG_KERNEL="6.12 7.3" (the guest kernels; check runs the suite on each,
# the other modes on the first; default: both for check, 6.12 otherwise).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

MODE=${1:-check}
RUNDIR=$CACHE/run-$MODE
FLAVOUR=rig
if [ "$MODE" = check-debug ]; then
	FLAVOUR=debug
	MODE=check
	RIG_KERNEL=${RIG_KERNEL:-7.3}
	E2E_BACKENDS=${E2E_BACKENDS-}
	# KASAN and kmemleak under TCG: the guest is several times slower
	RIG_TIMEOUT=${RIG_TIMEOUT:-5400}
fi
T0=$(date +%s)
# One rig run per cache: two would rebuild the same QEMU and kernel trees
# and overwrite each other's logs, console logs and results.  The lock is
# held until this script and everything it started (the VMs) have exited.
exec 9>"$CACHE/.rig.lock"
if ! flock -n 9; then
	die "another rig run (make check, check-debug, fuzz, demo, bench or shell) is using $CACHE; wait for it, or give this one its own cache with XDG_CACHE_HOME"
fi
msg "cache: $CACHE   mode: $MODE"

if [ "$MODE" = check ]; then
	KERNELS=${RIG_KERNEL:-$RIG_KERNELS}
else
	KERNELS=${RIG_KERNEL:-6.12}
	KERNELS=${KERNELS%% *}
fi
for v in $KERNELS; do
	case " $RIG_KERNELS " in *" $v "*) ;; *) die "RIG_KERNEL: unknown kernel '$v' (the rig runs: $RIG_KERNELS)" ;; esac
done
msg "guest kernels: $KERNELS$([ "$FLAVOUR" = rig ] || echo " ($FLAVOUR flavour)")"

phase deps bash "$ROOT/scripts/deps.sh"
phase qemu bash -c "bash '$ROOT/scripts/build-qemu.sh' >'$CACHE/.qemu-path'"
QEMU=$(cat "$CACHE/.qemu-path")
in_kernels() { case " $KERNELS " in *" $1 "*) return 0 ;; esac; return 1; }

# kernel_phases V: the guest kernel V (its debug flavour in check-debug)
# and the out-of-tree module built against it; the guest's build directory
# goes to $CACHE/.guest-kdir-V.  6.12's rig kernel is always built: the L2
# guest's kernel, the lint and the selftests' uapi headers come from its
# tree; the module the 6.12 rig guest loads is built in the source tree.
kernel_phases() {
	local v=$1 kd
	if [ "$FLAVOUR" = rig ] || [ "$v" = 6.12 ]; then
		phase "kernel-$v" bash -c "bash '$ROOT/scripts/build-kernel.sh' rig $v >'$CACHE/.kdir-path-$v'"
		kd=$(cat "$CACHE/.kdir-path-$v")
	fi
	if [ "$v" = 6.12 ]; then
		phase module-6.12 bash "$ROOT/scripts/build-module.sh" "$kd"
	fi
	if [ "$FLAVOUR" = debug ] && in_kernels "$v"; then
		phase "kernel-debug-$v" bash -c "bash '$ROOT/scripts/build-kernel.sh' debug $v >'$CACHE/.kdir-path-debug-$v'"
		kd=$(cat "$CACHE/.kdir-path-debug-$v")
		phase "module-debug-$v" bash "$ROOT/scripts/build-module.sh" "$kd" --copy
	elif [ "$v" != 6.12 ]; then
		phase "module-$v" bash "$ROOT/scripts/build-module.sh" "$kd" --copy
	fi
	echo "$kd" >"$CACHE/.guest-kdir-$v"
}

# check_phases: the lint and every kernel's series check (make check only)
check_phases() {
	local v
	phase lint bash "$ROOT/scripts/lint.sh" "$KDIR"
	for v in $KERNELS; do
		phase "series-$v" bash "$ROOT/scripts/check-series.sh" "$v"
	done
}

# in the background while a guest runs: a TCG guest keeps about one of the
# two cores busy, the next kernel's build or the checks take the rest at
# nice 19 (the guest's timing stays its own); their phase lines are printed
# when they are done
BG_PID= BG_WHAT=
bg_start() {
	BG_WHAT=$*
	msg "in the background: $BG_WHAT"
	(renice -n 19 -p "$BASHPID" >/dev/null && "$@") >"$LOGDIR/background.log" 2>&1 &
	BG_PID=$!
}
bg_wait() {
	local rc=0
	[ -n "$BG_PID" ] || return 0
	wait "$BG_PID" || rc=$?
	BG_PID=
	sed 's/^\[rig\] /[rig] (background) /' "$LOGDIR/background.log"
	[ $rc -eq 0 ] || die "$BG_WHAT failed (rc=$rc)"
}
# a run that stops early takes its background builds with it
kill_tree() {
	local c
	for c in $(ps -o pid= --ppid "$1" 2>/dev/null); do
		kill_tree "$c"
	done
	kill "$1" 2>/dev/null || true
}
trap '[ -z "$BG_PID" ] || kill_tree "$BG_PID"' EXIT

kernel_phases 6.12
KDIR=$(cat "$CACHE/.kdir-path-6.12")
rm -rf "$RUNDIR"
mkdir -p "$RUNDIR/tests"
phase selftests bash "$ROOT/scripts/build-selftests.sh" "$KDIR" "$RUNDIR/tests"

FW=$(dirname "$(dirname "$QEMU")")/fw
# The device model on its own: the qtest with a short Set Controller State
# fuzz (make fuzz runs 100k cases)
host_results=()
if [ "$MODE" = check ]; then
	phase qtest bash "$ROOT/scripts/run-qtest.sh" "$QEMU" "$FW" "$RUNDIR/qtest.log" \
		"${QTEST_FUZZ_CASES:-2000}"
	host_results+=(--host model "$RUNDIR/qtest.log")
fi
# The end-to-end migration test (QEMU in the guest, an L2 VM) runs in check
# and demo; E2E_BACKENDS="" skips it.  check: "legacy+iommufd", one L2 VM
# whose QEMUs alternate (container -> iommufd -> container); "legacy
# iommufd" boots one L2 VM per backend.  E2E_VF_OPTS adds options to QEMU's
# -device vfio-pci (only to show what the test catches without them).
case $MODE in
check) E2E_BACKENDS=${E2E_BACKENDS-legacy+iommufd} ;;
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
STREAM_FUZZ_CASES="${STREAM_FUZZ_CASES:-}"
STREAM_FUZZ_SEED="${STREAM_FUZZ_SEED:-}"
STREAM_FUZZ_WORKERS="${STREAM_FUZZ_WORKERS:-}"
FAULT_MATRIX_FULL="${FAULT_MATRIX_FULL:-}"
TIMEOUT_SCALE=$([ "$FLAVOUR" = rig ] && echo 1 || echo "${RIG_DEBUG_TIMEOUT_SCALE:-4}")
EOT
# One guest per kernel, each in RUNDIR/vm-VERSION: the 6.12 guest loads the
# out-of-tree module, the 7.3 guest the in-tree one of its own build.
# The debug flavour boots with 4-level paging: with -cpu max's LA57 the 7.3
# KASAN kernel reported a wild-memory-access in rcu_is_watching() from a
# timer interrupt during identify_cpu() at 0.008 s (a direct-map address
# ff11..., before our code runs)
APPEND="loglevel=5"
[ "$FLAVOUR" = rig ] || APPEND="$APPEND no5lvl"
results=()
built=" 6.12 "
checked=
[ "$MODE" = check ] || checked=1
set -- $KERNELS
while [ $# -gt 0 ]; do
	v=$1
	shift
	case $built in *" $v "*) ;; *) kernel_phases "$v"; built="$built$v " ;; esac
	guest_kdir=$(cat "$CACHE/.guest-kdir-$v")
	vmdir=$RUNDIR/vm-$v
	mkdir -p "$vmdir"
	moddir=$ROOT/drivers/vfio/pci/nvme
	if [ "$FLAVOUR" = debug ]; then
		moddir=$(oot_dir "$guest_kdir")/drivers/vfio/pci/nvme
	elif [ "$v" != 6.12 ]; then
		moddir=$guest_kdir/drivers/vfio/pci/nvme
	fi
	phase "initramfs-$v" bash "$ROOT/scripts/mkinitramfs.sh" "$vmdir/initramfs.cpio" \
		"$moddir" "$RUNDIR/tests" "$RUNDIR/config" $E2E_ROOT
	KERNEL=$guest_kdir/arch/x86/boot/bzImage
	# while this guest runs: the next guest's kernel, or else the checks
	if [ $# -gt 0 ]; then
		bg_start kernel_phases "$1"
		built="$built$1 "
	elif [ -z "$checked" ]; then
		bg_start check_phases
		checked=1
	fi
	if [ "$MODE" = shell ]; then
		msg "guest shell ($v): Ctrl-A X quits QEMU"
		exec bash "$ROOT/scripts/run-vm.sh" "$QEMU" "$FW" "$KERNEL" \
			"$vmdir/initramfs.cpio" "$vmdir" 0 interactive
	fi

	vm_rc=0
	progress=
	if [ "$MODE" = demo ]; then
		# live progress of the migrations while the guest runs
		: >"$vmdir/console.log"
		tail -F -n +1 "$vmdir/console.log" 2>/dev/null > >(grep --line-buffered -a \
			'^E2E T+\|^DEMO' | sed -u 's/^/[guest] /') &
		progress=$!
	fi
	RIG_APPEND="$APPEND" phase "vm-$v" bash "$ROOT/scripts/run-vm.sh" "$QEMU" "$FW" "$KERNEL" \
		"$vmdir/initramfs.cpio" "$vmdir" "${RIG_TIMEOUT:-1800}" || vm_rc=$?
	# TCG lost a local APIC EOI (run-vm.sh): an emulator fault no test
	# causes; the guest runs again from the start, at most twice more, and
	# the results say so.  Any other stall, or a third one, fails the run.
	n=1
	while [ $vm_rc -eq 126 ] && [ $n -le 2 ]; do
		mv "$vmdir/console.log" "$vmdir/console-stalled-$n.log"
		mv "$vmdir/stall.log" "$vmdir/stall-$n.log"
		echo "guest run $n stalled (TCG lost a LAPIC EOI: stall-$n.log, console-stalled-$n.log); the results are those of run $((n + 1))" \
			>>"$vmdir/rerun"
		msg "vm-$v: TCG lost a LAPIC EOI in the guest (see $vmdir/stall-$n.log): running it again"
		n=$((n + 1))
		vm_rc=0
		RIG_APPEND="$APPEND" phase "vm-$v" bash "$ROOT/scripts/run-vm.sh" "$QEMU" "$FW" "$KERNEL" \
			"$vmdir/initramfs.cpio" "$vmdir" "${RIG_TIMEOUT:-1800}" || vm_rc=$?
	done
	if [ -n "$progress" ]; then
		sleep 1
		kill "$progress" 2>/dev/null || true
	fi
	msg "console log ($v): $vmdir/console.log"
	results+=(--run "$v" "$vmdir/console.log" "$vm_rc")
	bg_wait
done
RUNDIR=$RUNDIR/vm-${KERNELS%% *}

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
exec /usr/bin/python3 "$ROOT/scripts/results.py" "${results[@]}" "${host_results[@]}"
