// SPDX-License-Identifier: GPL-2.0-only
/*
 * nvme-vfio-pci: vfio-pci variant driver for NVMe SR-IOV virtual functions.
 *
 * The driver binds NVMe VFs (through driver_override, as every vfio-pci
 * variant driver) and, for now, behaves exactly like vfio-pci.  Migration
 * support through the PF's Migration Management Controller builds on this.
 */
#include <linux/module.h>
#include <linux/pci.h>
#include <linux/vfio.h>
#include <linux/vfio_pci_core.h>

#include "nvme-vfio-pci.h"

static int nvmevf_pci_open_device(struct vfio_device *core_vdev)
{
	struct vfio_pci_core_device *vdev =
		container_of(core_vdev, struct vfio_pci_core_device, vdev);
	int ret;

	ret = vfio_pci_core_enable(vdev);
	if (ret)
		return ret;
	vfio_pci_core_finish_enable(vdev);
	return 0;
}

static const struct vfio_device_ops nvmevf_pci_ops = {
	.name = "nvme-vfio-pci",
	.init = vfio_pci_core_init_dev,
	.release = vfio_pci_core_release_dev,
	.open_device = nvmevf_pci_open_device,
	.close_device = vfio_pci_core_close_device,
	.ioctl = vfio_pci_core_ioctl,
	.device_feature = vfio_pci_core_ioctl_feature,
	.read = vfio_pci_core_read,
	.write = vfio_pci_core_write,
	.mmap = vfio_pci_core_mmap,
	.request = vfio_pci_core_request,
	.match = vfio_pci_core_match,
	.bind_iommufd = vfio_iommufd_physical_bind,
	.unbind_iommufd = vfio_iommufd_physical_unbind,
	.attach_ioas = vfio_iommufd_physical_attach_ioas,
	.detach_ioas = vfio_iommufd_physical_detach_ioas,
};

static int nvmevf_pci_probe(struct pci_dev *pdev,
			    const struct pci_device_id *id)
{
	struct nvmevf_pci_core_device *nvmevf;
	int ret;

	if (!pdev->is_virtfn) {
		pci_info(pdev, "not an SR-IOV VF; use vfio-pci for this function\n");
		return -ENODEV;
	}

	nvmevf = vfio_alloc_device(nvmevf_pci_core_device, core_device.vdev,
				   &pdev->dev, &nvmevf_pci_ops);
	if (IS_ERR(nvmevf))
		return PTR_ERR(nvmevf);

	dev_set_drvdata(&pdev->dev, &nvmevf->core_device);
	ret = vfio_pci_core_register_device(&nvmevf->core_device);
	if (ret) {
		vfio_put_device(&nvmevf->core_device.vdev);
		return ret;
	}
	return 0;
}

static void nvmevf_pci_remove(struct pci_dev *pdev)
{
	struct vfio_pci_core_device *core_device = dev_get_drvdata(&pdev->dev);

	vfio_pci_core_unregister_device(core_device);
	vfio_put_device(&core_device->vdev);
}

/*
 * Every NVMe function (class 01:08:02), bound only through driver_override:
 * the core's id table flag gives modules.alias "vfio_pci:" entries so that
 * management stacks (libvirt) pick this driver for NVMe VFs.
 */
static const struct pci_device_id nvmevf_pci_table[] = {
	{
		.vendor = PCI_ANY_ID,
		.device = PCI_ANY_ID,
		.subvendor = PCI_ANY_ID,
		.subdevice = PCI_ANY_ID,
		.class = PCI_CLASS_STORAGE_EXPRESS,
		.class_mask = 0xffffff,
		.override_only = PCI_ID_F_VFIO_DRIVER_OVERRIDE,
	},
	{}
};
MODULE_DEVICE_TABLE(pci, nvmevf_pci_table);

static struct pci_driver nvmevf_pci_driver = {
	.name = KBUILD_MODNAME,
	.id_table = nvmevf_pci_table,
	.probe = nvmevf_pci_probe,
	.remove = nvmevf_pci_remove,
	.err_handler = &vfio_pci_core_err_handlers,
	.driver_managed_dma = true,
};
module_pci_driver(nvmevf_pci_driver);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("vfio-pci variant driver for NVMe SR-IOV virtual functions");
