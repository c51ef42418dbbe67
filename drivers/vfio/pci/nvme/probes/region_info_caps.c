// SPDX-License-Identifier: GPL-2.0-only
/* VFIO_DEVICE_GET_REGION_INFO is answered through this callback */
#include <linux/vfio_pci_core.h>

static const struct vfio_device_ops probe_ops __maybe_unused = {
	.get_region_info_caps = vfio_pci_ioctl_get_region_info,
};
