// SPDX-License-Identifier: GPL-2.0-only
/*
 * Live KUnit tests of nvme-pci's VF live migration operations, run against
 * the devices of the machine when the module is loaded (the rig loads it
 * in its guest, with no migration running).  They need an NVMe PF bound to
 * nvme with a VF, and a VF of an NVMe PF that is not bound to nvme; a
 * missing device is a failure.  They call the operations on a VF whose
 * driver is not this module: the rig does not remove PFs meanwhile.
 */
#include <kunit/test.h>
#include <linux/nvme.h>
#include <linux/nvme-pci.h>
#include <linux/pci.h>
#include <linux/slab.h>

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

static void vf_info_test(struct kunit *test)
{
	struct pci_dev *vf = get_vf(test, true);
	struct nvme_pci_vf_info info = {};

	KUNIT_EXPECT_EQ(test, nvme_pci_vf_info(vf, &info), 0);
	KUNIT_EXPECT_GE(test, info.max_transfer, 4096);
	KUNIT_EXPECT_NE(test, info.scid, info.pf_cntlid);
	pci_dev_put(vf);
}

static void identify_ops_test(struct kunit *test)
{
	struct pci_dev *vf = get_vf(test, true);
	struct nvme_id_ctrl *id = get_buf(test);
	u8 *descs = get_buf(test);
	__le32 *list = get_buf(test);
	u8 *buf = get_buf(test);
	u32 nsid;
	int ret;

	KUNIT_EXPECT_EQ(test, nvme_pci_vf_id_ctrl(vf, id), 0);
	KUNIT_EXPECT_TRUE(test, le16_to_cpu(id->oacs) & NVME_CTRL_OACS_HMLMS);
	KUNIT_EXPECT_EQ(test, nvme_pci_vf_state_formats(vf, buf), 0);
	KUNIT_EXPECT_GE(test, buf[0], 1);	/* NV */
	KUNIT_EXPECT_EQ(test, nvme_pci_vf_ns_list(vf, 0, list), 0);
	nsid = le32_to_cpu(list[0]);
	KUNIT_ASSERT_NE_MSG(test, nsid, 0, "the rig's subsystem has namespaces");
	/* attached to the VF or not: data, or -ENOENT, never an error */
	ret = nvme_pci_vf_ns_info(vf, nsid, (struct nvme_id_ns *)buf, descs);
	KUNIT_EXPECT_TRUE_MSG(test, ret == 0 || ret == -ENOENT, "ret %d", ret);
	pci_dev_put(vf);
}

/* The operations reach the VF's own controller, which is running. */
static void ops_reach_own_controller_test(struct kunit *test)
{
	struct pci_dev *vf = get_vf(test, true);
	struct nvme_lm_state_hdr *hdr = get_buf(test);
	bool suspended = true;
	int ret;

	/* Resume of a running controller: the PF answers 3Ah */
	ret = nvme_pci_vf_resume(vf);
	KUNIT_EXPECT_EQ(test, ret & NVME_SCT_SC_MASK, NVME_SC_CTRL_NOT_SUSPENDED);
	/* the header of a running controller's state, not a snapshot */
	KUNIT_EXPECT_EQ(test, nvme_pci_vf_get_state(vf, 1, 0, 0, hdr,
						    sizeof(*hdr), &suspended), 0);
	KUNIT_EXPECT_FALSE(test, suspended);
	KUNIT_EXPECT_EQ(test, le16_to_cpu(hdr->ver), 0);
	/* Suspend Notification is a no-op for the controller */
	KUNIT_EXPECT_EQ(test, nvme_pci_vf_suspend(vf, NVME_LM_STYPE_NOTIFY), 0);
	pci_dev_put(vf);
}

/* Arguments no command can carry are refused before anything is sent. */
static void ops_refuse_bad_arguments_test(struct kunit *test)
{
	struct pci_dev *vf = get_vf(test, true);
	struct nvme_lm_range r = { .start = 0x100000, .len = 0x10000 };
	struct nvme_lm_range odd = { .start = 0x100800, .len = 0x1000 };
	struct nvme_pci_vf_info info = {};
	u8 *buf = get_buf(test);
	u8 *big;

	KUNIT_ASSERT_EQ(test, nvme_pci_vf_info(vf, &info), 0);
	big = kunit_kzalloc(test, info.max_transfer + 4, GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, big);

	/* data transfer commands without a buffer */
	KUNIT_EXPECT_EQ(test, nvme_pci_vf_get_state(vf, 1, 0, 0, NULL, 48, NULL), -EINVAL);
	KUNIT_EXPECT_EQ(test, nvme_pci_vf_set_state(vf, 1, 0, NVME_LM_SEQIND_ONLY,
						    0, NULL, 48), -EINVAL);
	KUNIT_EXPECT_EQ(test, nvme_pci_vf_track_mem_recv(vf, NULL, 4096), -EINVAL);
	KUNIT_EXPECT_EQ(test, nvme_pci_vf_track_mem_start(vf, 0, NULL, 1, NULL), -EINVAL);
	KUNIT_EXPECT_EQ(test, nvme_pci_vf_id_ctrl(vf, NULL), -EINVAL);
	KUNIT_EXPECT_EQ(test, nvme_pci_vf_state_formats(vf, NULL), -EINVAL);
	KUNIT_EXPECT_EQ(test, nvme_pci_vf_ns_list(vf, 0, NULL), -EINVAL);
	KUNIT_EXPECT_EQ(test, nvme_pci_vf_ns_info(vf, 1, NULL, buf), -EINVAL);
	/* lengths and offsets */
	KUNIT_EXPECT_EQ(test, nvme_pci_vf_get_state(vf, 1, 0, 0, buf, 0, NULL), -EINVAL);
	KUNIT_EXPECT_EQ(test, nvme_pci_vf_get_state(vf, 1, 0, 0, buf, 6, NULL), -EINVAL);
	KUNIT_EXPECT_EQ(test, nvme_pci_vf_get_state(vf, 1, 0, 2, buf, 48, NULL), -EINVAL);
	KUNIT_EXPECT_EQ(test, nvme_pci_vf_get_state(vf, 1, 0, 0, big,
						    info.max_transfer + 4, NULL), -EINVAL);
	KUNIT_EXPECT_EQ(test, nvme_pci_vf_track_mem_recv(vf, buf, 16), -EINVAL);
	/* values outside the commands' definitions */
	KUNIT_EXPECT_EQ(test, nvme_pci_vf_suspend(vf, 2), -EINVAL);
	KUNIT_EXPECT_EQ(test, nvme_pci_vf_set_state(vf, 1, 0, 4, 0, buf, 48), -EINVAL);
	KUNIT_EXPECT_EQ(test, nvme_pci_vf_track_mem_start(vf, 52, &r, 1, NULL), -EINVAL);
	KUNIT_EXPECT_EQ(test, nvme_pci_vf_track_mem_start(vf, 0, &r, 0, NULL), -EINVAL);
	KUNIT_EXPECT_EQ(test, nvme_pci_vf_track_mem_start(vf, 0, &odd, 1, NULL), -EINVAL);
	KUNIT_EXPECT_EQ(test, nvme_pci_vf_ns_info(vf, 0, (void *)buf, buf), -EINVAL);
	KUNIT_EXPECT_EQ(test, nvme_pci_vf_ns_info(vf, NVME_NSID_ALL, (void *)buf, buf),
			-EINVAL);
	pci_dev_put(vf);
}

static void ops_refuse_non_vf_test(struct kunit *test)
{
	struct pci_dev *vf = get_vf(test, true);
	struct pci_dev *pf = pci_physfn(vf);
	struct nvme_pci_vf_info info;
	u8 *buf = get_buf(test);

	KUNIT_EXPECT_EQ(test, nvme_pci_vf_info(pf, &info), -ENODEV);
	KUNIT_EXPECT_EQ(test, nvme_pci_vf_id_ctrl(pf, (void *)buf), -ENODEV);
	KUNIT_EXPECT_EQ(test, nvme_pci_vf_suspend(pf, NVME_LM_STYPE_SUSPEND), -ENODEV);
	KUNIT_EXPECT_EQ(test, nvme_pci_vf_resume(pf), -ENODEV);
	/* the root port above the PF */
	if (pf->bus->self)
		KUNIT_EXPECT_EQ(test, nvme_pci_vf_info(pf->bus->self, &info),
				-ENODEV);
	pci_dev_put(vf);
}

static void ops_refuse_vf_of_other_pf_test(struct kunit *test)
{
	struct pci_dev *vf = get_vf(test, false);
	struct nvme_pci_vf_info info;
	u8 *buf = get_buf(test);

	KUNIT_EXPECT_EQ(test, nvme_pci_vf_info(vf, &info), -ENODEV);
	KUNIT_EXPECT_EQ(test, nvme_pci_vf_state_formats(vf, buf), -ENODEV);
	KUNIT_EXPECT_EQ(test, nvme_pci_vf_suspend(vf, NVME_LM_STYPE_SUSPEND), -ENODEV);
	pci_dev_put(vf);
}

static struct kunit_case nvmevf_pf_live_test_cases[] = {
	KUNIT_CASE(vf_info_test),
	KUNIT_CASE(identify_ops_test),
	KUNIT_CASE(ops_reach_own_controller_test),
	KUNIT_CASE(ops_refuse_bad_arguments_test),
	KUNIT_CASE(ops_refuse_non_vf_test),
	KUNIT_CASE(ops_refuse_vf_of_other_pf_test),
	{}
};

static struct kunit_suite nvmevf_pf_live_test_suite = {
	.name = "nvme-pci-lm-live",
	.test_cases = nvmevf_pf_live_test_cases,
};

kunit_test_suite(nvmevf_pf_live_test_suite);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Live tests of nvme-pci's VF live migration operations");
