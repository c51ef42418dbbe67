#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# Install the Debian packages the rig needs (idempotent, quiet when present).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

PKGS=(
	# QEMU build
	gcc make ninja-build pkgconf libglib2.0-dev zlib1g-dev python3-venv
	dpkg-dev xz-utils bzip2
	# kernel build + lint
	linux-source-6.12 flex bison bc libelf-dev libssl-dev dwarves sparse
	cpio perl rsync patch git libc6-dev python3 kmod unifdef lz4
	# guest
	busybox-static seabios qemu-system-data
)

missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi
[ "$(id -u)" -eq 0 ] || die "need root to install: ${missing[*]}"
msg "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
run_logged "$LOGDIR/apt-install.log" apt-get update -qq
run_logged "$LOGDIR/apt-install.log" apt-get install -y -qq --no-install-recommends "${missing[@]}"
