#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# Build QEMU 10.0 (Debian trixie source package) with the project's hw/nvme
# model and hook patches, x86_64-softmmu only, minimal device set, and the
# model's qtest (build/tests/qtest/nvme-lm-test).
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
# RIG_QEMU_DIR: use another device model tree than qemu/ (e.g. a work copy)
QDIR=${RIG_QEMU_DIR:-$ROOT/qemu}
ORIG=$(ls "$SRCDIR"/qemu_10.0.*.orig.tar.* | sort -V | tail -1)
DEBTAR=$(ls "$SRCDIR"/qemu_10.0.*.debian.tar.* | sort -V | tail -1)
[ -f "$ORIG" ] || die "no QEMU 10.0 orig tarball in $SRCDIR"

KEY=$( (basename "$ORIG"; basename "$DEBTAR"
	hash_files "$QDIR" "$ROOT/scripts/build-qemu.sh" \
		"$ROOT/scripts/qemu-devices.mak") | sha256sum | cut -c1-16)
# One persistent tree: a changed input re-stages the source and syncs it
# with checksums, so only files that changed are rebuilt.
OUT=$CACHE/qemu
QEMU_BIN=$OUT/build/qemu-system-x86_64
DIST=$(basename "$ORIG"):$(basename "$DEBTAR")

if [ "$(cat "$OUT/.key" 2>/dev/null)" = "$KEY" ] && [ -x "$QEMU_BIN" ]; then
	echo "$QEMU_BIN"
	exit 0
fi
rm -f "$OUT/.key"
# a different upstream source starts from scratch
if [ "$(cat "$OUT/.dist" 2>/dev/null)" != "$DIST" ]; then
	rm -rf "$OUT"
fi
mkdir -p "$OUT"

stage=$OUT/stage
rm -rf "$stage"
mkdir -p "$stage/debian"
tar xf "$ORIG" -C "$stage"
mv "$stage"/qemu-10.0.* "$stage/src"
tar xf "$DEBTAR" -C "$stage/debian"
cd "$stage/src"
# The +ds tarball has the edk2 firmware blobs stripped.
patch -s -p1 <"$stage/debian/debian/patches/skip-unpack-edk2-blobs.patch"

# The project's device model: real source files, then the hook patches.
(cd "$QDIR" && find . -type f ! -path './patches/*' ! -name '*.md' \
	-print0 | xargs -0 -r cp --parents -t "$stage/src")
if [ -f "$QDIR/patches/series" ]; then
	while read -r p; do
		case "$p" in ''|'#'*) continue ;; esac
		patch -s -p1 --no-backup-if-mismatch <"$QDIR/patches/$p" ||
			die "QEMU patch $p does not apply"
	done <"$QDIR/patches/series"
fi
cp "$ROOT/scripts/qemu-devices.mak" configs/devices/x86_64-softmmu/rig.mak
mkdir -p "$OUT/src"
rsync -rlc --delete "$stage/src/" "$OUT/src/"
cd "$OUT"
rm -rf "$stage"

export PYTHONPATH=$CACHE/pydeps/usr/lib/python3/dist-packages
if [ ! -e "$OUT/build/build.ninja" ]; then
	rm -rf "$OUT/build"
	mkdir -p "$OUT/build"
	cd "$OUT/build"
	run_logged "$LOGDIR/qemu-configure.log" ../src/configure \
		--python=$SYS_PYTHON --target-list=x86_64-softmmu \
		--without-default-features --without-default-devices \
		--with-devices-x86_64=rig --enable-tcg --disable-kvm \
		--disable-docs --disable-tools --disable-guest-agent \
		--disable-debug-info --disable-fdt --disable-install-blobs \
		--disable-werror
	# later ninja regenerations must find meson without PYTHONPATH
	echo "$PYTHONPATH" >"$(echo pyvenv/lib/python3*/site-packages)/rig-debdeps.pth"
fi
cd "$OUT/build"
# the device model's qtest (qemu/tests/qtest/nvme-lm-test.c), run by
# scripts/run-qtest.sh.  ninja, not QEMU's make wrapper: when a meson.build
# changed since the last build (a hook patch that adds a target), make
# knows only the targets of the old build.ninja and stops with "No rule to
# make target"; ninja regenerates its manifest first and reloads it.
run_logged "$LOGDIR/qemu-build.log" ninja -j"$(nproc)" qemu-system-x86_64 \
	tests/qtest/nvme-lm-test
[ -x "$QEMU_BIN" ] || die "QEMU binary missing after build"
[ -x "$OUT/build/tests/qtest/nvme-lm-test" ] || die "nvme-lm-test missing after build"

# Firmware: the +ds package ships none; bookworm's SeaBIOS works.
mkdir -p "$OUT/fw"
cp /usr/share/seabios/bios-256k.bin /usr/share/qemu/kvmvapic.bin \
	/usr/share/qemu/linuxboot_dma.bin /usr/share/qemu/linuxboot.bin \
	"$OUT/fw/"
echo "$DIST" >"$OUT/.dist"
echo "$KEY" >"$OUT/.key"
# builds of the earlier, per-hash layout
find "$CACHE" -maxdepth 1 -name 'qemu-*' -exec rm -rf {} +
echo "$QEMU_BIN"
