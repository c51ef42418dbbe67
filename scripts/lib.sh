# SPDX-License-Identifier: GPL-2.0-only
# Common helpers for the rig scripts.  Sourced, never executed.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${NVME_VFIO_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/nvme-vfio-pci}
LOGDIR=$CACHE/logs
mkdir -p "$CACHE" "$LOGDIR"

# Python from Debian, not a pyenv shim: QEMU's configure needs the system one.
SYS_PYTHON=/usr/bin/python3

msg() { printf '[rig] %s\n' "$*"; }
die() { printf '[rig] error: %s\n' "$*" >&2; exit 1; }

# hash_files FILE|DIR... -> short sha256 of names and contents (sorted)
hash_files() {
	local f
	for f in "$@"; do
		if [ -d "$f" ]; then
			find "$f" -type f -print0 | LC_ALL=C sort -z |
				xargs -0 -r sha256sum
		elif [ -e "$f" ]; then
			sha256sum "$f"
		else
			echo "missing $f"
		fi
	done | sed "s|$ROOT/||" | sha256sum | cut -c1-16
}

# run_logged LOG CMD... : run CMD with output to LOG, show its tail on failure
run_logged() {
	local log=$1
	shift
	if ! "$@" >"$log" 2>&1; then
		echo "[rig] command failed: $*" >&2
		echo "[rig] last 40 lines of $log:" >&2
		tail -n 40 "$log" >&2
		return 1
	fi
}

# oot_dir KDIR: where build-module.sh --copy builds the driver against KDIR
oot_dir() {
	echo "$CACHE/oot-$(basename "$(dirname "$1")")"
}

# phase NAME CMD... : run one phase and print its elapsed time
phase() {
	local name=$1 t0 t1 rc=0
	shift
	t0=$(date +%s.%N)
	"$@" || rc=$?
	t1=$(date +%s.%N)
	if [ $rc -eq 0 ]; then
		printf '[rig] phase %-10s ok      %6.1fs\n' "$name" "$(echo "$t1 - $t0" | bc)"
	else
		printf '[rig] phase %-10s FAILED  %6.1fs (rc=%d)\n' "$name" "$(echo "$t1 - $t0" | bc)" $rc
	fi
	return $rc
}

# Private apt configuration (trixie), never touching /etc/apt.
APTDIR=$CACHE/apt
apt_trixie() {
	apt-get -q -o Dir::Etc::sourcelist="$APTDIR/trixie.list" \
		-o Dir::Etc::sourceparts=/dev/null \
		-o Dir::State::Lists="$APTDIR/lists" \
		-o Dir::Cache="$APTDIR/cache" \
		-o APT::Sandbox::User=root "$@"
}

apt_trixie_setup() {
	mkdir -p "$APTDIR/lists/partial" "$APTDIR/cache/archives/partial"
	cat >"$APTDIR/trixie.list" <<EOT
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian-security trixie-security main
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian-security trixie-security main
EOT
	# refresh at most once a day
	if [ -z "$(find "$APTDIR/lists" -maxdepth 1 -name '*Sources*' -mmin -1440 2>/dev/null)" ]; then
		apt_trixie update -qq >"$LOGDIR/apt-trixie-update.log" 2>&1 ||
			{ tail -20 "$LOGDIR/apt-trixie-update.log"; return 1; }
	fi
}

# Kernels the rig builds and runs: Debian's linux-source-VERSION.
RIG_KERNELS="6.12 7.3"

# Private apt configuration for trixie-backports (linux-source-7.3), a list
# of its own so the QEMU source never comes from backports.
apt_bpo() {
	local tool=apt-get
	if [ "$1" = show ]; then
		tool=apt-cache
	fi
	"$tool" -q -o Dir::Etc::sourcelist="$APTDIR/bpo.list" \
		-o Dir::Etc::sourceparts=/dev/null \
		-o Dir::State::Lists="$APTDIR/bpo-lists" \
		-o Dir::Cache="$APTDIR/bpo-cache" \
		-o APT::Sandbox::User=root "$@"
}

# series_files PATCHDIR TREE: the files of TREE that the patches of
# PATCHDIR change, one a line (those a patch adds are not there yet):
# what git am needs in the index of a repository made for the series
series_files() {
	local f
	sed -n 's|^--- a/||p' "$1"/*.patch 2>/dev/null | LC_ALL=C sort -u |
		while read -r f; do
			[ ! -f "$2/$f" ] || echo "$f"
		done
}

# kernel_source VERSION: set KTARBALL (the source tarball) and KPKGVER (the
# Debian package version) of linux-source-VERSION.  6.12 is installed by
# deps.sh; 7.3 comes from trixie-backports into the cache (the list is
# refreshed at most once a day, the tarball fetched when its version changed).
kernel_source() {
	local v=$1 dir deb
	case $v in
	6.12)
		KTARBALL=/usr/src/linux-source-6.12.tar.xz
		[ -f "$KTARBALL" ] || die "$KTARBALL missing (scripts/deps.sh installs linux-source-6.12)"
		KPKGVER=$(dpkg-query -W -f='${Version}' linux-source-6.12)
		;;
	7.3)
		dir=$CACHE/src/linux-7.3
		mkdir -p "$dir" "$APTDIR/bpo-lists/partial" "$APTDIR/bpo-cache/archives/partial"
		echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie-backports main" \
			>"$APTDIR/bpo.list"
		if [ -z "$(find "$APTDIR/bpo-lists" -maxdepth 1 -name '*Packages*' -mmin -1440 2>/dev/null)" ]; then
			apt_bpo update -qq >"$LOGDIR/apt-bpo-update.log" 2>&1 ||
				{ tail -20 "$LOGDIR/apt-bpo-update.log" >&2; [ -f "$dir/.version" ] ||
				die "could not read the trixie-backports package list"; }
		fi
		KPKGVER=$(apt_bpo show linux-source-7.3 2>/dev/null |
			sed -n 's/^Version: //p' | sort -V | tail -1)
		[ -n "$KPKGVER" ] || KPKGVER=$(cat "$dir/.version" 2>/dev/null)
		[ -n "$KPKGVER" ] || die "linux-source-7.3 not found in trixie-backports"
		KTARBALL=$dir/linux-source-7.3.tar.xz
		if [ "$(cat "$dir/.version" 2>/dev/null)" != "$KPKGVER" ] || [ ! -f "$KTARBALL" ]; then
			rm -f "$dir"/*.deb "$dir/.version"
			(cd "$dir" && apt_bpo download "linux-source-7.3=$KPKGVER") \
				>"$LOGDIR/apt-bpo-download.log" 2>&1 ||
				{ tail -20 "$LOGDIR/apt-bpo-download.log" >&2; die "could not fetch linux-source-7.3"; }
			deb=$(ls "$dir"/linux-source-7.3_*.deb)
			dpkg-deb --fsys-tarfile "$deb" |
				tar -xO ./usr/src/linux-source-7.3.tar.xz >"$KTARBALL.tmp"
			mv "$KTARBALL.tmp" "$KTARBALL"
			rm -f "$deb"
			echo "$KPKGVER" >"$dir/.version"
		fi
		;;
	*) die "unknown kernel '$v' (the rig runs: $RIG_KERNELS)" ;;
	esac
}
