#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# Build QEMU 10.0 (Debian trixie source package) with the project's hw/nvme
# model and hook patches, x86_64-softmmu only, minimal device set.
# Prints the path of qemu-system-x86_64 on stdout.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

SRCDIR=$CACHE/src
mkdir -p "$SRCDIR"

fetch_sources() {
	[ -e "$SRCDIR/.qemu-fetched" ] && return 0
	apt_trixie_setup
	(
		cd "$SRCDIR"
		run_logged "$LOGDIR/qemu-fetch.log" \
			apt_trixie source --download-only qemu
		run_logged "$LOGDIR/qemu-fetch-debs.log" \
			apt_trixie download meson python3-pycotap
	)
	rm -rf "$CACHE/pydeps"
	for d in "$SRCDIR"/meson_*.deb "$SRCDIR"/python3-pycotap_*.deb; do
		dpkg-deb -x "$d" "$CACHE/pydeps"
	done
	touch "$SRCDIR/.qemu-fetched"
}

fetch_sources
ORIG=$(ls "$SRCDIR"/qemu_10.0.*.orig.tar.* | sort -V | tail -1)
DEBTAR=$(ls "$SRCDIR"/qemu_10.0.*.debian.tar.* | sort -V | tail -1)
[ -f "$ORIG" ] || die "no QEMU 10.0 orig tarball in $SRCDIR"

KEY=$( (basename "$ORIG"; basename "$DEBTAR"
	hash_files "$ROOT/qemu" "$ROOT/scripts/build-qemu.sh" \
		"$ROOT/scripts/qemu-devices.mak") | sha256sum | cut -c1-16)
OUT=$CACHE/qemu-$KEY
QEMU_BIN=$OUT/build/qemu-system-x86_64

if [ -e "$OUT/.done" ]; then
	echo "$QEMU_BIN"
	exit 0
fi

rm -rf "$OUT"
mkdir -p "$OUT/debian"
tar xf "$ORIG" -C "$OUT"
mv "$OUT"/qemu-10.0.* "$OUT/src"
tar xf "$DEBTAR" -C "$OUT/debian"
cd "$OUT/src"
# The +ds tarball has the edk2 firmware blobs stripped.
patch -s -p1 <"$OUT/debian/debian/patches/skip-unpack-edk2-blobs.patch"

# The project's device model: real source files, then the hook patches.
(cd "$ROOT/qemu" && find . -type f ! -path './patches/*' ! -name '*.md' \
	-print0 | xargs -0 -r cp --parents -t "$OUT/src")
if [ -f "$ROOT/qemu/patches/series" ]; then
	while read -r p; do
		case "$p" in ''|'#'*) continue ;; esac
		patch -s -p1 --no-backup-if-mismatch <"$ROOT/qemu/patches/$p" ||
			die "QEMU patch $p does not apply"
	done <"$ROOT/qemu/patches/series"
fi
cp "$ROOT/scripts/qemu-devices.mak" configs/devices/x86_64-softmmu/rig.mak

mkdir -p "$OUT/build"
cd "$OUT/build"
export PYTHONPATH=$CACHE/pydeps/usr/lib/python3/dist-packages
run_logged "$LOGDIR/qemu-configure.log" ../src/configure \
	--python=$SYS_PYTHON --target-list=x86_64-softmmu \
	--without-default-features --without-default-devices \
	--with-devices-x86_64=rig --enable-tcg --disable-kvm \
	--disable-docs --disable-tools --disable-guest-agent \
	--disable-debug-info --disable-fdt --disable-install-blobs \
	--disable-werror
# later ninja regenerations must find meson without PYTHONPATH
echo "$PYTHONPATH" >"$(echo pyvenv/lib/python3*/site-packages)/rig-debdeps.pth"
run_logged "$LOGDIR/qemu-build.log" make -j"$(nproc)"
[ -x "$QEMU_BIN" ] || die "QEMU binary missing after build"

# Firmware: the +ds package ships none; bookworm's SeaBIOS works.
mkdir -p "$OUT/fw"
cp /usr/share/seabios/bios-256k.bin /usr/share/qemu/kvmvapic.bin \
	/usr/share/qemu/linuxboot_dma.bin /usr/share/qemu/linuxboot.bin \
	"$OUT/fw/"
touch "$OUT/.done"
# keep only this build
find "$CACHE" -maxdepth 1 -name 'qemu-*' ! -name "qemu-$KEY" -exec rm -rf {} +
echo "$QEMU_BIN"
