// SPDX-License-Identifier: GPL-2.0-only
/* Must compile against every kernel: it proves the probes can run. */
#include <linux/module.h>
#include <linux/vfio_pci_core.h>

static const struct vfio_device_ops probe_ops __maybe_unused = {
	.ioctl = vfio_pci_core_ioctl,
	.match = vfio_pci_core_match,
};
