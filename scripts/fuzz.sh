#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# make fuzz: the two fuzzers with long runs, through make check's phases
# with only the fuzzing tests selected:
#  - the device model's Set Controller State fuzzer (qtest on the host),
#    QTEST_FUZZ_CASES mutated states (default 100000);
#  - the driver's stream fuzzer (migration_test mig.stream_fuzz) in the
#    guest of FUZZ_KERNEL (default 7.3) built as FUZZ_FLAVOUR (default
#    debug: KASAN, UBSAN, kmemleak, lockdep, as make check-debug; "rig" for
#    the rig's kernel), STREAM_FUZZ_CASES streams (default 100000), into
#    both VFs at once (STREAM_FUZZ_WORKERS, default 2);
#  - fault_test's fault.matrix with every step of every command failed
#    (FAULT_MATRIX_FULL=1; make check fails the first 8 and last 4 of a
#    long sequence).
# The rig has one detached namespace (RIG_EXTRA_NS, below).
# NVME_LM_FUZZ_SEED and STREAM_FUZZ_SEED repeat a run (the stream fuzzer:
# each worker's streams).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

export QTEST_FUZZ_CASES=${QTEST_FUZZ_CASES:-100000}
export STREAM_FUZZ_CASES=${STREAM_FUZZ_CASES:-100000}
export RIG_KERNEL=${FUZZ_KERNEL:-7.3}
export FAULT_MATRIX_FULL=1
export TESTS="migration_test fault_test" E2E_BACKENDS=
# One detached namespace instead of make check's 65 (run-vm.sh; only
# mig.too_many_namespaces_binds_without_migration needs those): each
# RESUMING arc scans the allocated NSIDs with one Identify each, 71 PF
# commands with 66 of them, which made a stream fuzz case cost 777 ms on
# the debug kernel.  The scan still meets an NSID not attached to the VF.
export RIG_EXTRA_NS=${RIG_EXTRA_NS:-1}
export TEST_ARGS="-r mig.stream_fuzz -r fault.matrix"
export RIG_QTEST_TIMEOUT=${RIG_QTEST_TIMEOUT:-3600} RIG_TIMEOUT=${RIG_TIMEOUT:-14400}
case ${FUZZ_FLAVOUR:-debug} in
debug) exec bash "$ROOT/scripts/check.sh" check-debug ;;
rig) exec bash "$ROOT/scripts/check.sh" check ;;
*) die "FUZZ_FLAVOUR: debug or rig, not '$FUZZ_FLAVOUR'" ;;
esac
