#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-only
"""Turn the guest console log into test results.

The guest prints each suite's KTAP/TAP between
  RIG-KTAP-BEGIN <name> [uptime=S]   and   RIG-KTAP-END <name> [rc=N] [uptime=S]
(with both uptimes the block's summary gives its duration)
Every leaf result counts once.  Skipped tests, missing results (fewer than
the plan announced), a missing END marker, a non-zero exit status, a missing
RIG-POWEROFF and any kernel splat in the log count as failures.

Prints the TAP of every block, a per-block summary and, last, the line
"N passed, M failed".  Exit status 0 only when M is 0 and N > 0.
"""
import os
import re
import sys

RESULT = re.compile(r'^(\s*)(not ok|ok)\s+(\d+)\s*-?\s*([^#]*?)\s*(#\s*(.*))?$')
PLAN = re.compile(r'^(\s*)1\.\.(\d+)')
KMSG = re.compile(r'^\[\s*\d+\.\d+\]')
UPTIME = re.compile(r'uptime=(\d+(?:\.\d+)?)')
SPLAT = re.compile(r'(Oops:|BUG:|KASAN:|UBSAN:|Kernel panic|RIG-RMMOD \S+ failed|'
                   r'general protection fault|WARNING: .*(CPU|lock|possible)|'
                   r'INFO: (possible|task .* blocked)|'
                   r'unreferenced object|Call Trace:)')

# Splats of the kernel itself, not of this project, that a test cannot avoid
# provoking.  Each is matched by its WARNING line and by a frame that must
# appear in the call trace after it; it is printed as KNOWN, with the
# reason, and not counted.  Anything else in the trace window still counts.
KNOWN_SPLATS = [
    (re.compile(r'WARNING: drivers/pci/remove\.c:\d+ at pci_stop_and_remove_bus_device'),
     re.compile(r'\bsriov_disable\b'),
     'Linux 7.3 asserts pci_rescan_remove_lock in pci_stop_and_remove_bus_device(), '
     'which a PF driver disabling SR-IOV in .remove() on a sysfs unbind does not hold '
     '(vfio-pci\'s own unregister path alike): Documentation/kernels.rst'),
]


def known_splats(log):
    """Indexes of the log lines that belong to a known splat, and notes."""
    skip, notes = set(), []
    for i, line in enumerate(log):
        for warn, frame, why in KNOWN_SPLATS:
            if not warn.search(line):
                continue
            # the report ends at its "end trace" line
            end = next((j for j in range(i, min(i + 80, len(log)))
                        if '---[ end trace' in log[j]), None)
            if end is None or not any(frame.search(l) for l in log[i:end]):
                continue
            skip.update(range(i, end + 1))
            note = f'{line.strip()}: {why}'
            if note not in notes:	# the end-of-run dmesg repeats it
                notes.append(note)
    return skip, notes


def parse_block(name, lines, rc):
    """Return (passed, failed, failures[], printable lines)."""
    passed = failed = 0
    failures = []
    seen = []           # indents of results since the last shallower one
    plan_top = None
    top_indent = None
    by_indent = {}      # results per indent (a plan may also come last)
    out = []
    for line in lines:
        out.append(line)
        m = PLAN.match(line)
        if m and plan_top is None:
            plan_top = int(m.group(2))
            top_indent = len(m.group(1))
            continue
        m = RESULT.match(line)
        if not m:
            continue
        indent = len(m.group(1))
        ok = m.group(2) == 'ok'
        test = m.group(4).strip()
        directive = (m.group(6) or '').strip()
        leaf = not any(k > indent for k in seen)
        seen = [k for k in seen if k < indent] + [indent]
        by_indent[indent] = by_indent.get(indent, 0) + 1
        if not leaf:
            continue
        if directive.upper().startswith('SKIP'):
            failed += 1
            failures.append(f'{name}: {test} (skipped: {directive})')
        elif ok:
            passed += 1
        else:
            failed += 1
            failures.append(f'{name}: {test}')
    top_count = by_indent.get(top_indent, 0)
    if plan_top is None:
        failed += 1
        failures.append(f'{name}: no TAP plan')
    elif top_count < plan_top:
        failed += plan_top - top_count
        failures.append(f'{name}: {plan_top - top_count} of {plan_top} '
                        f'planned results missing')
    if rc is None:
        failed += 1
        failures.append(f'{name}: output ended without END marker (crash or timeout)')
    elif rc != 0 and not failures:
        failed += 1
        failures.append(f'{name}: exit status {rc}')
    return passed, failed, failures, out


def one_run(label, path, qemu_rc, host=False):
    """Results of one guest (or, with @host, of a test run on the host):
    (passed, failed, failures, splats, crash, notes)."""
    with open(path, errors='replace') as f:
        log = [l.rstrip('\r\n').replace('\r', '') for l in f]
    tag = f'{label} ' if label else ''

    total_p = total_f = 0
    all_failures = []
    block = None
    began = None
    lines = []
    for line in log:
        if line.startswith('RIG-KTAP-BEGIN '):
            if block:
                p, f, fl, out = parse_block(block, lines, None)
                total_p, total_f = total_p + p, total_f + f
                all_failures += fl
            block = line.split()[1]
            m = UPTIME.search(line)
            began = float(m.group(1)) if m else None
            lines = []
            continue
        if block and line.startswith('RIG-KTAP-END'):
            m = re.search(r'rc=(\d+)', line)
            rc = int(m.group(1)) if m else 0
            m = UPTIME.search(line)
            took = ''
            if m and began is not None:
                took = f' ({float(m.group(1)) - began:.0f} s)'
            p, f, fl, out = parse_block(block, lines, rc)
            print(f'# ---- {tag}{block}: {p} passed, {f} failed{took}')
            for o in out:
                print(o)
            total_p, total_f = total_p + p, total_f + f
            all_failures += fl
            block = None
            continue
        if block and not KMSG.match(line):
            lines.append(line)
    if block:
        p, f, fl, out = parse_block(block, lines, None)
        print(f'# ---- {tag}{block}: {p} passed, {f} failed (incomplete)')
        for o in out:
            print(o)
        total_p, total_f = total_p + p, total_f + f
        all_failures += fl

    # a guest's console: kernel splats, the end marker, QEMU's exit status
    splats, notes = [], []
    if not host:
        known, notes = known_splats(log)
        splats = [l for i, l in enumerate(log) if SPLAT.search(l) and i not in known]
        if splats:
            total_f += 1
            all_failures.append('kernel splat in console: ' + splats[0].strip())
        if not any(l.startswith('RIG-POWEROFF') for l in log):
            total_f += 1
            all_failures.append('guest did not reach RIG-POWEROFF '
                                f'(QEMU exit {qemu_rc}{", timeout" if qemu_rc == 124 else ", guest stalled: see stall.log" if qemu_rc == 125 else ""})')
        elif qemu_rc != 0:
            total_f += 1
            all_failures.append(f'QEMU exit status {qemu_rc}')
    if total_p == 0 and total_f == 0:
        total_f += 1
        all_failures.append('no test results at all')
    # the guest was run a second time after TCG lost an EOI (check.sh)
    rerun = os.path.join(os.path.dirname(path), 'rerun')
    if os.path.exists(rerun):
        with open(rerun, errors='replace') as f:
            notes += [l for l in f.read().splitlines() if l.strip()]
    # a QEMU that died of a signal: its message and backtraces (run-vm.sh)
    crash = []
    crash_log = os.path.join(os.path.dirname(path), 'crash.log')
    if qemu_rc > 128 and os.path.exists(crash_log):
        with open(crash_log, errors='replace') as f:
            crash = f.read().splitlines()[-150:]
    return (total_p, total_f, [tag + fl for fl in all_failures],
            [tag + sp for sp in splats[:40]], [tag + c for c in crash],
            [tag + n for n in notes])


def main():
    # results.py CONSOLE_LOG [QEMU_EXIT_STATUS]
    # results.py --run LABEL CONSOLE_LOG QEMU_EXIT_STATUS [--run ...]
    #            [--host LABEL LOG ...]   (a test run on the host: TAP only)
    args = sys.argv[1:]
    runs = []
    if args and args[0] in ('--run', '--host'):
        while args:
            if args[0] == '--host' and len(args) >= 3:
                runs.append((args[1], args[2], 0, True))
                args = args[3:]
                continue
            if args[0] != '--run' or len(args) < 4:
                print('usage: results.py --run LABEL LOG RC [--run ...] '
                      '[--host LABEL LOG ...]', file=sys.stderr)
                return 2
            runs.append((args[1], args[2], int(args[3]), False))
            args = args[4:]
    elif args:
        runs.append(('', args[0], int(args[1]) if len(args) > 1 else 0, False))
    else:
        print('usage: results.py CONSOLE_LOG [QEMU_EXIT_STATUS]', file=sys.stderr)
        return 2

    total_p = total_f = 0
    failures, splats, crashes, knowns = [], [], [], []
    summary = []
    for label, path, rc, host in runs:
        p, f, fl, sp, cr, kn = one_run(label, path, rc, host)
        knowns += kn
        total_p, total_f = total_p + p, total_f + f
        failures += fl
        splats += sp
        crashes += cr
        if label:
            what = 'host' if host else 'kernel'
            summary.append(f'# {what} {label}: {p} passed, {f} failed')

    for fl in failures:
        print(f'FAILED: {fl}')
    for s in splats:
        print(f'SPLAT: {s}')
    for c in crashes:
        print(f'CRASH: {c}')
    for k in knowns:
        print(f'KNOWN: {k}')
    for line in summary:
        print(line)
    print(f'{total_p} passed, {total_f} failed')
    return 0 if total_f == 0 else 1


if __name__ == '__main__':
    sys.exit(main())
