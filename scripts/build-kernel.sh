#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# Build the guest kernel: Debian linux-source-6.12 + patches/linux-6.12/*.patch,
# tinyconfig + scripts/kconfig/rig.config.  Prints the build dir (KDIR).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

TARBALL=/usr/src/linux-source-6.12.tar.xz
[ -f "$TARBALL" ] || die "$TARBALL missing (scripts/deps.sh installs linux-source-6.12)"
PKGVER=$(dpkg-query -W -f='${Version}' linux-source-6.12)

KEY=$( (echo "$PKGVER"
	hash_files "$ROOT/patches/linux-6.12" "$ROOT/scripts/kconfig/rig.config" \
		"$ROOT/scripts/build-kernel.sh") | sha256sum | cut -c1-16)
OUT=$CACHE/linux-$KEY
KSRC=$OUT/src
KDIR=$OUT/build

if [ -e "$OUT/.done" ]; then
	echo "$KDIR"
	exit 0
fi

rm -rf "$OUT"
mkdir -p "$OUT"
tar xf "$TARBALL" -C "$OUT"
mv "$OUT"/linux-source-6.12 "$KSRC"
for p in "$ROOT"/patches/linux-6.12/*.patch; do
	[ -e "$p" ] || continue
	patch -s -d "$KSRC" -p1 --no-backup-if-mismatch <"$p" ||
		die "kernel patch $(basename "$p") does not apply"
done

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
run_logged "$LOGDIR/kernel-headers.log" make -C "$KSRC" O="$KDIR" headers_install INSTALL_HDR_PATH="$OUT/headers"
touch "$OUT/.done"
find "$CACHE" -maxdepth 1 -name 'linux-*' ! -name "linux-$KEY" -exec rm -rf {} +
echo "$KDIR"
