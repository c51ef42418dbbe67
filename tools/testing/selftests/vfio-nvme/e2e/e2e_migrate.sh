#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
# End-to-end live migration, run in the rig's L1 guest: QEMU (the rig's own
# build) runs a small L2 VM that owns VF1 through vfio-pci, with the
# workload (l2_workload) doing I/O on it, and migrates it to a second QEMU
# that owns VF2 and waits with -incoming; then back again to a new QEMU on
# VF1 (the old source is the next destination).
#
#   e2e_migrate.sh BACKEND VF1 VF2 [ROUND_TRIPS]
#
# BACKEND is "legacy" (VFIO container), "iommufd", or a "+"-separated list
# of them that the QEMUs take in turn (a, b, c, ...): "legacy+iommufd"
# migrates from a QEMU on the container to one on iommufd and back, so one
# L2 boot covers both backends as source and as destination.  QEMU runs with its
# default vfio-pci options and default migration parameters; only the
# return-path and switchover-ack capabilities are set.  Prints TAP on
# stdout and one "DEMO" report line per migration; a watchdog dumps both
# QEMUs' state when a migration or the L2 heartbeat stalls.
# For the benchmark: E2E_L2_MODE=idle runs L2 without the workload,
# E2E_NO_VF=1 without the VF (BACKEND is then only a label), E2E_DIR
# where the logs and the report go; E2E_VF_OPTS=",opt=..." is appended to
# -device vfio-pci (to show what the test catches without the driver's
# dirty tracking: ",x-device-dirty-page-tracking=off,enable-migration=on").
# shellcheck source=e2e_l2.sh
. "${0%/*}/e2e_l2.sh"
BACKEND=$1 VF1=$2 VF2=$3 ROUNDS=${4:-1}
BACKENDS=$(echo "$BACKEND" | tr '+' ' ')
# the QEMUs in start order: a boots L2, each next one is a destination
NAMES="a b c d e f g h i"
for b in $BACKENDS; do
	case $b in legacy | iommufd) ;; *) echo "e2e_migrate.sh: unknown backend '$b'" >&2; exit 2 ;; esac
done
E=${E2E_DIR:-/tmp/e2e-$BACKEND}
L2MODE=${E2E_L2_MODE:-workload}
QEMU=${E2E_QEMU:-/usr/bin/qemu-system-x86_64}
FW=${E2E_FW:-/e2e/fw}
L2K=${E2E_L2_KERNEL:-/e2e/l2/bzImage}
L2I=${E2E_L2_INITRD:-/e2e/l2/initrd.cpio}
BOOT_TIMEOUT=${E2E_BOOT_TIMEOUT:-480}
MIG_TIMEOUT=${E2E_MIG_TIMEOUT:-240}
HB_TIMEOUT=${E2E_HB_TIMEOUT:-45}
rm -rf "$E"
mkdir -p "$E"

N=0
FAILED=0
TAP=$E/tap
: >"$TAP"
t() { echo "E2E T+$(cut -d' ' -f1 /proc/uptime) $*"; }
result() { # result RC DESCRIPTION [DETAIL]
	N=$((N + 1))
	if [ "$1" = 0 ]; then
		echo "ok $N $2" >>"$TAP"
	else
		echo "not ok $N $2${3:+ # $3}" >>"$TAP"
		FAILED=$((FAILED + 1))
	fi
}
# jget KEY JSON: the first scalar value of KEY
jget() { echo "$2" | grep -o "\"$1\": *[^,}]*" | head -1 | sed 's/^[^:]*: *//; s/"//g'; }
qmp() { qmp_cmd "$E/qmp-$1.sock" "$2" "${3:-30}"; }
qmp_cmd() { /tests/qmp "$@" 2>>"$E/qmp-events.log"; }
hmp() { qmp "$1" "{\"execute\":\"human-monitor-command\",\"arguments\":{\"command-line\":\"$2\"}}" 60; }
# stat BDF KEY: one value of the driver's migration statistics
vstat() {
	v=$(sed -n "s/^$2: //p" "/sys/kernel/debug/vfio/$1/migration/nvme" 2>/dev/null)
	echo "${v:-0}"
}
# cmds BDF: the driver's PF command counts by kind, one "kind count" a line
cmds() { sed -n 's/^commands_\([a-z_]*\): /\1 /p' "/sys/kernel/debug/vfio/$1/migration/nvme" 2>/dev/null; }
# cmds_delta BEFORE AFTER: "kind N, ..." of the kinds that changed
cmds_delta() {
	awk 'NR == FNR { b[$1] = $2; next } $2 != b[$1] { printf "%s%s %d", sep, $1, $2 - b[$1]; sep = ", " }' "$1" "$2"
}
# cmds_total BEFORE AFTER: commands of every kind sent in between
cmds_total() { awk 'NR == FNR { b += $2; next } { a += $2 } END { print a - b }' "$1" "$2"; }
hb_count() { grep -a -c '^L2-HB' "$E"/l2-*.log 2>/dev/null | awk -F: '{ s += $NF } END { print s + 0 }'; }
last_hb() { cat "$E"/l2-*.log 2>/dev/null | grep -a '^L2-HB' | tail -1; }
hbval() {
	v=$(echo "$1" | sed -n "s/.* $2=\([0-9]*\).*/\1/p")
	echo "${v:-0}"
}

# Watchdog dump: what each QEMU, the L1 kernel and the driver are doing.
dump() {
	echo "E2E-WATCHDOG $*"
	for q in $E/qmp-*.sock; do
		[ -S "$q" ] || continue
		n=$(basename "$q" .sock)
		n=${n#qmp-}
		echo "--- QEMU $n: query-status / query-migrate / info registers"
		qmp "$n" '{"execute":"query-status"}' 10
		qmp "$n" '{"execute":"query-migrate"}' 10
		hmp "$n" "info registers" | tr -d '\r' | head -20
	done
	echo "--- L1 processes"
	ps
	for p in $(pidof qemu-system-x86_64); do
		echo "--- pid $p"
		grep -E '^(State|VmRSS)' "/proc/$p/status"
		for k in /proc/$p/task/*; do
			echo "task $(basename "$k"): $(cut -d' ' -f3 "$k/stat") $(cat "$k/wchan" 2>/dev/null)"
		done
	done
	for v in $VF1 $VF2; do
		echo "--- driver statistics $v"
		cat "/sys/kernel/debug/vfio/$v/migration/nvme" 2>/dev/null
	done
	echo "--- L1 dmesg (tail)"
	dmesg | tail -30
	for l in "$E"/l2-*.log "$E"/qemu-*.out; do
		# an L2 kernel oops whole (from its first line), else the tail
		n=$(grep -a -n -m1 'BUG:\|Oops\|general protection\|Kernel panic' "$l" | cut -d: -f1)
		if [ -n "$n" ]; then
			n=$((n > 5 ? n - 5 : 1))
			echo "--- $l (from line $n)"
			tail -n +$n "$l" | head -60
		else
			echo "--- $l (tail)"
			tail -8 "$l"
		fi
	done
}

# backend_of NAME: the backend of QEMU NAME (a takes the first of BACKENDS)
backend_of() {
	_i=0
	for _n in $NAMES; do
		[ "$_n" = "$1" ] && break
		_i=$((_i + 1))
	done
	set -- $BACKENDS
	shift $((_i % $#))
	echo "$1"
}

# qemu_start NAME VF [incoming]
qemu_start() {
	name=$1 vf=$2
	# shellcheck disable=SC2086 # L2_QEMU_ARGS: words without spaces
	set -- -L "$FW" $L2_QEMU_ARGS -m "${E2E_L2_MEM:-128M}" \
		-kernel "$L2K" -initrd "$L2I" \
		-append "$L2_APPEND l2.mode=$L2MODE" \
		-serial "file:$E/l2-$name.log" \
		-qmp "unix:$E/qmp-$name.sock,server=on,wait=off" \
		-device pcie-root-port,id=rp1,bus=pcie.0,chassis=1,slot=1 \
		-trace 'vfio_device_dirty_tracking_start' \
		-trace 'vfio_migration_state_notifier' \
		-trace 'vfio_migration_set_device_state' \
		-trace 'vfio_save_setup' -trace 'vfio_save_complete_precopy' \
		-trace 'vfio_state_pending_exact' \
		-D "$E/trace-$name.log" ${3:+-incoming defer}
	if [ -n "${E2E_NO_VF:-}" ]; then
		:
	elif [ "$(backend_of "$name")" = iommufd ]; then
		set -- "$@" -object iommufd,id=iommufd0 \
			-device "vfio-pci,host=$vf,bus=rp1,id=vf0,iommufd=iommufd0${E2E_VF_OPTS:-}"
	else
		set -- "$@" -device "vfio-pci,host=$vf,bus=rp1,id=vf0${E2E_VF_OPTS:-}"
	fi
	"$QEMU" "$@" >"$E/qemu-$name.out" 2>&1 &
	echo $! >"$E/pid-$name"
}

qemu_quit() {
	pid=$(cat "$E/pid-$1")
	qmp "$1" '{"execute":"quit"}' 10 >/dev/null
	for i in $(seq 1 100); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.2
	done
	kill -9 "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	rm -f "$E/qmp-$1.sock"
}

caps='{"execute":"migrate-set-capabilities","arguments":{"capabilities":[{"capability":"return-path","state":true},{"capability":"switchover-ack","state":true}]}}'

# wait_hb COUNT TIMEOUT: wait until the L2 logs hold COUNT more heartbeats
wait_hb() {
	want=$(($(hb_count) + $1))
	n=0
	while [ "$(hb_count)" -lt "$want" ]; do
		sleep 1
		n=$((n + 1))
		[ $n -ge "$2" ] && return 1
	done
	return 0
}

# wait_full N TIMEOUT: wait for N more full verifies of the workload
wait_full() {
	[ "$L2MODE" = workload ] || return 0
	f0=$(hbval "$(last_hb)" full)
	want=$((${f0:-0} + $1))
	n=0
	while :; do
		f=$(hbval "$(last_hb)" full)
		[ "${f:-0}" -ge "$want" ] && return 0
		sleep 1
		n=$((n + 1))
		[ $n -ge "$2" ] && return 1
	done
}

# migrate SRC SRC_VF DST DST_VF NUM: 0 done, 1 failed (the VM is not on the
# destination), 2 failed but the VM runs on the destination
migrate() {
	src=$1 svf=$2 dst=$3 dvf=$4 num=$5
	sbe=$(backend_of "$src") dbe=$(backend_of "$dst")
	be=$sbe
	[ "$sbe" = "$dbe" ] || be="$sbe -> $dbe"
	desc="migration $num ($be) $src on $svf -> $dst on $dvf"
	qmp "$dst" "$caps" >/dev/null &&
		qmp "$dst" "{\"execute\":\"migrate-incoming\",\"arguments\":{\"uri\":\"unix:$E/mig$num.sock\"}}" >/dev/null &&
		qmp "$src" "$caps" >/dev/null || {
		result 1 "$desc" "QMP setup failed"
		dump "QMP setup failed"
		return 1
	}
	s_saved0=$(vstat "$svf" bytes_saved) s_pre0=$(vstat "$svf" bytes_precopy)
	s_dirty0=$(vstat "$svf" dirty_reported) d_loaded0=$(vstat "$dvf" bytes_loaded)
	cmds "$svf" >"$E/cmds-src-$num.0"
	cmds "$dvf" >"$E/cmds-dst-$num.0"
	t "$desc: migrate"
	r=$(qmp "$src" "{\"execute\":\"migrate\",\"arguments\":{\"uri\":\"unix:$E/mig$num.sock\"}}")
	status=
	n=0
	while [ $n -lt $((MIG_TIMEOUT * 2)) ]; do
		sleep 0.5
		n=$((n + 1))
		r=$(qmp "$src" '{"execute":"query-migrate"}')
		status=$(jget status "$r")
		case $status in completed | failed | cancelled) break ;; esac
		[ $((n % 20)) = 0 ] && t "$desc: $status, ram $(jget transferred "$r") B sent"
	done
	echo "$r" >"$E/query-migrate-$num.json"
	if [ "$status" != completed ]; then
		result 1 "$desc" "status ${status:-none}: $(jget error-desc "$r")"
		dump "migration $num: status ${status:-none} after $((n / 2)) s"
		return 1
	fi
	# the destination runs the VM; the source is left in postmigrate
	n=0
	while [ $n -lt 60 ]; do
		ds=$(jget status "$(qmp "$dst" '{"execute":"query-status"}')")
		[ "$ds" = running ] && break
		sleep 0.5
		n=$((n + 1))
	done
	total=$(jget total-time "$r") down=$(jget downtime "$r")
	syncs=$(jget dirty-sync-count "$r")
	vfio=$(echo "$r" | grep -o '"vfio": *{[^}]*}' | grep -o '[0-9][0-9]*' | head -1)
	saved=$(($(vstat "$svf" bytes_saved) - s_saved0))
	pre=$(($(vstat "$svf" bytes_precopy) - s_pre0))
	dsize=$(vstat "$svf" last_data_size)
	dirty=$(($(vstat "$svf" dirty_reported) - s_dirty0))
	loaded=$(($(vstat "$dvf" bytes_loaded) - d_loaded0))
	cmds "$svf" >"$E/cmds-src-$num.1"
	cmds "$dvf" >"$E/cmds-dst-$num.1"
	scmd=$(cmds_total "$E/cmds-src-$num.0" "$E/cmds-src-$num.1")
	dcmd=$(cmds_total "$E/cmds-dst-$num.0" "$E/cmds-dst-$num.1")
	skinds=$(cmds_delta "$E/cmds-src-$num.0" "$E/cmds-src-$num.1")
	dkinds=$(cmds_delta "$E/cmds-dst-$num.0" "$E/cmds-dst-$num.1")
	phases="source suspend $(vstat "$svf" suspend_us) us, stop-copy $(vstat "$svf" stop_copy_us) us; destination load $(vstat "$dvf" load_us) us, resume $(vstat "$dvf" resume_us) us"
	qemu_quit "$src"
	logging=$(grep -c vfio_device_dirty_tracking_start "$E/trace-$src.log")
	ratio=$(awk -v a="$dsize" -v b="$((saved - pre))" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')
	echo "DEMO $desc: status $status, total ${total} ms, downtime ${down} ms," \
		"device state ${pre} B initial + $((saved - pre)) B stop-copy (QEMU: vfio ${vfio:-?} B)," \
		"loaded ${loaded} B, precopy iterations (RAM syncs) ${syncs}," \
		"device dirty pages ${dirty}, MIG_DATA_SIZE ${dsize} B vs ${saved} - ${pre} B" \
		"sent at stop-copy (ratio ${ratio}), PF commands src ${scmd} (${skinds})" \
		"dst ${dcmd} (${dkinds}),"  \
		"QEMU DMA logging starts ${logging}"
	echo "DEMO   driver phases (last): $phases"
	grep -m1 vfio_device_dirty_tracking_start "$E/trace-$src.log" | sed 's/^/DEMO   QEMU trace (source): /'
	grep -a 'warning\|error' "$E/qemu-$src.out" | sort -u | head -5 | sed 's/^/DEMO   QEMU (source) said: /'
	echo "E2E-MIG backend=$sbe dst_backend=$dbe num=$num total_ms=$total downtime_ms=$down initial=$pre stopcopy=$((saved - pre)) loaded=$loaded data_size=$dsize dirty=$dirty syncs=$syncs src_cmds=$scmd dst_cmds=$dcmd" >>"$E/report"
	if [ "$ds" != running ]; then
		result 1 "$desc" "destination is ${ds:-?}, not running"
		dump "destination not running"
		return 1
	fi
	if [ -n "${E2E_NO_VF:-}" ]; then
		result 0 "$desc (no VF)"
		return 0
	fi
	# the VM runs on the destination: a failure from here on lets the
	# workload go on, so that its verdict shows what the failure cost
	if [ "$logging" = 0 ]; then
		result 1 "$desc" "QEMU did not start device DMA logging"
		return 2
	fi
	if [ "$loaded" != "$saved" ]; then
		result 1 "$desc" "sent $saved B but the destination loaded $loaded B"
		return 2
	fi
	result 0 "$desc"
	return 0
}

# --- run ---
t "backend $BACKEND: L2 on $VF1, then $VF2, $ROUNDS round trip(s)"
"$QEMU" --version | head -1
qemu_start a "$VF1"
n=0
while ! grep -aq '^L2-HB' "$E/l2-a.log" 2>/dev/null; do
	sleep 1
	n=$((n + 1))
	[ $((n % 60)) = 0 ] && t "L2 boots ($n s)"
	if [ $n -ge "$BOOT_TIMEOUT" ] || ! kill -0 "$(cat "$E/pid-a")" 2>/dev/null; then
		break
	fi
done
if ! grep -aq '^L2-HB' "$E/l2-a.log" 2>/dev/null; then
	result 1 "L2 boots on $VF1 ($BACKEND) and runs the workload" "no heartbeat after $n s"
	dump "L2 boot"
	qemu_quit a
else
	t "L2 workload running after $n s ($(grep -a '^L2-INIT\|^L2-READY' "$E/l2-a.log" | tr '\n' ' ')): $(grep -a '^L2-WORKLOAD' "$E/l2-a.log")"
	result 0 "L2 boots on $VF1 ($BACKEND) and runs the workload"
	wait_full 1 120
	cur=a curvf=$VF1 othervf=$VF2 num=0 ok=1
	for name in ${NAMES#a }; do
		[ $num -ge $((ROUNDS * 2)) ] && break
		num=$((num + 1))
		t "migration $num: destination QEMU $name on $othervf waits"
		qemu_start "$name" "$othervf" incoming
		migrate "$cur" "$curvf" "$name" "$othervf" "$num"
		case $? in
		1)
			qemu_quit "$name"
			qemu_quit "$cur"
			ok=0
			break
			;;
		2) ok=0 ;;
		esac
		cur=$name
		v=$curvf
		curvf=$othervf
		othervf=$v
		# the workload goes on in the destination: heartbeats and two
		# full verifies of every block written so far
		if ! wait_hb 3 "$HB_TIMEOUT" || ! wait_full 2 120; then
			result 1 "workload runs on after migration $num" "heartbeat or full verify stalled"
			dump "L2 stalled after migration $num"
			ok=0
			break
		fi
	done
	hb=$(last_hb)
	t "last heartbeat: $hb"
	[ $ok = 1 ] && qemu_quit "$cur"
	errs=$(cat "$E"/l2-*.log | grep -a -c '^L2-\(ERR\|KMSG\)')
	cat "$E"/l2-*.log | grep -a '^L2-\(ERR\|KMSG\)' | head -20 | sed 's/^/# /'
	blocks=$(($(hbval "$hb" readback) + $(hbval "$hb" ring) + $(hbval "$hb" fullblocks)))
	verdict="blocks verified $blocks, $(hbval "$hb" mismatch) mismatches, $(hbval "$hb" stale) stale device buffers, $(hbval "$hb" errors) I/O errors, $(hbval "$hb" kmsg) nvme kernel messages"
	echo "DEMO workload ($BACKEND): $verdict"
	bad=$(( $(hbval "$hb" mismatch) + $(hbval "$hb" stale) + $(hbval "$hb" errors) + $(hbval "$hb" kmsg) + errs ))
	if [ "$L2MODE" = workload ]; then
		[ $ok = 1 ] && [ "$bad" = 0 ] && [ "$blocks" -gt 0 ]
		result $? "workload verdict ($BACKEND): $verdict"
	fi
fi
for q in $(pidof qemu-system-x86_64); do kill -9 "$q"; done
echo "TAP version 13"
echo "1..$N"
cat "$TAP"
[ $FAILED = 0 ]
