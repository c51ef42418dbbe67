// SPDX-License-Identifier: GPL-2.0-only
/*
 * KUnit tests for the nvme-vfio-pci command encoders and parsers.
 */
#include <kunit/test.h>
#include <linux/nvme-lm.h>

#include "nvme-vfio-pci.h"

static struct nvme_lm_sec_ctrl_list *sec_list_alloc(struct kunit *test)
{
	struct nvme_lm_sec_ctrl_list *l;

	l = kunit_kzalloc(test, sizeof(*l), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, l);
	return l;
}

static void sec_list_add(struct nvme_lm_sec_ctrl_list *l, u16 scid, u16 vfn)
{
	struct nvme_lm_sec_ctrl_entry *e = &l->entries[l->numid++];

	e->scid = cpu_to_le16(scid);
	e->pcid = cpu_to_le16(0);
	e->vfn = cpu_to_le16(vfn);
}

static void sec_ctrl_find_scid_test(struct kunit *test)
{
	struct nvme_lm_sec_ctrl_list *l = sec_list_alloc(test);
	u16 scid = 0;

	/* SCIDs are not VFNs: make them differ */
	sec_list_add(l, 0x11, 1);
	sec_list_add(l, 0x12, 2);
	sec_list_add(l, 0x2a, 3);

	KUNIT_EXPECT_EQ(test, nvmevf_sec_ctrl_find_scid(l, sizeof(*l), 2, &scid), 0);
	KUNIT_EXPECT_EQ(test, scid, 0x12);
	KUNIT_EXPECT_EQ(test, nvmevf_sec_ctrl_find_scid(l, sizeof(*l), 3, &scid), 0);
	KUNIT_EXPECT_EQ(test, scid, 0x2a);
	KUNIT_EXPECT_EQ(test, nvmevf_sec_ctrl_find_scid(l, sizeof(*l), 4, &scid), -ENOENT);
	KUNIT_EXPECT_EQ(test, nvmevf_sec_ctrl_find_scid(l, sizeof(*l), 0, &scid), -EINVAL);
}

static void sec_ctrl_find_scid_truncated_test(struct kunit *test)
{
	struct nvme_lm_sec_ctrl_list *l = sec_list_alloc(test);
	size_t hdr = offsetof(struct nvme_lm_sec_ctrl_list, entries);
	u16 scid = 0;

	sec_list_add(l, 5, 1);
	sec_list_add(l, 6, 2);
	/* the device claims more entries than the buffer holds */
	l->numid = 255;

	/* only the first entry is inside the buffer */
	KUNIT_EXPECT_EQ(test, nvmevf_sec_ctrl_find_scid(l, hdr + 32, 1, &scid), 0);
	KUNIT_EXPECT_EQ(test, scid, 5);
	KUNIT_EXPECT_EQ(test, nvmevf_sec_ctrl_find_scid(l, hdr + 63, 2, &scid), -ENOENT);
	KUNIT_EXPECT_EQ(test, nvmevf_sec_ctrl_find_scid(l, hdr + 64, 2, &scid), 0);
	KUNIT_EXPECT_EQ(test, scid, 6);
	KUNIT_EXPECT_EQ(test, nvmevf_sec_ctrl_find_scid(l, hdr - 1, 1, &scid), -EINVAL);
	/* a full-size buffer with NUMID 255 stops at 127 entries */
	KUNIT_EXPECT_EQ(test, nvmevf_sec_ctrl_find_scid(l, sizeof(*l), 0xffff, &scid), -ENOENT);
}

static struct kunit_case nvmevf_cmds_test_cases[] = {
	KUNIT_CASE(sec_ctrl_find_scid_test),
	KUNIT_CASE(sec_ctrl_find_scid_truncated_test),
	{}
};

static struct kunit_suite nvmevf_cmds_test_suite = {
	.name = "nvme-vfio-pci-cmds",
	.test_cases = nvmevf_cmds_test_cases,
};

kunit_test_suite(nvmevf_cmds_test_suite);
