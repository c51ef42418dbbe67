// SPDX-License-Identifier: GPL-2.0-only
/*
 * vfio-nvme basic tests: the NVMe VFs bound to nvme-vfio-pci work as
 * passthrough devices, through both iommufd cdev and the legacy
 * group/container interface.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "lib/vnl.h"

#define DRIVER		"nvme_vfio_pci"
#define ARENA_IOVA	0x10000000ull
#define ARENA_SIZE	0x100000
#define TEST_LBA	4096

static int sysfs_hex(const char *bdf, const char *attr, unsigned int *val)
{
	char path[PATH_MAX];
	FILE *f;
	int ret;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/%s", bdf, attr);
	f = fopen(path, "r");
	if (!f)
		return -errno;
	ret = fscanf(f, "%x", val) == 1 ? 0 : -EINVAL;
	fclose(f);
	return ret;
}

FIXTURE(vf) {
	char bdf[8][32];
	int nvf;
	struct vnl_dev dev[2];
	struct vnl_ctrl ctrl[2];
};

FIXTURE_VARIANT(vf) {
	enum vnl_iommu_mode mode;
};

FIXTURE_VARIANT_ADD(vf, iommufd) {
	.mode = VNL_IOMMUFD,
};

FIXTURE_VARIANT_ADD(vf, container) {
	.mode = VNL_CONTAINER,
};

FIXTURE_SETUP(vf)
{
	int i;

	for (i = 0; i < 2; i++)
		self->dev[i].device_fd = -1;
	self->nvf = vnl_vfs_bound_to(DRIVER, self->bdf, 8);
	/* the rig binds two VFs; fewer means the rig is broken, not a skip */
	ASSERT_GE(self->nvf, 2) TH_LOG("%d VFs bound to %s", self->nvf, DRIVER);
}

FIXTURE_TEARDOWN(vf)
{
	int i;

	for (i = 0; i < 2; i++)
		if (self->dev[i].device_fd >= 0)
			vnl_dev_close(&self->dev[i]);
}

static int open_enable(struct __test_metadata *_metadata, const char *bdf,
		       enum vnl_iommu_mode mode, struct vnl_dev *dev,
		       struct vnl_ctrl *ctrl)
{
	int ret;

	ret = vnl_dev_open(dev, bdf, mode, ARENA_IOVA, ARENA_SIZE);
	if (ret) {
		TH_LOG("open %s: %s (%d)", bdf, vnl_err, ret);
		return ret;
	}
	ret = vnl_ctrl_enable(ctrl, dev, 32);
	if (ret)
		TH_LOG("enable %s: %s (%d)", bdf, vnl_err, ret);
	return ret;
}

/* Config space through VFIO matches sysfs; the VF is an NVMe function. */
TEST_F(vf, config_space)
{
	unsigned int vendor, device;
	uint8_t cfg[64];
	int i, msix;

	for (i = 0; i < 2; i++) {
		ASSERT_EQ(0, vnl_dev_open(&self->dev[i], self->bdf[i],
					  variant->mode, ARENA_IOVA, ARENA_SIZE))
			TH_LOG("%s", vnl_err);
		ASSERT_EQ(0, vnl_cfg_read(&self->dev[i], 0, cfg, sizeof(cfg)));
		ASSERT_EQ(0, sysfs_hex(self->bdf[i], "vendor", &vendor));
		ASSERT_EQ(0, sysfs_hex(self->bdf[i], "device", &device));
		EXPECT_EQ(vendor, (unsigned int)(cfg[0] | cfg[1] << 8));
		EXPECT_EQ(device, (unsigned int)(cfg[2] | cfg[3] << 8));
		/* class code 01:08:02, NVM Express */
		EXPECT_EQ(0x02, cfg[9]);
		EXPECT_EQ(0x08, cfg[10]);
		EXPECT_EQ(0x01, cfg[11]);
		/* bus master was enabled by vnl_dev_open() */
		EXPECT_EQ(0x4, cfg[4] & 0x4);
		msix = vnl_cfg_find_cap(&self->dev[i], 0x11);
		EXPECT_GT(msix, 0);
		vnl_dev_close(&self->dev[i]);
	}
}

/* Identify Controller through the VF gives the SCID the PF lists for it. */
TEST_F(vf, identify_cntlid_is_scid)
{
	char pf[32];
	uint16_t scid;
	uint8_t *id;
	int i, vfn, pffd;

	for (i = 0; i < 2; i++) {
		ASSERT_EQ(0, vnl_pf_of_vf(self->bdf[i], pf, sizeof(pf), &vfn))
			TH_LOG("%s", vnl_err);
		pffd = vnl_pf_open(pf);
		ASSERT_LE(0, pffd) TH_LOG("%s", vnl_err);
		ASSERT_EQ(0, vnl_pf_scid(pffd, vfn, &scid)) TH_LOG("%s", vnl_err);
		close(pffd);

		ASSERT_EQ(0, open_enable(_metadata, self->bdf[i], variant->mode,
					 &self->dev[i], &self->ctrl[i]));
		id = self->ctrl[i].buf;
		EXPECT_EQ(scid, self->ctrl[i].cntlid)
			TH_LOG("%s VFN %d: SCID %u, CNTLID %u", self->bdf[i],
			       vfn, scid, self->ctrl[i].cntlid);
		/* a VF is not a Migration Management Controller (OACS bit 11) */
		EXPECT_EQ(0, (id[256] | id[257] << 8) & (1 << 11));
		TH_LOG("%s VFN %d SCID %u: VID %#x SN '%.20s' MN '%.40s'",
		       self->bdf[i], vfn, scid, id[0] | id[1] << 8,
		       (char *)id + 4, (char *)id + 24);
		vnl_dev_close(&self->dev[i]);
	}
}

/* Data written through VF1 reads back through VF2 (shared namespace). */
TEST_F(vf, io_shared_namespace)
{
	uint8_t *wbuf, *rbuf, *expect;
	uint64_t wiova, riova;
	uint32_t seed = (uint32_t)getpid() * 2654435761u;
	uint16_t nlb;
	int i;

	for (i = 0; i < 2; i++) {
		ASSERT_EQ(0, open_enable(_metadata, self->bdf[i], variant->mode,
					 &self->dev[i], &self->ctrl[i]));
		ASSERT_EQ(0, vnl_create_ioq(&self->ctrl[i], 1, 16, false, 0))
			TH_LOG("%s", vnl_err);
	}
	ASSERT_EQ(self->ctrl[0].lba_size, self->ctrl[1].lba_size);
	nlb = VNL_PAGE / self->ctrl[0].lba_size;

	expect = malloc(VNL_PAGE);
	ASSERT_NE(NULL, expect);
	vnl_fill_pattern(expect, VNL_PAGE, seed);
	wbuf = vnl_dma_alloc(&self->dev[0], VNL_PAGE, &wiova);
	rbuf = vnl_dma_alloc(&self->dev[1], VNL_PAGE, &riova);
	ASSERT_NE(NULL, wbuf);
	ASSERT_NE(NULL, rbuf);
	memcpy(wbuf, expect, VNL_PAGE);

	ASSERT_EQ(0, vnl_rw(&self->ctrl[0], NVME_CMD_WRITE, 1, TEST_LBA, nlb, wiova))
		TH_LOG("%s", vnl_err);
	memset(rbuf, 0xa5, VNL_PAGE);
	ASSERT_EQ(0, vnl_rw(&self->ctrl[1], NVME_CMD_READ, 1, TEST_LBA, nlb, riova))
		TH_LOG("%s", vnl_err);
	EXPECT_EQ(0, memcmp(rbuf, expect, VNL_PAGE));

	/* and the other way round, with a new pattern */
	vnl_fill_pattern(expect, VNL_PAGE, ~seed);
	memcpy(rbuf, expect, VNL_PAGE);
	ASSERT_EQ(0, vnl_rw(&self->ctrl[1], NVME_CMD_WRITE, 1, TEST_LBA, nlb, riova));
	memset(wbuf, 0, VNL_PAGE);
	ASSERT_EQ(0, vnl_rw(&self->ctrl[0], NVME_CMD_READ, 1, TEST_LBA, nlb, wiova));
	EXPECT_EQ(0, memcmp(wbuf, expect, VNL_PAGE));
	free(expect);
}

/* A CQ with interrupts enabled signals its MSI-X vector; one without does not. */
TEST_F(vf, msix_completion)
{
	struct vnl_ctrl *c = &self->ctrl[0];
	uint64_t iova;
	uint8_t *buf;
	int n;

	ASSERT_EQ(0, open_enable(_metadata, self->bdf[0], variant->mode,
				 &self->dev[0], c));
	ASSERT_EQ(0, vnl_msix_enable(&self->dev[0], 1)) TH_LOG("%s", vnl_err);
	/* the admin CQ uses vector 0 too: an admin command interrupts */
	ASSERT_EQ(0, vnl_identify(c, 0x01, 0, 0, NULL));
	EXPECT_GT(vnl_irq_count(&self->dev[0], 0, 10000), 0);

	ASSERT_EQ(0, vnl_create_ioq(c, 1, 16, true, 0)) TH_LOG("%s", vnl_err);
	buf = vnl_dma_alloc(&self->dev[0], VNL_PAGE, &iova);
	ASSERT_NE(NULL, buf);
	/* drain what queue creation signalled */
	usleep(100000);
	vnl_irq_count(&self->dev[0], 0, 0);

	ASSERT_EQ(0, vnl_rw(c, NVME_CMD_READ, 1, 0, 1, iova)) TH_LOG("%s", vnl_err);
	n = vnl_irq_count(&self->dev[0], 0, 10000);
	EXPECT_GT(n, 0) TH_LOG("no MSI-X interrupt for an I/O completion");
}

VNL_HARNESS_MAIN
