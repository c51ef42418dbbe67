#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
# The end-to-end benchmark (make bench), run in the rig's L1 guest.  Every
# figure is a ratio of runs made side by side, alternating, in this one
# boot: the machine is noisy and only ratios mean something.
#
#   e2e_bench.sh VF1 VF2 [PAIRS]
#
# Each pair is one L2 boot without the VF and one with it, each migrated
# back and forth E2E_BENCH_ROUNDS (2) times, and one L2 read run on each
# driver; figures are medians.
#   - downtime of the same (idle) L2 migrated without and with the VF;
#   - sequential O_DIRECT read throughput of L2 through VF1 on
#     nvme-vfio-pci and on plain vfio-pci;
#   - MIG_DATA_SIZE over the device bytes sent at stop-copy;
#   - PF admin commands per migration on each side against the minimum.
# Prints "BENCH ..." lines; the host prints them as the table.
# shellcheck source=e2e_l2.sh
. "${0%/*}/e2e_l2.sh"
VF1=$1 VF2=$2 PAIRS=${3:-1} ROUNDS=${E2E_BENCH_ROUNDS:-2}
B=/tmp/e2e-bench
rm -rf "$B"
mkdir -p "$B"
t() { echo "E2E T+$(cut -d' ' -f1 /proc/uptime) $*"; }
med() { sort -n | awk '{ v[NR] = $1 } END { if (NR) print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; else print 0 }'; }
field() { sed -n "s/.* $1=\([0-9]*\).*/\1/p" "$2"; }

# --- downtime without / with the VF, alternating ---
i=0
while [ $i -lt "$PAIRS" ]; do
	i=$((i + 1))
	for kind in novf vf; do
		t "downtime run $i: $kind"
		if [ $kind = novf ]; then
			E2E_NO_VF=1 E2E_L2_MODE=idle E2E_DIR=$B/$kind-$i \
				e2e_migrate.sh iommufd "$VF1" "$VF2" "$ROUNDS" >"$B/$kind-$i.log" 2>&1
		else
			E2E_L2_MODE=idle E2E_DIR=$B/$kind-$i \
				e2e_migrate.sh iommufd "$VF1" "$VF2" "$ROUNDS" >"$B/$kind-$i.log" 2>&1
		fi
		grep -q '^not ok' "$B/$kind-$i.log" && {
			echo "BENCH error: $kind run $i failed"
			grep -a '^not ok\|E2E-WATCHDOG' "$B/$kind-$i.log" | head -5
		}
		cat "$B/$kind-$i/report" >>"$B/$kind.report" 2>/dev/null
	done
done
d_novf=$(field downtime_ms "$B/novf.report" | med)
d_vf=$(field downtime_ms "$B/vf.report" | med)
t_novf=$(field total_ms "$B/novf.report" | med)
t_vf=$(field total_ms "$B/vf.report" | med)

# --- sequential read: nvme-vfio-pci vs vfio-pci, alternating ---
readbench() { # DRIVER RUN
	d=/sys/bus/pci/devices/$VF1
	[ -e "$d/driver" ] && echo "$VF1" >"$d/driver/unbind"
	echo "$1" >"$d/driver_override"
	echo "$VF1" >/sys/bus/pci/drivers_probe
	[ -c /dev/vfio/vfio ] || return 1
	# shellcheck disable=SC2086 # L2_QEMU_ARGS: words without spaces
	qemu-system-x86_64 -L /e2e/fw $L2_QEMU_ARGS -m 128M \
		-kernel /e2e/l2/bzImage -initrd /e2e/l2/initrd.cpio \
		-append "$L2_APPEND l2.mode=readbench:16" \
		-serial "file:$B/read-$1-$2.log" \
		-device pcie-root-port,id=rp1,bus=pcie.0,chassis=1,slot=1 \
		-device "vfio-pci,host=$VF1,bus=rp1" >"$B/read-$1-$2.out" 2>&1
	# the first of L2's three reads warms the caches; the median of the rest
	grep -a '^L2-READBENCH' "$B/read-$1-$2.log" | tail -2 |
		sed 's/.*: \([0-9.]*\) MB\/s/\1/' >>"$B/read-$1"
}
i=0
while [ $i -lt "$PAIRS" ]; do
	i=$((i + 1))
	for drv in nvme_vfio_pci vfio-pci; do
		t "read run $i: $drv"
		readbench $drv $i
	done
done
# back to the variant driver
d=/sys/bus/pci/devices/$VF1
[ -e "$d/driver" ] && echo "$VF1" >"$d/driver/unbind"
echo nvme_vfio_pci >"$d/driver_override"
echo "$VF1" >/sys/bus/pci/drivers_probe
r_var=$(med <"$B/read-nvme_vfio_pci" 2>/dev/null)
r_pci=$(med <"$B/read-vfio-pci" 2>/dev/null)

# --- device state sizes and PF commands, from the VF runs ---
ds=$(field data_size "$B/vf.report" | med)
sc=$(field stopcopy "$B/vf.report" | med)
init=$(field initial "$B/vf.report" | med)
scmd=$(field src_cmds "$B/vf.report" | med)
dcmd=$(field dst_cmds "$B/vf.report" | med)
syncs=$(field syncs "$B/vf.report" | med)

r() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
echo "BENCH end-to-end (iommufd, idle L2, $PAIRS pair(s) of boots x $((ROUNDS * 2)) migrations, medians; nested TCG):"
echo "BENCH downtime without VF ${d_novf} ms, with VF ${d_vf} ms: ratio $(r "$d_vf" "$d_novf") (goal <= 1.10)"
echo "BENCH total time without VF ${t_novf} ms, with VF ${t_vf} ms: ratio $(r "$t_vf" "$t_novf")"
echo "BENCH sequential read in L2 (16 MiB, O_DIRECT): nvme-vfio-pci ${r_var} MB/s, vfio-pci ${r_pci} MB/s: ratio $(r "$r_var" "$r_pci") (goal >= 0.99)"
echo "BENCH device state: ${init} B initial, ${sc} B stop-copy; MIG_DATA_SIZE ${ds} B: ratio $(r "$ds" "$sc") (goal <= 1.10)"
echo "BENCH PF admin commands per migration: source ${scmd}, destination ${dcmd} (RAM syncs ${syncs}); see Documentation/qemu.rst for the minimum"
echo "BENCH ratio done"
