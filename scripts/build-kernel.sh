#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# Build the guest kernel: Debian linux-source-VERSION with the series in
# patches/linux-VERSION/ applied with git am, tinyconfig +
# scripts/kconfig/rig.config (+ rig-VERSION.config where there is one: 7.3
# builds the in-tree driver and its KUnit modules).  Prints the build dir
# (KDIR).
#   build-kernel.sh [rig|debug|l2] [VERSION]  (VERSION: 6.12 or 7.3, default 6.12)
# "debug" is the rig kernel plus scripts/kconfig/debug.config (KASAN, UBSAN,
# kmemleak, debug objects; make check-debug), built in <cache>/linux-debug-VER.
# "l2" is the small kernel of the end-to-end test's L2 guest: the 6.12
# source tree (built by "rig" first), tinyconfig + scripts/kconfig/l2.config,
# bzImage only.
#
# The source tree in the cache persists across input changes: a new tree is
# prepared in a staging directory and synced with checksums, so only files
# that really changed get new timestamps and the rebuild is incremental.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

FLAVOUR=${1:-rig}
VER=${2:-6.12}
case $FLAVOUR in
rig|debug) ;;
l2) VER=6.12 ;;
*) die "build-kernel.sh: unknown flavour '$FLAVOUR' (rig, debug or l2)" ;;
esac
kernel_source "$VER"
TARBALL=$KTARBALL
PKGVER=$KPKGVER

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

# configure KSRC KDIR LOG FRAG...: tinyconfig + the fragments, checked
configure() {
	local ksrc=$1 kdir=$2 log=$3 f
	shift 3
	run_logged "$log" make -C "$ksrc" O="$kdir" tinyconfig
	run_logged "$log" "$ksrc/scripts/kconfig/merge_config.sh" -m -O "$kdir" "$kdir/.config" "$@"
	run_logged "$log" make -C "$ksrc" O="$kdir" olddefconfig
	# every symbol of the fragments must have survived olddefconfig
	for f in "$@"; do
		check_fragment "$f" "$kdir"
	done
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
	configure "$KSRC" "$OUT/build" "$LOGDIR/l2kernel-config.log" "$FRAG"
	run_logged "$LOGDIR/l2kernel-build.log" make -C "$KSRC" O="$OUT/build" -j"$(nproc)" bzImage
	echo "$KEY" >"$OUT/.key"
	echo "$OUT/build"
	exit 0
fi

FRAGS=("$ROOT/scripts/kconfig/rig.config")
if [ -f "$ROOT/scripts/kconfig/rig-$VER.config" ]; then
	FRAGS+=("$ROOT/scripts/kconfig/rig-$VER.config")
fi
[ "$FLAVOUR" = debug ] && FRAGS+=("$ROOT/scripts/kconfig/debug.config")
KEY=$( (echo "$PKGVER"
	hash_files "$ROOT/patches/linux-$VER" "${FRAGS[@]}" \
		"$ROOT/scripts/build-kernel.sh") |
	sha256sum | cut -c1-16)
# 6.12 keeps the directory it always had
OUT=$CACHE/linux
[ "$VER" = 6.12 ] || OUT=$CACHE/linux-$VER
[ "$FLAVOUR" = rig ] || OUT=$CACHE/linux-$FLAVOUR-$VER
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
tree=$stage/linux-source-$VER
# the series as a maintainer applies it: git am, on a repository whose
# commit holds the files the series changes (-f: Debian's .gitignore
# ignores everything at the top level); adding all of the tree to git
# cost about 40 s of CPU for nothing
(
	export GIT_AUTHOR_NAME=rig GIT_AUTHOR_EMAIL=rig@invalid
	export GIT_COMMITTER_NAME=rig GIT_COMMITTER_EMAIL=rig@invalid
	cd "$tree"
	mapfile -t touched < <(series_files "$ROOT/patches/linux-$VER" .)
	git init -q
	[ ${#touched[@]} -eq 0 ] || git add -f -- "${touched[@]}"
	git commit -q --allow-empty -m "linux-source-$VER $PKGVER: the files the series changes"
	for p in "$ROOT/patches/linux-$VER"/*.patch; do
		[ -e "$p" ] || continue
		git am -q --keep-cr "$p" || { git am --abort; die "kernel patch $(basename "$p") does not apply with git am"; }
	done
	rm -rf .git
) >"$LOGDIR/kernel-$VER-am.log" 2>&1 || { tail -20 "$LOGDIR/kernel-$VER-am.log" >&2; exit 1; }
if [ -d "$KSRC" ]; then
	rsync -rlc --delete "$tree/" "$KSRC/"
else
	# a cold cache: no timestamps to keep, no need for a second copy
	mv "$tree" "$KSRC"
fi
rm -rf "$stage"

mkdir -p "$KDIR"
L=kernel-$VER
[ "$FLAVOUR" = rig ] || L=kernel-$FLAVOUR-$VER
configure "$KSRC" "$KDIR" "$LOGDIR/$L-config.log" "${FRAGS[@]}"

run_logged "$LOGDIR/$L-build.log" make -C "$KSRC" O="$KDIR" -j"$(nproc)" bzImage modules
rm -rf "$OUT/headers"
run_logged "$LOGDIR/$L-headers.log" make -C "$KSRC" O="$KDIR" headers_install INSTALL_HDR_PATH="$OUT/headers"
echo "$KEY" >"$OUT/.key"
echo "$KDIR"
