// SPDX-License-Identifier: GPL-2.0-only
/*
 * Live KUnit tests of nvme-pci's live migration entry point, run against
 * the devices of the machine when the module is loaded (the rig loads it
 * in its guest).  They need an NVMe PF bound to nvme with a VF, and a VF
 * of an NVMe PF that is not bound to nvme; a missing device is a failure.
 */
#include <kunit/test.h>
#include <linux/nvme.h>
#include <linux/nvme-lm.h>
#include <linux/pci.h>
#include <linux/slab.h>
#include <linux/unaligned.h>

/* The first NVMe VF whose PF is (or is not) bound to nvme; a reference. */
static struct pci_dev *find_vf(bool pf_bound_to_nvme)
{
	struct pci_dev *pdev = NULL;

	while ((pdev = pci_get_class(PCI_CLASS_STORAGE_EXPRESS, pdev))) {
		struct device_driver *drv;

		if (!pdev->is_virtfn)
			continue;
		drv = READ_ONCE(pci_physfn(pdev)->dev.driver);
		if (pf_bound_to_nvme == (drv && !strcmp(drv->name, "nvme")))
			return pdev;
	}
	return NULL;
}

static struct pci_dev *get_vf(struct kunit *test, bool pf_bound_to_nvme)
{
	struct pci_dev *vf = find_vf(pf_bound_to_nvme);

	KUNIT_ASSERT_NOT_NULL_MSG(test, vf, "no NVMe VF whose PF is %sbound to nvme",
				  pf_bound_to_nvme ? "" : "not ");
	return vf;
}

static void *get_buf(struct kunit *test)
{
	void *buf = kunit_kzalloc(test, 4096, GFP_KERNEL);

	KUNIT_ASSERT_NOT_NULL(test, buf);
	return buf;
}

static void identify(struct nvme_command *c, u8 cns)
{
	memset(c, 0, sizeof(*c));
	c->identify.opcode = nvme_admin_identify;
	c->identify.cns = cns;
}

static void export_accepts_migration_identify_test(struct kunit *test)
{
	struct pci_dev *vf = get_vf(test, true);
	struct nvme_lm_pf_info info = {};
	struct nvme_command c;
	u8 *buf = get_buf(test);
	int ret;

	KUNIT_EXPECT_EQ(test, nvme_pci_vf_pf_info(vf, &info), 0);
	KUNIT_EXPECT_GE(test, info.max_transfer, 4096);

	identify(&c, NVME_ID_CNS_CTRL);
	KUNIT_EXPECT_EQ(test, nvme_pci_vf_admin_cmd(vf, &c, buf, 4096, NULL, NULL), 0);
	/* the data is the PF's own Identify Controller */
	KUNIT_EXPECT_EQ(test, get_unaligned_le16(buf + 78), info.cntlid);

	identify(&c, NVME_ID_CNS_SCNDRY_CTRL_LIST);
	ret = nvme_pci_vf_admin_cmd(vf, &c, buf, 4096, NULL, NULL);
	KUNIT_EXPECT_EQ(test, ret, 0);
	KUNIT_EXPECT_GE(test, buf[0], 1);

	identify(&c, NVME_LM_ID_CNS_PRIMARY_CTRL_CAP);
	KUNIT_EXPECT_EQ(test, nvme_pci_vf_admin_cmd(vf, &c, buf, 4096, NULL, NULL), 0);

	/* namespaces of the subsystem: NSID 1 exists, attached to the VFs */
	identify(&c, NVME_ID_CNS_NS_PRESENT_LIST);
	KUNIT_EXPECT_EQ(test, nvme_pci_vf_admin_cmd(vf, &c, buf, 4096, NULL, NULL), 0);
	KUNIT_EXPECT_EQ(test, get_unaligned_le32(buf), 1);
	identify(&c, NVME_ID_CNS_NS_PRESENT);
	c.identify.nsid = cpu_to_le32(1);
	KUNIT_EXPECT_EQ(test, nvme_pci_vf_admin_cmd(vf, &c, buf, 4096, NULL, NULL), 0);
	KUNIT_EXPECT_NE(test, get_unaligned_le64(buf), 0);	/* NSZE */
	identify(&c, NVME_ID_CNS_CTRL_NS_LIST);
	c.identify.nsid = cpu_to_le32(1);
	KUNIT_EXPECT_EQ(test, nvme_pci_vf_admin_cmd(vf, &c, buf, 4096, NULL, NULL), 0);
	KUNIT_EXPECT_GE(test, get_unaligned_le16(buf), 1);	/* controllers */
	pci_dev_put(vf);
}

static void export_refuses_other_commands_test(struct kunit *test)
{
	struct pci_dev *vf = get_vf(test, true);
	u8 *buf = get_buf(test);
	struct nvme_command c;

	/* Identify of anything but the PF's controller data structures */
	identify(&c, NVME_ID_CNS_NS);
	c.identify.nsid = cpu_to_le32(1);
	KUNIT_EXPECT_EQ(test, nvme_pci_vf_admin_cmd(vf, &c, buf, 4096, NULL, NULL), -EPERM);
	identify(&c, NVME_ID_CNS_CTRL);
	c.identify.nsid = cpu_to_le32(1);
	KUNIT_EXPECT_EQ(test, nvme_pci_vf_admin_cmd(vf, &c, buf, 4096, NULL, NULL), -EPERM);
	identify(&c, NVME_ID_CNS_CTRL);
	c.identify.csi = NVME_CSI_ZNS;
	KUNIT_EXPECT_EQ(test, nvme_pci_vf_admin_cmd(vf, &c, buf, 4096, NULL, NULL), -EPERM);
	identify(&c, NVME_ID_CNS_NS_PRESENT);
	c.identify.nsid = cpu_to_le32(1);
	c.identify.csi = NVME_CSI_ZNS;
	KUNIT_EXPECT_EQ(test, nvme_pci_vf_admin_cmd(vf, &c, buf, 4096, NULL, NULL), -EPERM);
	identify(&c, NVME_ID_CNS_CS_NS);
	c.identify.nsid = cpu_to_le32(1);
	KUNIT_EXPECT_EQ(test, nvme_pci_vf_admin_cmd(vf, &c, buf, 4096, NULL, NULL), -EPERM);
	identify(&c, NVME_ID_CNS_NS_ACTIVE_LIST);
	KUNIT_EXPECT_EQ(test, nvme_pci_vf_admin_cmd(vf, &c, buf, 4096, NULL, NULL), -EPERM);
	identify(&c, NVME_ID_CNS_CTRL_LIST);
	KUNIT_EXPECT_EQ(test, nvme_pci_vf_admin_cmd(vf, &c, buf, 4096, NULL, NULL), -EPERM);

	/* other admin commands */
	memset(&c, 0, sizeof(c));
	c.common.opcode = nvme_admin_get_log_page;
	KUNIT_EXPECT_EQ(test, nvme_pci_vf_admin_cmd(vf, &c, buf, 512, NULL, NULL), -EPERM);
	c.common.opcode = nvme_admin_set_features;
	KUNIT_EXPECT_EQ(test, nvme_pci_vf_admin_cmd(vf, &c, NULL, 0, NULL, NULL), -EPERM);
	c.common.opcode = nvme_admin_virtual_mgmt;
	KUNIT_EXPECT_EQ(test, nvme_pci_vf_admin_cmd(vf, &c, NULL, 0, NULL, NULL), -EPERM);
	c.common.opcode = nvme_admin_format_nvm;
	KUNIT_EXPECT_EQ(test, nvme_pci_vf_admin_cmd(vf, &c, NULL, 0, NULL, NULL), -EPERM);
	c.common.opcode = nvme_admin_delete_sq;
	KUNIT_EXPECT_EQ(test, nvme_pci_vf_admin_cmd(vf, &c, NULL, 0, NULL, NULL), -EPERM);
	c.common.opcode = nvme_admin_lm_cdq;
	KUNIT_EXPECT_EQ(test, nvme_pci_vf_admin_cmd(vf, &c, NULL, 0, NULL, NULL), -EPERM);

	/* a migration command with caller-set flags (fused, SGL) */
	memset(&c, 0, sizeof(c));
	c.common.opcode = nvme_admin_lm_migration_recv;
	c.common.flags = NVME_CMD_FUSE_FIRST;
	KUNIT_EXPECT_EQ(test, nvme_pci_vf_admin_cmd(vf, &c, buf, 48, NULL, NULL), -EPERM);
	c.common.flags = NVME_CMD_SGL_METABUF;
	KUNIT_EXPECT_EQ(test, nvme_pci_vf_admin_cmd(vf, &c, buf, 48, NULL, NULL), -EPERM);
	pci_dev_put(vf);
}

static void export_refuses_bad_buffers_test(struct kunit *test)
{
	struct pci_dev *vf = get_vf(test, true);
	struct nvme_lm_pf_info info = {};
	struct nvme_command c;
	u8 *buf;

	KUNIT_ASSERT_EQ(test, nvme_pci_vf_pf_info(vf, &info), 0);
	identify(&c, NVME_ID_CNS_CTRL);
	KUNIT_EXPECT_EQ(test, nvme_pci_vf_admin_cmd(vf, &c, NULL, 4096, NULL, NULL), -EINVAL);
	buf = get_buf(test);
	KUNIT_EXPECT_EQ(test, nvme_pci_vf_admin_cmd(vf, &c, buf, 0, NULL, NULL), -EINVAL);
	KUNIT_EXPECT_EQ(test, nvme_pci_vf_admin_cmd(vf, &c, buf, info.max_transfer + 4,
						    NULL, NULL), -EINVAL);
	pci_dev_put(vf);
}

static void export_refuses_non_vf_test(struct kunit *test)
{
	struct pci_dev *vf = get_vf(test, true);
	struct pci_dev *pf = pci_physfn(vf);
	struct nvme_lm_pf_info info;
	struct nvme_command c;
	u8 *buf = get_buf(test);

	identify(&c, NVME_ID_CNS_CTRL);
	KUNIT_EXPECT_EQ(test, nvme_pci_vf_admin_cmd(pf, &c, buf, 4096, NULL, NULL), -ENODEV);
	KUNIT_EXPECT_EQ(test, nvme_pci_vf_pf_info(pf, &info), -ENODEV);
	/* the root port above the PF */
	if (pf->bus->self)
		KUNIT_EXPECT_EQ(test, nvme_pci_vf_pf_info(pf->bus->self, &info),
				-ENODEV);
	pci_dev_put(vf);
}

static void export_refuses_vf_of_other_pf_test(struct kunit *test)
{
	struct pci_dev *vf = get_vf(test, false);
	struct nvme_lm_pf_info info;
	struct nvme_command c;
	u8 *buf = get_buf(test);

	identify(&c, NVME_ID_CNS_CTRL);
	KUNIT_EXPECT_EQ(test, nvme_pci_vf_admin_cmd(vf, &c, buf, 4096, NULL, NULL), -ENODEV);
	KUNIT_EXPECT_EQ(test, nvme_pci_vf_pf_info(vf, &info), -ENODEV);
	pci_dev_put(vf);
}

static struct kunit_case nvmevf_pf_live_test_cases[] = {
	KUNIT_CASE(export_accepts_migration_identify_test),
	KUNIT_CASE(export_refuses_other_commands_test),
	KUNIT_CASE(export_refuses_bad_buffers_test),
	KUNIT_CASE(export_refuses_non_vf_test),
	KUNIT_CASE(export_refuses_vf_of_other_pf_test),
	{}
};

static struct kunit_suite nvmevf_pf_live_test_suite = {
	.name = "nvme-pci-lm-live",
	.test_cases = nvmevf_pf_live_test_cases,
};

kunit_test_suite(nvmevf_pf_live_test_suite);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Live tests of nvme-pci's live migration entry point");
