# SPDX-License-Identifier: GPL-2.0-only
# nvme-vfio-pci: top-level entry points.
#
#   make            build nvme-vfio-pci.ko (against KDIR, default: the rig's kernel)
#   make check      build everything, lint, boot the rig, run KUnit + kselftests
#   make check-debug  the suite on the debug guest kernel (KASAN, UBSAN, kmemleak)
#   make demo       boot the rig and show the PF/VF topology and Identify results
#   make bench      boot the rig and print the DMA logging benchmark table
#   make shell      boot the rig with a shell on the serial console
#   make lint       checkpatch --strict, W=1 and sparse on the kernel code
#   make series     generate the in-tree driver patch of patches/linux-7.3/
#   make fuzz       the fuzzers, long runs (model: 100k states, driver: 100k streams)
#   make clean
#
# Builds are cached in $${XDG_CACHE_HOME:-~/.cache}/nvme-vfio-pci.

SHELL := /bin/bash
ROOT := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))

.PHONY: all module check check-debug demo bench shell lint series fuzz clean

all: module

module:
	@if [ -z "$(KDIR)" ]; then \
		bash $(ROOT)/scripts/deps.sh && \
		kdir=$$(bash $(ROOT)/scripts/build-kernel.sh) && \
		$(MAKE) -C $$kdir M=$(ROOT) modules; \
	else \
		$(MAKE) -C $(KDIR) M=$(ROOT) modules; \
	fi

check:
	@bash $(ROOT)/scripts/check.sh check

check-debug:
	@bash $(ROOT)/scripts/check.sh check-debug

demo:
	@bash $(ROOT)/scripts/check.sh demo

bench:
	@bash $(ROOT)/scripts/check.sh bench

shell:
	@bash $(ROOT)/scripts/check.sh shell

fuzz:
	@bash $(ROOT)/scripts/fuzz.sh

series:
	@bash $(ROOT)/scripts/deps.sh
	@bash $(ROOT)/scripts/make-series.sh

lint:
	@bash $(ROOT)/scripts/deps.sh
	@kdir=$$(bash $(ROOT)/scripts/build-kernel.sh) && bash $(ROOT)/scripts/lint.sh $$kdir

clean:
	@kdir=$${NVME_VFIO_CACHE:-$${XDG_CACHE_HOME:-$$HOME/.cache}/nvme-vfio-pci}/linux/build; \
	if [ -d "$$kdir" ]; then $(MAKE) -C $$kdir M=$(ROOT) clean; fi
