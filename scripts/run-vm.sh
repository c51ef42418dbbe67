#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# Boot the L1 guest under TCG: q35 + VT-d, an NVMe PF with SR-IOV in an
# nvme-subsys, a shared namespace on a raw image in the cache.
#   run-vm.sh QEMU FWDIR KERNEL INITRD RUNDIR TIMEOUT [interactive]
# Serial console goes to RUNDIR/console.log (or stdio when interactive);
# the HMP monitor listens on RUNDIR/hmp.sock.  Exit status: QEMU's, 124
# on timeout, 125 when the guest stalled (see RIG_STALL below), 126 when it
# stalled because TCG lost a local APIC EOI.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

qemu=$1 fw=$2 kernel=$3 initrd=$4 rundir=$5 timeout=$6 interactive=${7:-}
mkdir -p "$rundir"
rm -f "$rundir/nvm.img" "$rundir/nvm2.img" "$rundir"/ns*.img "$rundir"/hmp*.sock
truncate -s 64M "$rundir/nvm.img"
truncate -s 16M "$rundir/nvm2.img"

args=(
	-L "$fw" -accel tcg -cpu max -smp 2 -m "${RIG_MEM:-2G}"
	-machine q35,kernel-irqchip=split
	-device intel-iommu,intremap=on,caching-mode=on
	-nodefaults -display none -no-reboot
	-kernel "$kernel" -initrd "$initrd"
	# tsc=reliable: TCG's TSC is the host clock; the clocksource watchdog
	# (slow emulated reads) would otherwise switch the guest to acpi_pm,
	# whose every read is an emulated port access.  no_timer_check: the
	# boot-time PIT test wants five ticks in about 0.15 s of TSC time; a
	# vCPU starved by the builds running beside it misses them, and with
	# interrupt remapping on the kernel then panics
	-append "console=ttyS0 intel_iommu=on panic=-1 vfio_pci.enable_sriov=1 tsc=reliable no_timer_check ${RIG_APPEND:-}"
	-monitor "unix:$rundir/hmp.sock,server=on,wait=off"
	# a second HMP monitor for the guest's tests (fault injection): the
	# guest's virtio-serial port is a client of this QEMU's own socket
	-chardev "socket,id=hmpg,path=$rundir/hmp-guest.sock,server=on,wait=off"
	-mon chardev=hmpg,mode=readline
	-chardev "socket,id=hmpgc,path=$rundir/hmp-guest.sock"
	-device virtio-serial-pci,id=vser0
	-device virtserialport,bus=vser0.0,chardev=hmpgc,name=org.nvme-vfio-pci.hmp
	-device pcie-root-port,id=rp1,bus=pcie.0,chassis=1,slot=1
	-drive "file=$rundir/nvm.img,if=none,id=nvm,format=raw"
	-device nvme-subsys,id=subsys0
	-device "nvme,id=nvme0,bus=rp1,serial=deadbeef,subsys=subsys0,sriov_max_vfs=2,sriov_vq_flexible=8,sriov_vi_flexible=4,max_ioqpairs=10,hmlms=on,lm.cmmrtd=2,lm.nmmrtd=4${RIG_PF_OPTS:-}"
	-device nvme-ns,drive=nvm,bus=nvme0,nsid=1
	# a second PF, in its own subsystem, for "VF of another PF" tests
	-device pcie-root-port,id=rp2,bus=pcie.0,chassis=2,slot=2
	-device nvme-subsys,id=subsys1
	-device "nvme,id=nvme1,bus=rp2,serial=feedcafe,subsys=subsys1,sriov_max_vfs=1,sriov_vq_flexible=2,sriov_vi_flexible=1,max_ioqpairs=4,hmlms=on"
	-drive "file=$rundir/nvm2.img,if=none,id=nvm2,format=raw"
	-device nvme-ns,drive=nvm2,bus=nvme1,nsid=1
)
# Detached namespaces in the first PF's subsystem (NSIDs 2..), attached to
# no controller: a test attaches more than a migration stream carries (64)
# to a VF through Namespace Attachment.
for ((i = 2; i < 2 + ${RIG_EXTRA_NS:-65}; i++)); do
	truncate -s 1M "$rundir/ns$i.img"
	args+=(-drive "file=$rundir/ns$i.img,if=none,id=ns$i,format=raw"
	       -device "nvme-ns,drive=ns$i,bus=nvme0,nsid=$i,detached=on")
done
if [ -n "$interactive" ]; then
	exec "$qemu" "${args[@]}" -serial mon:stdio
fi
# Stall watchdog: a guest that prints nothing but kernel messages for
# RIG_STALL seconds (default 300; the longest quiet phase, the nested L2
# boot, prints a line a minute) is dumped (vCPU registers and halt state,
# interrupt counts, both local APICs) and stopped at once, instead of
# running into the timeout.
hmp() {
	"$SYS_PYTHON" - "$rundir/hmp.sock" "$1" <<'PY'
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
time.sleep(0.3)
s.recv(65536)
s.send(sys.argv[2].encode() + b"\n")
time.sleep(2)
print(s.recv(1 << 20).decode(errors="replace").replace("\r", ""))
PY
}
: >"$rundir/console.log"
rm -f "$rundir"/core "$rundir"/core.* "$rundir/crash.log"
# QEMU runs in RUNDIR with core dumps on, its stderr also kept in
# RUNDIR/qemu.err: a QEMU that dies of a signal (an assert, a fault) is
# reported with its message and every thread's backtrace (crash.log).
(
	cd "$rundir"
	ulimit -c unlimited 2>/dev/null || true
	exec timeout --foreground -k 10 "$timeout" "$qemu" "${args[@]}" \
		-serial "file:$rundir/console.log" </dev/null \
		2> >(tee "$rundir/qemu.err" >&2)
) &
qpid=$!
stall=${RIG_STALL:-300} last=-1 quiet=0
while kill -0 $qpid 2>/dev/null; do
	sleep 10
	# progress is output other than kernel messages: a stalled guest
	# still prints an RCU stall report every 26 s
	size=$(grep -avc '^\[ *[0-9]*\.[0-9]*\]' "$rundir/console.log" 2>/dev/null || true)
	if [ "$size" = "$last" ]; then
		quiet=$((quiet + 10))
	else
		quiet=0
		last=$size
	fi
	if [ $quiet -ge "$stall" ]; then
		{
			echo "[rig] guest stalled: no console output for ${quiet}s; vCPU state:"
			hmp "info status" | grep -vE '^\(qemu\)|info' || true
			hmp "info registers -a" | grep -E '^(CPU#|RIP|EFL|CR0)' || true
			hmp "info irq" | grep -vE '^\(qemu\)|info' || true
			# LVT timer, counts, ISR/IRR/PPR: a tick lost on one vCPU
			hmp "info lapic 0" | grep -vE '^\(qemu\)|info' || true
			hmp "info lapic 1" | grep -vE '^\(qemu\)|info' || true
			# where QEMU's own threads are: in their halt wait or not
			# ($qpid is timeout(1), QEMU its child)
			vmm=$(pgrep -P $qpid | head -1)
			for t in /proc/${vmm:-$qpid}/task/*; do
				echo "thread $(cat "$t/comm" 2>/dev/null): state $(awk '{print $3}' "$t/stat" 2>/dev/null) wchan $(cat "$t/wchan" 2>/dev/null)"
			done
			if command -v gdb >/dev/null; then
				timeout 60 gdb -p "${vmm:-$qpid}" -batch -ex 'thread apply all bt 12' 2>&1 |
					grep -E '^(Thread|#)' | head -150 || true
			fi
		} | tee -a "$rundir/stall.log" >&2
		kill $qpid 2>/dev/null || true
		wait $qpid 2>/dev/null || true
		# TCG losing a local APIC EOI: a halted vCPU whose LAPIC still has
		# a vector in service, so nothing of its priority (its own timer
		# included) is delivered again.  The guest cannot cause or clear
		# that; exit 126 tells the caller it may run the guest again.
		if "$SYS_PYTHON" - "$rundir/stall.log" <<'PY'
import re, sys
log = open(sys.argv[1], errors="replace").read()
halted = {int(c) for c in re.findall(r"CPU#(\d+)\nRIP=[^\n]*HLT=1", log)}
isr = {int(c) for c, v in re.findall(
    r"local APIC state for CPU (\d+).*?\nISR\t? *([^\n]*)", log, re.S)
    if v.strip() and v.strip() != "(none)"}
sys.exit(0 if halted & isr else 1)
PY
		then
			echo "[rig] guest stalled with a halted vCPU holding a LAPIC vector in service (TCG lost an EOI)" >&2
			exit 126
		fi
		exit 125
	fi
done
rc=0
wait $qpid || rc=$?
if [ $rc -gt 128 ] && [ $rc -ne 137 ]; then
	{
		# every thread first, the crashing one and QEMU's own message
		# last: the end of a CI log is what gets read
		core=$(ls -t "$rundir"/core "$rundir"/core.* 2>/dev/null | head -1 || true)
		if [ -n "$core" ] && command -v gdb >/dev/null; then
			timeout 120 gdb -batch -ex 'thread apply all bt 16' \
				-ex 'echo [rig] the thread that got the signal:\n' \
				-ex 'bt 30' "$qemu" "$core" 2>&1 |
				grep -E '^(Thread|#|\[rig\])' | head -300 || true
			rm -f "$core"
		else
			echo "[rig] no core dump (core_pattern: $(cat /proc/sys/kernel/core_pattern))"
		fi
		echo "[rig] QEMU died of signal $((rc - 128)); its last messages:"
		tail -n 8 "$rundir/qemu.err" 2>/dev/null | sed 's/^/[qemu] /'
	} >"$rundir/crash.log" 2>&1
	cat "$rundir/crash.log" >&2
fi
exit $rc
