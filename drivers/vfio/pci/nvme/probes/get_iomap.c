// SPDX-License-Identifier: GPL-2.0-only
/* the core maps the BARs when the device is enabled */
#include <linux/vfio_pci_core.h>

void __iomem *probe_bar0(struct vfio_pci_core_device *vdev);
void __iomem *probe_bar0(struct vfio_pci_core_device *vdev)
{
	return vfio_pci_core_get_iomap(vdev, 0);
}
