#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# make series: the in-tree driver patch of the 7.3 series, generated from
# the project's own drivers/vfio/pci/nvme/ so the in-tree and the
# out-of-tree driver are one source.  On Debian's linux-source-7.3 with
# patches/linux-7.3/0001-0004 applied (git am), it adds:
#   drivers/vfio/pci/nvme/       the sources, Kconfig, and the Makefile
#                                without its out-of-tree part; compat.h,
#                                probes/ and every NVMEVF_OOT_* branch
#                                (unifdef) are left out: mainline needs none
#   drivers/vfio/pci/Kconfig, Makefile, MAINTAINERS
#   Documentation/driver-api/vfio-pci-nvme/   the design documents
# and writes it as patches/linux-7.3/0005-*.patch (git format-patch).
#   make-series.sh [--check]
# --check: generate into a temporary directory and fail if the committed
# patch differs (lint runs this: the series cannot drift from the driver).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

VER=7.3
PATCHES=$ROOT/patches/linux-$VER
DRV=$ROOT/drivers/vfio/pci/nvme
NAME=0005-vfio-pci-nvme-add-a-variant-driver-for-live-migratio.patch
mode=${1:-write}
command -v unifdef >/dev/null || die "unifdef not installed (scripts/deps.sh)"
kernel_source "$VER"

# a git repository of the pristine tree, once per source package
OUT=$CACHE/make-series-$VER
export GIT_AUTHOR_NAME="nvme-vfio-pci developers" GIT_AUTHOR_EMAIL=dev@nvme-vfio-pci.invalid
export GIT_COMMITTER_NAME=$GIT_AUTHOR_NAME GIT_COMMITTER_EMAIL=$GIT_AUTHOR_EMAIL
# fixed dates: the same inputs give the same patch
export GIT_AUTHOR_DATE="2026-01-01T00:00:00Z" GIT_COMMITTER_DATE="2026-01-01T00:00:00Z"
if [ "$(cat "$OUT/.src" 2>/dev/null)" != "$KPKGVER" ]; then
	rm -rf "$OUT"
	mkdir -p "$OUT"
	tar xf "$KTARBALL" -C "$OUT"
	mv "$OUT/linux-source-$VER" "$OUT/src"
	(cd "$OUT/src" && git init -q && git add -A -f . &&
		git commit -q -m "linux-source-$VER $KPKGVER" && git tag base) \
		>"$LOGDIR/make-series.log" 2>&1 || die "make-series: no git repository (see $LOGDIR/make-series.log)"
	echo "$KPKGVER" >"$OUT/.src"
fi
src=$OUT/src
cd "$src"
git am --abort >/dev/null 2>&1 || true
git reset -q --hard base
git clean -q -fdx
for p in "$PATCHES"/000[1-4]-*.patch; do
	git am -q --keep-cr "$p" || die "make-series: $(basename "$p") does not apply"
done

# the driver, as mainline has it
d=drivers/vfio/pci/nvme
mkdir -p "$d"
# the driver's own sources (not build output such as *.mod.c)
mapfile -t srcs < <(cd "$ROOT" && git ls-files -co --exclude-standard -- \
	'drivers/vfio/pci/nvme/*.c' 'drivers/vfio/pci/nvme/*.h' |
	grep -v -e '/probes/' -e '/compat\.h$' -e '\.mod\.c$' | sed "s|^|$ROOT/|")
[ ${#srcs[@]} -gt 0 ] || die "make-series: no driver sources"
syms=$(grep -rhoE 'NVMEVF_OOT_[A-Z0-9_]+' "${srcs[@]}" "$DRV/Makefile" | sort -u)
undefs=()
for s in $syms; do
	undefs+=("-U$s")
done
for f in "${srcs[@]}"; do
	rc=0
	unifdef "${undefs[@]}" -o "$d/$(basename "$f")" "$f" || rc=$?
	[ $rc -le 1 ] || die "make-series: unifdef failed on $f"
done
cp "$DRV/Kconfig" "$d/Kconfig"
sed '/^# out-of-tree-begin$/,/^# out-of-tree-end$/d' "$DRV/Makefile" |
	sed '/^# The same file builds the driver in-tree/,/^$/d' >"$d/Makefile"
! grep -rn 'NVMEVF_OOT_\|compat\.h\|out-of-tree-' "$d" ||
	die "make-series: out-of-tree compatibility left in the in-tree driver"

# hook it into drivers/vfio/pci (after the last variant driver)
sed -i '/^source "drivers\/vfio\/pci\/xe\/Kconfig"$/a\
\
source "drivers/vfio/pci/nvme/Kconfig"' drivers/vfio/pci/Kconfig
printf '\nobj-$(CONFIG_NVME_VFIO_PCI) += nvme/\n' >>drivers/vfio/pci/Makefile
grep -q 'pci/nvme/Kconfig' drivers/vfio/pci/Kconfig || die "make-series: drivers/vfio/pci/Kconfig changed shape"

# the design documents
doc=Documentation/driver-api/vfio-pci-nvme
mkdir -p "$doc"
docs="index migration stream dirty-tracking commands pf-entry-point kernels qemu"
for f in $docs; do
	cp "$ROOT/Documentation/$f.rst" "$doc/$f.rst"
done
# the index lists only what is there (not the rig's own documents)
for f in $(sed -n 's/^   \([a-z-]*\)$/\1/p' "$doc/index.rst"); do
	case " $docs " in *" $f "*) ;; *) sed -i "/^   $f\$/d" "$doc/index.rst" ;; esac
done
sed -i 's/^   vfio-pci-device-specific-driver-acceptance$/&\n   vfio-pci-nvme\/index/' \
	Documentation/driver-api/index.rst
grep -q 'vfio-pci-nvme/index' Documentation/driver-api/index.rst ||
	die "make-series: Documentation/driver-api/index.rst changed shape"

# MAINTAINERS, in order: after VFIO NVIDIA GRACE GPU DRIVER
python3 - MAINTAINERS <<'PY'
import sys
p = sys.argv[1]
s = open(p).read()
entry = ("VFIO NVME PCI DRIVER\n"
         "M:\tnvme-vfio-pci developers <dev@nvme-vfio-pci.invalid>\n"
         "L:\tkvm@vger.kernel.org\n"
         "L:\tlinux-nvme@lists.infradead.org\n"
         "S:\tMaintained\n"
         "F:\tDocumentation/driver-api/vfio-pci-nvme/\n"
         "F:\tdrivers/vfio/pci/nvme/\n\n")
anchor = "VFIO PCI DEVICE SPECIFIC DRIVERS\n"
if anchor not in s:
    sys.exit("MAINTAINERS: no '%s' entry" % anchor.strip())
open(p, "w").write(s.replace(anchor, entry + anchor, 1))
PY

git add -A -f "$d" "$doc" drivers/vfio/pci/Kconfig drivers/vfio/pci/Makefile \
	Documentation/driver-api/index.rst MAINTAINERS
git commit -q -F "$ROOT/patches/driver-commit-message.txt"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# a fixed abbreviation (the kernel's 12): git's default grows with the
# number of objects it counts, which differs between a fresh and a packed
# repository
git -c core.abbrev=12 format-patch -q -1 --abbrev=12 --start-number 5 -o "$tmp" HEAD
gen=$(ls "$tmp"/0005-*.patch)
[ "$(basename "$gen")" = "$NAME" ] || die "make-series: unexpected patch name $(basename "$gen")"
if [ "$mode" = --check ]; then
	if ! cmp -s <(tail -n +2 "$gen") <(tail -n +2 "$PATCHES/$NAME" 2>/dev/null); then
		diff -u "$PATCHES/$NAME" "$gen" | head -40 || true
		die "patches/linux-$VER/$NAME is not what make series generates from drivers/vfio/pci/nvme (run make series)"
	fi
	msg "series: patches/linux-$VER/$NAME is generated from drivers/vfio/pci/nvme/"
else
	cp "$gen" "$PATCHES/$NAME"
	msg "wrote patches/linux-$VER/$NAME"
fi
