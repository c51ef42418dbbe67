#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# Build the guest kernel: Debian linux-source-6.12, the project's include/
# overlay (include/linux/nvme-lm.h), patches/linux-6.12/*.patch, tinyconfig +
# scripts/kconfig/rig.config.  Prints the build dir (KDIR).
#
# The source tree in the cache persists across input changes: a new tree is
# prepared in a staging directory and synced with checksums, so only files
# that really changed get new timestamps and the rebuild is incremental.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

TARBALL=/usr/src/linux-source-6.12.tar.xz
[ -f "$TARBALL" ] || die "$TARBALL missing (scripts/deps.sh installs linux-source-6.12)"
PKGVER=$(dpkg-query -W -f='${Version}' linux-source-6.12)

KEY=$( (echo "$PKGVER"
	hash_files "$ROOT/patches/linux-6.12" "$ROOT/include" \
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
(cd "$ROOT" && cp -r include "$stage/linux-source-6.12/")
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
run_logged "$LOGDIR/kernel-config.log" make -C "$KSRC" O="$KDIR" tinyconfig
run_logged "$LOGDIR/kernel-config.log" \
	"$KSRC/scripts/kconfig/merge_config.sh" -m -O "$KDIR" "$KDIR/.config" "$FRAG"
run_logged "$LOGDIR/kernel-config.log" make -C "$KSRC" O="$KDIR" olddefconfig

# Every symbol of the fragment must have survived olddefconfig.
bad=0
while read -r line; do
	case "$line" in
	CONFIG_*=*) grep -qx "$line" "$KDIR/.config" || { echo "kconfig: $line not set" >&2; bad=1; } ;;
	"# CONFIG_"*" is not set") sym=${line#\# }; sym=${sym%% *}
		grep -q "^$sym=" "$KDIR/.config" && { echo "kconfig: $sym should be unset" >&2; bad=1; } ;;
	esac
done <"$FRAG"
[ $bad -eq 0 ] || die "kernel config fragment not honoured"

run_logged "$LOGDIR/kernel-build.log" make -C "$KSRC" O="$KDIR" -j"$(nproc)" bzImage modules
rm -rf "$OUT/headers"
run_logged "$LOGDIR/kernel-headers.log" make -C "$KSRC" O="$KDIR" headers_install INSTALL_HDR_PATH="$OUT/headers"
echo "$KEY" >"$OUT/.key"
# builds of the earlier, per-hash layout
find "$CACHE" -maxdepth 1 -name 'linux-*' -exec rm -rf {} +
echo "$KDIR"
