// SPDX-License-Identifier: GPL-2.0-only
/*
 * vfio-nvme VFIO API tests: what a variant driver gets wrong when it was
 * written for one kernel and built against another (the VFIO core moved
 * region info and the VF token check into vfio_device_ops callbacks).
 * They run unchanged on every kernel the rig runs.
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <linux/vfio.h>
#include <stdbool.h>

#include "kselftest_harness.h"
#include "lib/vnl.h"

#define DRIVER		"nvme_vfio_pci"
#define ARENA_IOVA	0x10000000ull
#define ARENA_SIZE	0x100000

/* open @bdf with @token (or none) and close it again: 0 or the errno */
static int try_open(const char *bdf, enum vnl_iommu_mode mode,
		    const uint8_t *token)
{
	struct vnl_dev d;
	int ret;

	ret = vnl_dev_open_token(&d, bdf, mode, token, ARENA_IOVA, ARENA_SIZE);
	if (!ret)
		vnl_dev_close(&d);
	return ret;
}

/*
 * A VF of a PF bound to vfio-pci, here bound to nvme-vfio-pci, opens only
 * with the VF token the PF's user set: through the group
 * ("BDF vf_token=UUID") and, where the kernel has it, through the iommufd
 * cdev (VFIO_DEVICE_BIND_FLAG_TOKEN).  A driver without match_token_uuid
 * on a kernel that calls it lets anyone in on the cdev, or oopses on the
 * group path.
 */
TEST(vf_token_required_for_vf_of_vfio_pf)
{
	static const uint8_t token[16] = {
		0x6e, 0x76, 0x6d, 0x65, 0x2d, 0x76, 0x66, 0x69,
		0x6f, 0x2d, 0x70, 0x63, 0x69, 0x2d, 0x6b, 0x74,
	};
	static const uint8_t wrong[16] = { 1, 2, 3, 4, 5, 6, 7, 8,
					   9, 10, 11, 12, 13, 14, 15, 16 };
	char vf[32], pfbdf[32];
	int vfn, ret;

	ASSERT_EQ(0, vnl_vf_of_vfio_pf(vf, sizeof(vf)))
		TH_LOG("no VF of an NVMe PF on vfio-pci (the rig's second PF)");
	ASSERT_EQ(0, vnl_pf_of_vf(vf, pfbdf, sizeof(pfbdf), &vfn))
		TH_LOG("%s", vnl_err);
	ASSERT_EQ(0, vnl_bind(vf, DRIVER)) TH_LOG("%s: %s", vf, vnl_err);

	/* the PF's user sets the token; it stays when the PF is closed */
	ASSERT_EQ(0, vnl_set_vf_token(pfbdf, token)) TH_LOG("%s", vnl_err);

	/* the group path: every kernel checks the token there */
	EXPECT_EQ(-EACCES, try_open(vf, VNL_CONTAINER, NULL)) TH_LOG("group, no token");
	EXPECT_EQ(-EACCES, try_open(vf, VNL_CONTAINER, wrong)) TH_LOG("group, wrong token");
	EXPECT_EQ(0, try_open(vf, VNL_CONTAINER, token)) TH_LOG("group: %s", vnl_err);

	/* the cdev: a kernel without VF tokens there refuses the flag */
	ret = try_open(vf, VNL_IOMMUFD, wrong);
	if (ret == -EINVAL) {
		TH_LOG("this kernel has no VF token on the cdev (EINVAL for the flag)");
		EXPECT_EQ(0, try_open(vf, VNL_IOMMUFD, NULL)) TH_LOG("cdev: %s", vnl_err);
	} else {
		EXPECT_EQ(-EACCES, ret) TH_LOG("cdev, wrong token: %d", ret);
		EXPECT_EQ(-EACCES, try_open(vf, VNL_IOMMUFD, NULL)) TH_LOG("cdev, no token");
		EXPECT_EQ(0, try_open(vf, VNL_IOMMUFD, token)) TH_LOG("cdev: %s", vnl_err);
	}

	/* back to vfio-pci, as the rig set it up */
	EXPECT_EQ(0, vnl_bind(vf, "vfio-pci"));
}

/* the size a BAR decodes, by sizing it through the VFIO config region */
static int bar_size(struct vnl_dev *d, int i, uint64_t *size, bool *upper)
{
	uint32_t orig, mask, hi_orig, hi_mask, ones = ~0u;
	unsigned int off = 0x10 + 4 * i;
	int ret;

	*upper = false;
	ret = vnl_cfg_read(d, off, &orig, 4);
	ret = ret ?: vnl_cfg_write(d, off, &ones, 4);
	ret = ret ?: vnl_cfg_read(d, off, &mask, 4);
	ret = ret ?: vnl_cfg_write(d, off, &orig, 4);
	if (ret)
		return ret;
	if (!mask) {
		*size = 0;
		return 0;
	}
	if (mask & 1) {		/* I/O */
		*size = (uint32_t)~(mask & ~3u) + 1;
		return 0;
	}
	if ((mask & 6) != 4 || i == 5) {	/* 32-bit memory */
		*size = (uint32_t)~(mask & ~0xfu) + 1;
		return 0;
	}
	ret = vnl_cfg_read(d, off + 4, &hi_orig, 4);
	ret = ret ?: vnl_cfg_write(d, off + 4, &ones, 4);
	ret = ret ?: vnl_cfg_read(d, off + 4, &hi_mask, 4);
	ret = ret ?: vnl_cfg_write(d, off + 4, &hi_orig, 4);
	if (ret)
		return ret;
	*size = ~(((uint64_t)hi_mask << 32) | (mask & ~0xfu)) + 1;
	*upper = true;
	return 0;
}

/*
 * VFIO_DEVICE_GET_REGION_INFO answers for every BAR of a VF bound to
 * nvme-vfio-pci, with the size the BAR decodes in config space (0 for the
 * upper half of a 64-bit BAR and for BARs the VF does not have), readable
 * and writable where there is memory.  A driver that lost the region info
 * callback gets EINVAL for all of them.
 */
TEST(region_info_matches_config_space)
{
	struct vfio_region_info cfg = { .argsz = sizeof(cfg) };
	char bdfs[8][32];
	struct vnl_dev d;
	int n, i, seen = 0;

	n = vnl_vfs_bound_to(DRIVER, bdfs, 8);
	ASSERT_LT(0, n) TH_LOG("no VF bound to %s", DRIVER);
	ASSERT_EQ(0, vnl_dev_open(&d, bdfs[0], VNL_IOMMUFD, ARENA_IOVA,
				  ARENA_SIZE))
		TH_LOG("%s", vnl_err);
	for (i = 0; i < 6; i++) {
		struct vfio_region_info ri = { .argsz = sizeof(ri), .index = i };
		uint64_t size;
		bool upper;

		ASSERT_EQ(0, ioctl(d.device_fd, VFIO_DEVICE_GET_REGION_INFO, &ri))
			TH_LOG("BAR%d: region info: %s", i, strerror(errno));
		ASSERT_EQ(0, bar_size(&d, i, &size, &upper)) TH_LOG("%s", vnl_err);
		EXPECT_EQ(size, ri.size)
			TH_LOG("BAR%d: config space decodes %#llx, region info says %#llx",
			       i, (unsigned long long)size,
			       (unsigned long long)ri.size);
		if (size) {
			seen++;
			EXPECT_EQ(VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE,
				  ri.flags & (VFIO_REGION_INFO_FLAG_READ |
					      VFIO_REGION_INFO_FLAG_WRITE))
				TH_LOG("BAR%d: flags %#x", i, ri.flags);
		}
		if (upper) {
			struct vfio_region_info hi = { .argsz = sizeof(hi),
						       .index = i + 1 };

			ASSERT_EQ(0, ioctl(d.device_fd, VFIO_DEVICE_GET_REGION_INFO, &hi));
			EXPECT_EQ(0, hi.size) TH_LOG("BAR%d: upper half of BAR%d", i + 1, i);
			i++;
		}
	}
	/* an NVMe controller has its registers in BAR0 */
	EXPECT_LE(1, seen);
	cfg.index = VFIO_PCI_CONFIG_REGION_INDEX;
	ASSERT_EQ(0, ioctl(d.device_fd, VFIO_DEVICE_GET_REGION_INFO, &cfg));
	EXPECT_LE(256, cfg.size);
	vnl_dev_close(&d);
}

VNL_HARNESS_MAIN
