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
	# A new include/linux/nvme-*.h needs no MAINTAINERS change: the NVM
	# EXPRESS DRIVER entry covers the pattern.
	if ! "$ksrc/scripts/checkpatch.pl" --strict --terse --ignore FILE_PATH_CHANGES \
		--root="$ksrc" - \
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

# SPDX: checkpatch checks that a source file has a tag, but it validates the
# licence only with a git kernel tree (scripts/spdxcheck.py), which
# linux-source is not, and knows nothing of this project's rule: the QEMU
# model (and its documentation) GPL-2.0-or-later, everything else,
# including the files the kernel series adds, GPL-2.0-only.
spdx_want() {
	case $1 in
	qemu/* | */qemu/* | Documentation/device-model.rst) echo GPL-2.0-or-later ;;
	*) echo GPL-2.0-only ;;
	esac
}
# the licence tag in the first 3 lines of every file a patch adds
spdx_of_new_files() {
	awk '
	function done_file(lic) { print file "\t" lic; file = "" }
	/^diff --git / { if (file != "") done_file("none"); next }
	/^--- \/dev\/null$/ { newf = 1; next }
	newf && /^\+\+\+ b\// { file = substr($0, 7); left = 3; newf = 0; next }
	{ newf = 0 }
	file != "" && /^\+/ {
		if (match($0, /SPDX-License-Identifier: [^ *]+/))
			done_file(substr($0, RSTART + 25, RLENGTH - 25))
		else if (--left == 0)
			done_file("none")
	}
	END { if (file != "") done_file("none") }' "$1"
}
spdx_bad=()
nfiles=0
while read -r f; do
	nfiles=$((nfiles + 1))
	got=$(head -n 3 "$f" | grep -o 'SPDX-License-Identifier: [^ *]*' | head -1 || true)
	got=${got#SPDX-License-Identifier: }
	want=$(spdx_want "$f")
	[ "$got" = "$want" ] || spdx_bad+=("$f: ${got:-no SPDX tag}, not $want")
done < <(git ls-files -co --exclude-standard |
	grep -Ev '^(patches|qemu/patches)/|\.md$|^COPYING$|(^|/)\.gitignore$')
nspdx=0
for p in patches/linux-*/*.patch qemu/patches/*.patch; do
	[ -e "$p" ] || continue
	while IFS=$'\t' read -r f got; do
		nspdx=$((nspdx + 1))
		case $p in qemu/*) want=GPL-2.0-or-later ;; *) want=$(spdx_want "$f") ;; esac
		[ "$got" = "$want" ] || spdx_bad+=("$p: $f: $got, not $want")
	done < <(spdx_of_new_files "$p")
done
if [ ${#spdx_bad[@]} -ne 0 ]; then
	printf '%s\n' "${spdx_bad[@]}"
	die "lint: ${#spdx_bad[@]} files with a missing or wrong SPDX licence"
fi
msg "lint: SPDX: the right licence in $nfiles source files and the $nspdx files the patches add"

# The VF operations nvme-pci exports (include/linux/nvme-pci.h, added by the
# series) only ever address the calling VF's own controller: none takes a
# controller ID or a command, and every one nvme-pci exports is declared
# there.
hdr=$ksrc/include/linux/nvme-pci.h
[ -f "$hdr" ] || die "lint: $hdr missing (the series adds it)"
protos=$(sed -n '/^\(int\|void\) nvme_pci_vf_/,/;/p' "$hdr")
[ -n "$protos" ] || die "lint: no nvme_pci_vf_*() prototypes in $hdr"
if grep -Eiq 'cntl?id|scid|nvme_command' <<<"$protos"; then
	grep -Ei 'cntl?id|scid|nvme_command' <<<"$protos"
	die "lint: an nvme_pci_vf_*() operation takes a controller ID or a command"
fi
exports=$(sed -n 's/^EXPORT_SYMBOL_GPL(\(nvme_pci_vf_[a-z_]*\));/\1/p' \
	"$ksrc/drivers/nvme/host/pci.c")
[ -n "$exports" ] || die "lint: nvme-pci exports no nvme_pci_vf_*()"
for e in $exports; do
	grep -q "[ *]$e(" <<<"$protos" || die "lint: $e is exported but not declared in nvme-pci.h"
done
msg "lint: $(wc -w <<<"$exports") nvme_pci_vf_*() exports, none takes a controller ID or a command"

# Rebuild everything with W=1 and sparse on every file.
make -C "$kdir" M="$ROOT" clean >/dev/null
if ! make -C "$kdir" M="$ROOT" CONFIG_NVME_VFIO_PCI_KUNIT_TEST=m W=1 C=2 modules >>"$log" 2>&1 ||
	grep -E "warning:|error:" "$log"; then
	die "W=1/sparse build has warnings (full output in $log)"
fi
msg "lint: checkpatch --strict (${#files[@]} files), W=1, sparse: clean"
