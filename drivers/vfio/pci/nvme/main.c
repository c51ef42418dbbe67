// SPDX-License-Identifier: GPL-2.0-only
/*
 * nvme-vfio-pci: vfio-pci variant driver for NVMe SR-IOV virtual functions.
 *
 * The driver binds NVMe VFs (through driver_override, as every vfio-pci
 * variant driver) and otherwise works as vfio-pci does: a PF bound to it
 * has vfio-pci's SR-IOV configuration too.  At probe it resolves the VF's
 * controller ID through the PF (nvme-pci's live migration entry point),
 * follows the PF's resets and, when the PF is a TP4159 Migration Management
 * Controller, offers VFIO live migration (lm.c).
 */
#include <linux/debugfs.h>
#include <linux/module.h>
#include <linux/pci.h>
#include <linux/vfio.h>
#include <linux/vfio_pci_core.h>

#include "nvme-vfio-pci.h"

static int nvmevf_pci_init_dev(struct vfio_device *core_vdev)
{
	int ret;

	ret = vfio_pci_core_init_dev(core_vdev);
	if (ret)
		return ret;
	nvmevf_lm_init_dev(nvmevf_of(core_vdev));
	return 0;
}

static void nvmevf_pci_release_dev(struct vfio_device *core_vdev)
{
	nvmevf_lm_release_dev(nvmevf_of(core_vdev));
	vfio_pci_core_release_dev(core_vdev);
}

static int nvmevf_pci_open_device(struct vfio_device *core_vdev)
{
	struct nvmevf_pci_core_device *nvmevf = nvmevf_of(core_vdev);
	int ret;

	ret = vfio_pci_core_enable(&nvmevf->core_device);
	if (ret)
		return ret;
	nvmevf_lm_open(nvmevf);
	vfio_pci_core_finish_enable(&nvmevf->core_device);
	return 0;
}

static void nvmevf_pci_close_device(struct vfio_device *core_vdev)
{
	nvmevf_lm_close(nvmevf_of(core_vdev));
	vfio_pci_core_close_device(core_vdev);
}

static const struct vfio_device_ops nvmevf_pci_ops = {
	.name = "nvme-vfio-pci",
	.init = nvmevf_pci_init_dev,
	.release = nvmevf_pci_release_dev,
	.open_device = nvmevf_pci_open_device,
	.close_device = nvmevf_pci_close_device,
	.ioctl = vfio_pci_core_ioctl,
#ifndef NVMEVF_OOT_NO_REGION_INFO_CAPS
	.get_region_info_caps = vfio_pci_ioctl_get_region_info,
#endif
	.device_feature = vfio_pci_core_ioctl_feature,
	.read = vfio_pci_core_read,
	.write = vfio_pci_core_write,
	.mmap = vfio_pci_core_mmap,
	.request = vfio_pci_core_request,
	.match = vfio_pci_core_match,
#ifndef NVMEVF_OOT_NO_MATCH_TOKEN_UUID
	.match_token_uuid = vfio_pci_core_match_token_uuid,
#endif
	.bind_iommufd = vfio_iommufd_physical_bind,
	.unbind_iommufd = vfio_iommufd_physical_unbind,
	.attach_ioas = vfio_iommufd_physical_attach_ioas,
	.detach_ioas = vfio_iommufd_physical_detach_ioas,
};

/*
 * PF controller reset, or the end of a VF command left to the controller.
 * Called in atomic context from the PF's reset worker or a completion (an
 * atomic notifier chain): must not block, issue PF commands nor wait for
 * them.
 */
static int nvmevf_pf_event(struct notifier_block *nb, unsigned long event,
			   void *data)
{
	struct nvmevf_pci_core_device *nvmevf =
		container_of(nb, struct nvmevf_pci_core_device, pf_nb);

	if (data != nvmevf->pf || event >= ARRAY_SIZE(nvmevf->pf_events))
		return NOTIFY_DONE;
	atomic_inc(&nvmevf->pf_events[event]);
	pci_dbg(nvmevf->core_device.pdev, "PF event %lu\n", event);
	nvmevf_lm_pf_event(nvmevf, event);
	return NOTIFY_OK;
}

#ifdef CONFIG_VFIO_DEBUGFS
static int nvmevf_scid_show(struct seq_file *m, void *unused)
{
	struct nvmevf_pci_core_device *nvmevf = m->private;

	if (nvmevf->has_scid)
		seq_printf(m, "%u\n", nvmevf->scid);
	else
		seq_puts(m, "none\n");
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(nvmevf_scid);

/* <debugfs>/vfio/<VF BDF>/nvme/: what the driver knows of its PF */
static void nvmevf_debugfs_init(struct nvmevf_pci_core_device *nvmevf)
{
	struct dentry *root = nvmevf->core_device.vdev.debug_root, *dir;

	if (IS_ERR_OR_NULL(root))
		return;
	dir = debugfs_create_dir("nvme", root);
	debugfs_create_file("scid", 0400, dir, nvmevf, &nvmevf_scid_fops);
	debugfs_create_atomic_t("pf_resetting", 0400, dir,
				&nvmevf->pf_events[NVME_PCI_PF_RESETTING]);
	debugfs_create_atomic_t("pf_live", 0400, dir,
				&nvmevf->pf_events[NVME_PCI_PF_LIVE]);
	debugfs_create_atomic_t("pf_vf_cmd_ended", 0400, dir,
				&nvmevf->pf_events[NVME_PCI_PF_VF_CMD_ENDED]);
}
#else
static void nvmevf_debugfs_init(struct nvmevf_pci_core_device *nvmevf)
{
}
#endif

static int nvmevf_pci_probe(struct pci_dev *pdev,
			    const struct pci_device_id *id)
{
	struct nvmevf_pci_core_device *nvmevf;
	int ret;

	nvmevf = vfio_alloc_device(nvmevf_pci_core_device, core_device.vdev,
				   &pdev->dev, &nvmevf_pci_ops);
	if (IS_ERR(nvmevf))
		return PTR_ERR(nvmevf);

	/*
	 * The id table matches every NVMe function, so that libvirt picks this
	 * driver for VFs: anything that is not a VF works as with vfio-pci.
	 */
	if (pdev->is_virtfn) {
		struct nvme_pci_vf_info vfi;

		nvmevf->pf = pci_physfn(pdev);
		ret = nvme_pci_vf_info(pdev, &vfi);
		nvmevf->has_scid = !ret;
		if (ret) {
			pci_info(pdev, "PF %s lists no controller for this VF (%d)\n",
				 pci_name(nvmevf->pf), ret);
		} else {
			nvmevf->scid = vfi.scid;
			nvmevf->max_transfer = vfi.max_transfer;
		}

		/* before registration: mig_ops are fixed from then on */
		nvmevf_lm_probe(nvmevf);

		nvmevf->pf_nb.notifier_call = nvmevf_pf_event;
		nvmevf->has_pf_nb =
			!nvme_pci_vf_register_notifier(pdev, &nvmevf->pf_nb);
	} else {
		pci_info(pdev, "not an SR-IOV VF: no live migration\n");
	}

	dev_set_drvdata(&pdev->dev, &nvmevf->core_device);
	ret = vfio_pci_core_register_device(&nvmevf->core_device);
	if (ret) {
		if (nvmevf->has_pf_nb)
			nvme_pci_vf_unregister_notifier(pdev, &nvmevf->pf_nb);
		nvmevf_lm_remove(nvmevf);
		vfio_put_device(&nvmevf->core_device.vdev);
		return ret;
	}
	nvmevf_debugfs_init(nvmevf);
	nvmevf_lm_debugfs_init(nvmevf);
	return 0;
}

static void nvmevf_pci_remove(struct pci_dev *pdev)
{
	struct vfio_pci_core_device *core_device = dev_get_drvdata(&pdev->dev);
	struct nvmevf_pci_core_device *nvmevf = nvmevf_of(&core_device->vdev);

	vfio_pci_core_unregister_device(core_device);
	if (nvmevf->has_pf_nb)
		nvme_pci_vf_unregister_notifier(pdev, &nvmevf->pf_nb);
	nvmevf_lm_remove(nvmevf);
	vfio_put_device(&core_device->vdev);
}

/* VFIO_DEVICE_RESET, or any other reset of the VF: no migration file */
static void nvmevf_pci_reset_prepare(struct pci_dev *pdev)
{
	struct vfio_pci_core_device *core_device = dev_get_drvdata(&pdev->dev);

	if (core_device)
		nvmevf_lm_reset_prepare(nvmevf_of(&core_device->vdev));
}

/* and after it: back to RUNNING */
static void nvmevf_pci_reset_done(struct pci_dev *pdev)
{
	struct vfio_pci_core_device *core_device = dev_get_drvdata(&pdev->dev);

	if (core_device)
		nvmevf_lm_reset_done(nvmevf_of(&core_device->vdev));
}

static bool enable_sriov;
module_param(enable_sriov, bool, 0644);
MODULE_PARM_DESC(enable_sriov, "Enable support for SR-IOV configuration of a PF bound to this driver, as vfio-pci's parameter of that name does (default: N). Enabling SR-IOV on a PF typically requires support of the userspace PF driver, enabling VFs without such support may result in non-functional VFs or PF.");

/* A PF bound to this driver (the id table matches it) works as with vfio-pci. */
static int nvmevf_pci_sriov_configure(struct pci_dev *pdev, int nr_virtfn)
{
	struct vfio_pci_core_device *core_device = dev_get_drvdata(&pdev->dev);

	if (!enable_sriov)
		return -ENOENT;
	return vfio_pci_core_sriov_configure(core_device, nr_virtfn);
}

static const struct pci_error_handlers nvmevf_pci_err_handlers = {
	.reset_prepare = nvmevf_pci_reset_prepare,
	.reset_done = nvmevf_pci_reset_done,
	.error_detected = vfio_pci_core_aer_err_detected,
};

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
	.sriov_configure = nvmevf_pci_sriov_configure,
	.err_handler = &nvmevf_pci_err_handlers,
	.driver_managed_dma = true,
};
module_pci_driver(nvmevf_pci_driver);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("vfio-pci variant driver for NVMe SR-IOV virtual functions");
