#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# Build the guest kernel: Debian linux-source-6.12 with the series in
# patches/linux-6.12/ (applied in order, as git am would), tinyconfig +
# scripts/kconfig/rig.config.  Prints the build dir (KDIR).
#   build-kernel.sh [rig|l2]
# "l2" is the small kernel of the end-to-end test's L2 guest: the same
# source tree (built by "rig" first), tinyconfig + scripts/kconfig/l2.config,
# bzImage only.
#
# The source tree in the cache persists across input changes: a new tree is
# prepared in a staging directory and synced with checksums, so only files
# that really changed get new timestamps and the rebuild is incremental.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

TARBALL=/usr/src/linux-source-6.12.tar.xz
[ -f "$TARBALL" ] || die "$TARBALL missing (scripts/deps.sh installs linux-source-6.12)"
PKGVER=$(dpkg-query -W -f='${Version}' linux-source-6.12)
FLAVOUR=${1:-rig}

# check_fragment FRAG KDIR: every line of the fragment made it into .config
check_fragment() {
	local bad=0 line sym
	while read -r line; do
		case "$line" in
		CONFIG_*=*) grep -qx "$line" "$2/.config" || { echo "kconfig: $line not set" >&2; bad=1; } ;;
		"# CONFIG_"*" is not set") sym=${line#\# }; sym=${sym%% *}
			grep -q "^$sym=" "$2/.config" && { echo "kconfig: $sym should be unset" >&2; bad=1; } ;;
		esac
	done <"$1"
	[ $bad -eq 0 ] || die "kernel config fragment $(basename "$1") not honoured"
}

# configure KSRC KDIR FRAG LOG: tinyconfig + the fragment, checked
configure() {
	run_logged "$4" make -C "$1" O="$2" tinyconfig
	run_logged "$4" "$1/scripts/kconfig/merge_config.sh" -m -O "$2" "$2/.config" "$3"
	run_logged "$4" make -C "$1" O="$2" olddefconfig
	# every symbol of the fragment must have survived olddefconfig
	check_fragment "$3" "$2"
}

if [ "$FLAVOUR" = l2 ]; then
	FRAG=$ROOT/scripts/kconfig/l2.config
	KSRC=$CACHE/linux/src
	OUT=$CACHE/l2kernel
	KEY=$( (echo "$PKGVER"; hash_files "$FRAG" "$ROOT/scripts/build-kernel.sh") |
		sha256sum | cut -c1-16)
	if [ "$(cat "$OUT/.key" 2>/dev/null)" = "$KEY" ]; then
		echo "$OUT/build"
		exit 0
	fi
	[ -e "$KSRC/Makefile" ] || die "no kernel source in $KSRC (build the rig kernel first)"
	# the build directory persists: a changed input rebuilds incrementally
	rm -f "$OUT/.key"
	mkdir -p "$OUT/build"
	configure "$KSRC" "$OUT/build" "$FRAG" "$LOGDIR/l2kernel-config.log"
	run_logged "$LOGDIR/l2kernel-build.log" make -C "$KSRC" O="$OUT/build" -j"$(nproc)" bzImage
	echo "$KEY" >"$OUT/.key"
	echo "$OUT/build"
	exit 0
fi

KEY=$( (echo "$PKGVER"
	hash_files "$ROOT/patches/linux-6.12" \
		"$ROOT/scripts/kconfig/rig.config" "$ROOT/scripts/build-kernel.sh") |
	sha256sum | cut -c1-16)
OUT=$CACHE/linux
KSRC=$OUT/src
KDIR=$OUT/build

if [ "$(cat "$OUT/.key" 2>/dev/null)" = "$KEY" ]; then
	echo "$KDIR"
	exit 0
fi
rm -f "$OUT/.key"
mkdir -p "$OUT"

stage=$OUT/stage
rm -rf "$stage"
mkdir -p "$stage"
tar xf "$TARBALL" -C "$stage"
for p in "$ROOT"/patches/linux-6.12/*.patch; do
	[ -e "$p" ] || continue
	patch -s -d "$stage/linux-source-6.12" -p1 --no-backup-if-mismatch <"$p" ||
		die "kernel patch $(basename "$p") does not apply"
done
mkdir -p "$KSRC"
rsync -rlc --delete "$stage/linux-source-6.12/" "$KSRC/"
rm -rf "$stage"

FRAG=$ROOT/scripts/kconfig/rig.config
mkdir -p "$KDIR"
configure "$KSRC" "$KDIR" "$FRAG" "$LOGDIR/kernel-config.log"

run_logged "$LOGDIR/kernel-build.log" make -C "$KSRC" O="$KDIR" -j"$(nproc)" bzImage modules
rm -rf "$OUT/headers"
run_logged "$LOGDIR/kernel-headers.log" make -C "$KSRC" O="$KDIR" headers_install INSTALL_HDR_PATH="$OUT/headers"
echo "$KEY" >"$OUT/.key"
# builds of the earlier, per-hash layout
find "$CACHE" -maxdepth 1 -name 'linux-*' -exec rm -rf {} +
echo "$KDIR"
