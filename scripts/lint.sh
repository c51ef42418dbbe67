#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# checkpatch --strict on our kernel code, selftests and kernel patches, and a
# W=1 + sparse (C=2) build of the module.  Any warning fails.
#   lint.sh KDIR
set -euo pipefail
. "$(dirname "$0")/lib.sh"
kdir=$1
ksrc=$(dirname "$kdir")/src
command -v sparse >/dev/null || die "sparse not installed (scripts/deps.sh)"
log=$LOGDIR/lint.log
: >"$log"
fail=0

cd "$ROOT"
mapfile -t files < <(git ls-files -co --exclude-standard -- \
	'drivers/*.c' 'drivers/*.h' 'include/*.h' \
	'tools/testing/selftests/*.c' 'tools/testing/selftests/*.h')
if ! "$ksrc/scripts/checkpatch.pl" --strict --no-tree --terse --show-types -f "${files[@]}" >>"$log" 2>&1; then
	fail=1
fi
# Patches go through stdin: checkpatch checks a path that git tracks as a
# source file, not as a patch.
for p in patches/linux-6.12/*.patch; do
	[ -e "$p" ] || continue
	if ! "$ksrc/scripts/checkpatch.pl" --strict --terse --root="$ksrc" - \
		<"$p" >"$log.patch" 2>&1; then
		fail=1
	fi
	sed "s|^-:|$p:|" "$log.patch" >>"$log"
	rm -f "$log.patch"
done
if [ $fail -ne 0 ]; then
	grep -E "^[^ ]+:[0-9]+: (ERROR|WARNING|CHECK)" "$log" || tail -20 "$log"
	die "checkpatch found problems (full output in $log)"
fi

# Rebuild everything with W=1 and sparse on every file.
make -C "$kdir" M="$ROOT" clean >/dev/null
if ! make -C "$kdir" M="$ROOT" CONFIG_NVME_VFIO_PCI_KUNIT_TEST=m W=1 C=2 modules >>"$log" 2>&1 ||
	grep -E "warning:|error:" "$log"; then
	die "W=1/sparse build has warnings (full output in $log)"
fi
msg "lint: checkpatch --strict (${#files[@]} files), W=1, sparse: clean"
