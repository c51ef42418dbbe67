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
