/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * nvme-vfio-pci: vfio-pci variant driver for NVMe SR-IOV virtual functions.
 * Private definitions shared by the driver's files.
 */
#ifndef NVME_VFIO_PCI_H
#define NVME_VFIO_PCI_H

#include <linux/types.h>
#include <linux/vfio_pci_core.h>

/**
 * struct nvmevf_pci_core_device - one NVMe VF bound to the driver
 * @core_device: the vfio-pci core device, first member
 */
struct nvmevf_pci_core_device {
	struct vfio_pci_core_device core_device;
};

int nvmevf_sec_ctrl_find_scid(const void *buf, size_t len, u16 vfn, u16 *scid);

#endif /* NVME_VFIO_PCI_H */
