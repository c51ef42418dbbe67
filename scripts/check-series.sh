#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# The kernel series as a maintainer takes it: every patch of
# patches/linux-6.12/ applies with git am on Debian's linux-source-6.12,
# passes checkpatch --strict on its own, and the tree builds (drivers/nvme/
# with W=1, the rig's config) after each one of them, not only after the
# last.  Cached: a series that passed is not checked again.
#   check-series.sh
set -euo pipefail
. "$(dirname "$0")/lib.sh"

TARBALL=/usr/src/linux-source-6.12.tar.xz
[ -f "$TARBALL" ] || die "$TARBALL missing (scripts/deps.sh installs linux-source-6.12)"
PKGVER=$(dpkg-query -W -f='${Version}' linux-source-6.12)
PATCHES=$ROOT/patches/linux-6.12
FRAG=$ROOT/scripts/kconfig/rig.config
OUT=$CACHE/series
KEY=$( (echo "$PKGVER"; hash_files "$PATCHES" "$FRAG" "$ROOT/scripts/check-series.sh") |
	sha256sum | cut -c1-16)
if [ "$(cat "$OUT/.key" 2>/dev/null)" = "$KEY" ]; then
	msg "series: unchanged since it passed"
	exit 0
fi
rm -f "$OUT/.key"
log=$LOGDIR/series.log
: >"$log"

# A pristine tree to build in, once per source package.
if [ "$(cat "$OUT/.src" 2>/dev/null)" != "$PKGVER" ]; then
	rm -rf "$OUT"
	mkdir -p "$OUT"
	tar xf "$TARBALL" -C "$OUT"
	mv "$OUT/linux-source-6.12" "$OUT/src"
	cp -a "$OUT/src" "$OUT/pristine"
	echo "$PKGVER" >"$OUT/.src"
fi
src=$OUT/src build=$OUT/build
# back to pristine (checksums: untouched files keep their timestamps)
rsync -rlc --delete "$OUT/pristine/" "$src/"

# git am needs a repository: the tree as one commit (-f: Debian's
# .gitignore ignores everything at the top level)
git=$OUT/git
rm -rf "$git"
mkdir -p "$git"
export GIT_AUTHOR_NAME=rig GIT_AUTHOR_EMAIL=rig@invalid
export GIT_COMMITTER_NAME=rig GIT_COMMITTER_EMAIL=rig@invalid
(cd "$src" && git init -q "$git" && git --git-dir="$git/.git" --work-tree=. add -A -f . &&
	git --git-dir="$git/.git" --work-tree=. commit -q -m "linux-source-6.12 $PKGVER") >>"$log" 2>&1 ||
	die "series: could not make a git repository of the tree (see $log)"

mkdir -p "$build"
if [ ! -e "$build/.config" ]; then
	make -C "$src" O="$build" tinyconfig >>"$log" 2>&1
	"$src/scripts/kconfig/merge_config.sh" -m -O "$build" "$build/.config" "$FRAG" >>"$log" 2>&1
	make -C "$src" O="$build" olddefconfig >>"$log" 2>&1
fi

n=0
for p in "$PATCHES"/*.patch; do
	[ -e "$p" ] || continue
	n=$((n + 1))
	name=$(basename "$p")
	(cd "$src" && git --git-dir="$git/.git" --work-tree=. am -q --keep-cr "$p") >>"$log" 2>&1 ||
		die "series: $name does not apply with git am (see $log)"
	if ! "$src/scripts/checkpatch.pl" --strict --terse --ignore FILE_PATH_CHANGES \
		--root="$src" - <"$p" >>"$log" 2>&1; then
		grep -E "^-:[0-9]+: " "$log" | tail -20
		die "series: checkpatch --strict fails on $name"
	fi
	if ! make -C "$src" O="$build" -j"$(nproc)" W=1 drivers/nvme/ >"$log.build" 2>&1 ||
		grep -E "warning:|error:" "$log.build"; then
		cat "$log.build" >>"$log"
		die "series: the tree does not build cleanly after $name (see $log)"
	fi
	cat "$log.build" >>"$log"
	msg "series: $name applies, checkpatch --strict clean, builds (W=1)"
done
rm -f "$log.build"
[ $n -gt 0 ] || die "series: no patches in $PATCHES"
echo "$KEY" >"$OUT/.key"
msg "series: $n patches, each applies with git am, builds and passes checkpatch"
