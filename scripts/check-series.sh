#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# The kernel series as a maintainer takes it: every patch of
# patches/linux-VERSION/ applies with git am on Debian's
# linux-source-VERSION, passes that kernel's checkpatch --strict on its own,
# and the tree builds with W=1 after each one of them, not only after the
# last: drivers/nvme/ with the rig's config, nvme-pci also without
# CONFIG_PCI_IOV (the L2 guest's kind of kernel), and the in-tree driver
# once a patch added it.  Cached: a series that passed is not checked again.
#   check-series.sh VERSION     (6.12 or 7.3)
set -euo pipefail
. "$(dirname "$0")/lib.sh"

VER=${1:-6.12}
kernel_source "$VER"
PATCHES=$ROOT/patches/linux-$VER
FRAGS=("$ROOT/scripts/kconfig/rig.config")
if [ -f "$ROOT/scripts/kconfig/rig-$VER.config" ]; then
	FRAGS+=("$ROOT/scripts/kconfig/rig-$VER.config")
fi
# 6.12 keeps the directory it always had
OUT=$CACHE/series
[ "$VER" = 6.12 ] || OUT=$CACHE/series-$VER
# the in-tree driver patch is what make series generates from the driver
if [ -e "$ROOT/scripts/make-series.sh" ] && ls "$PATCHES"/0005-vfio-pci-nvme-*.patch >/dev/null 2>&1; then
	bash "$ROOT/scripts/make-series.sh" --check
fi
KEY=$( (echo "$KPKGVER"; hash_files "$PATCHES" "${FRAGS[@]}" "$ROOT/scripts/check-series.sh") |
	sha256sum | cut -c1-16)
if [ "$(cat "$OUT/.key" 2>/dev/null)" = "$KEY" ]; then
	msg "series $VER: unchanged since it passed"
	exit 0
fi
rm -f "$OUT/.key"
log=$LOGDIR/series-$VER.log
: >"$log"

# The tree to build in: extracted once per source package.  git am needs a
# repository: one whose first commit holds the files the series changes
# (-f: Debian's .gitignore ignores everything at the top level), as the
# tarball has them; the next run goes back to that commit, which also
# removes the files the patches added, so the tree is pristine again without
# copying or checksumming the whole of it.  A run that stopped before its
# repository existed leaves no .pristine mark: the tree is extracted anew.
src=$OUT/src build=$OUT/build noiov=$OUT/build-noiov git=$OUT/git
export GIT_AUTHOR_NAME=rig GIT_AUTHOR_EMAIL=rig@invalid
export GIT_COMMITTER_NAME=rig GIT_COMMITTER_EMAIL=rig@invalid
gsrc() { (cd "$src" && git --git-dir="$git/.git" --work-tree=. "$@"); }
if [ "$(cat "$OUT/.src" 2>/dev/null)" = "$KPKGVER" ] && [ -d "$git/.git" ]; then
	gsrc reset -q --hard "$(gsrc rev-list --max-parents=0 HEAD)" >>"$log" 2>&1 &&
		touch "$OUT/.pristine" || rm -f "$OUT/.pristine"
fi
if [ "$(cat "$OUT/.src" 2>/dev/null)" != "$KPKGVER" ] || [ ! -e "$OUT/.pristine" ]; then
	rm -rf "$OUT"
	mkdir -p "$OUT"
	tar xf "$KTARBALL" -C "$OUT"
	mv "$OUT/linux-source-$VER" "$src"
	echo "$KPKGVER" >"$OUT/.src"
	touch "$OUT/.pristine"
fi
rm -rf "$git"
mkdir -p "$git"
# an earlier layout kept a full copy of the tree
rm -rf "$OUT/pristine"
# the files the patches change that the tarball has (the others are added
# by an earlier patch of the series; git am says so if not)
mapfile -t touched < <(series_files "$PATCHES" "$src")
[ ${#touched[@]} -gt 0 ] || die "series $VER: the patches change no file of linux-source-$VER"
{ git init -q "$git" && gsrc add -f -- "${touched[@]}" &&
	gsrc commit -q -m "linux-source-$VER $KPKGVER: the files the series changes"; } >>"$log" 2>&1 ||
	die "series $VER: could not make a git repository of the tree (see $log)"
rm -f "$OUT/.pristine"

# configure: the rig's fragments, and the same without SR-IOV; again after
# a patch that adds a Kconfig symbol (the in-tree driver)
configure() {
	mkdir -p "$build" "$noiov"
	{
		make -C "$src" O="$build" tinyconfig
		"$src/scripts/kconfig/merge_config.sh" -m -O "$build" "$build/.config" "${FRAGS[@]}"
		make -C "$src" O="$build" olddefconfig
		cp "$build/.config" "$noiov/.config"
		"$src/scripts/config" --file "$noiov/.config" --disable PCI_IOV
		make -C "$src" O="$noiov" olddefconfig
	} >>"$log" 2>&1
	! grep -q '^CONFIG_PCI_IOV=y' "$noiov/.config" || die "series $VER: cannot turn CONFIG_PCI_IOV off"
}
[ -e "$build/.config" ] && [ -e "$noiov/.config" ] || configure

# checkpatch's SPDX check needs python3-ply: Debian's python, not a pyenv one
export PATH=/usr/bin:$PATH
n=0
for p in "$PATCHES"/*.patch; do
	[ -e "$p" ] || continue
	n=$((n + 1))
	name=$(basename "$p")
	gsrc am -q --keep-cr --whitespace=error "$p" >>"$log" 2>&1 ||
		die "series $VER: $name does not apply with git am (see $log)"
	if ! "$src/scripts/checkpatch.pl" --strict --terse --ignore FILE_PATH_CHANGES \
		--root="$src" - <"$p" >"$log.cp" 2>&1; then
		cat "$log.cp" >>"$log"
		grep -E "^-:[0-9]+: " "$log.cp" | tail -20
		die "series $VER: checkpatch --strict fails on $name"
	fi
	cat "$log.cp" >>"$log"
	grep -q '^+++ b/.*Kconfig$' "$p" && configure
	targets=(drivers/nvme/)
	what="drivers/nvme/"
	if [ -e "$src/drivers/vfio/pci/nvme/Kconfig" ]; then
		grep -q '^CONFIG_NVME_VFIO_PCI=m' "$build/.config" ||
			die "series $VER: CONFIG_NVME_VFIO_PCI=m did not survive olddefconfig"
		targets+=(drivers/vfio/pci/nvme/)
		what+=" drivers/vfio/pci/nvme/"
	fi
	if ! { make -C "$src" O="$build" -j"$(nproc)" W=1 "${targets[@]}" &&
		make -C "$src" O="$noiov" -j"$(nproc)" W=1 drivers/nvme/host/pci.o; } >"$log.build" 2>&1 ||
		grep -E "warning:|error:" "$log.build"; then
		cat "$log.build" >>"$log"
		die "series $VER: the tree does not build cleanly after $name (see $log)"
	fi
	cat "$log.build" >>"$log"
	msg "series $VER: $name applies, checkpatch --strict clean, builds (W=1: $what; nvme-pci without PCI_IOV)"
done
rm -f "$log.build" "$log.cp"
[ $n -gt 0 ] || die "series $VER: no patches in $PATCHES"
echo "$KEY" >"$OUT/.key"
msg "series $VER: $n patches, each applies with git am, builds and passes checkpatch"
