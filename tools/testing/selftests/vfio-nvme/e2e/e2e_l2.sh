# SPDX-License-Identifier: GPL-2.0-only
# shellcheck shell=sh disable=SC2034 # used by the scripts that source it
# Sourced by e2e_migrate.sh and e2e_bench.sh: how the rig's L1 starts the
# L2 guest.  L2_QEMU_ARGS (unquoted: words without spaces) is the machine,
# L2_APPEND the kernel command line without the l2.mode= of its workload.
#
# One vCPU under nested TCG; a 256 MiB translation cache rather than
# TCG's default 1 GiB, inside an L1 of 2 GiB; q35 for the pcie-root-port
# the VF sits on.
L2_QEMU_ARGS="-accel tcg,tb-size=256 -cpu max -smp 1 -machine q35 -nodefaults -display none -no-reboot"
# no_timer_check: the L2's boot-time test of the PIT through the IO-APIC
# needs five ticks within about 0.15 s of TSC time, which a starved
# nested-TCG vCPU misses; the kernel then falls back to the 8259A and
# virtual-wire routes and panics ("IO-APIC + timer doesn't work", or an
# oops in mask_ioapic_irq() from the next interrupt).
L2_APPEND="console=ttyS0 quiet loglevel=4 panic=-1 tsc=reliable no_timer_check"
