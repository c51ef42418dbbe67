// SPDX-License-Identifier: GPL-2.0-only
/*
 * vfio-nvme PF entry point tests: what nvme-vfio-pci learns through
 * nvme-pci's live migration entry point agrees with the PF and the VF, and
 * a PF controller reset reaches the VF driver.
 */
#include <errno.h>
#include <fcntl.h>
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
#define VF_NVQ		4
#define VF_NVI		2

/* <debugfs>/vfio/<VF BDF>/nvme/<name>: the core names the directory by device */
static int vf_debugfs(const char *bdf, const char *name, char *out, size_t len)
{
	char path[PATH_MAX];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/sys/kernel/debug/vfio/%s/nvme/%s", bdf,
		 name);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return -errno;
	n = read(fd, out, len - 1);
	close(fd);
	if (n < 0)
		return -errno;
	out[n] = 0;
	return 0;
}

static long vf_debugfs_num(const char *bdf, const char *name)
{
	char buf[32];

	if (vf_debugfs(bdf, name, buf, sizeof(buf)))
		return -1;
	return strtol(buf, NULL, 0);
}

FIXTURE(pf) {
	struct vnl_rig rig;
	struct vnl_dev dev;
	struct vnl_ctrl ctrl;
};

FIXTURE_SETUP(pf)
{
	self->dev.device_fd = -1;
	ASSERT_EQ(0, vnl_rig_open(&self->rig, DRIVER)) TH_LOG("%s", vnl_err);
}

FIXTURE_TEARDOWN(pf)
{
	if (self->dev.device_fd >= 0)
		vnl_dev_close(&self->dev);
	vnl_rig_close(&self->rig);
}

/*
 * The SCID the driver resolved at probe (CNS 15h through the entry point,
 * VFN = pci_iov_vf_id() + 1) equals the PF's list read through /dev/nvmeN
 * and the CNTLID the VF reports itself.
 */
TEST_F(pf, scid_matches_pf_list_and_vf)
{
	char buf[32];
	uint16_t scid;
	int i;

	for (i = 0; i < self->rig.nvf; i++) {
		ASSERT_EQ(0, vf_debugfs(self->rig.bdf[i], "scid", buf, sizeof(buf)));
		ASSERT_EQ(0, vnl_pf_scid(self->rig.pffd, self->rig.vfn[i], &scid))
			TH_LOG("%s", vnl_err);
		EXPECT_EQ(scid, strtol(buf, NULL, 10))
			TH_LOG("%s VFN %d: driver says %s, PF lists %u",
			       self->rig.bdf[i], self->rig.vfn[i], buf, scid);

		ASSERT_EQ(0, vnl_dev_open(&self->dev, self->rig.bdf[i], VNL_IOMMUFD,
					  ARENA_IOVA, ARENA_SIZE))
			TH_LOG("%s", vnl_err);
		ASSERT_EQ(0, vnl_ctrl_enable(&self->ctrl, &self->dev, 16))
			TH_LOG("%s", vnl_err);
		EXPECT_EQ(scid, self->ctrl.cntlid);
		vnl_dev_close(&self->dev);
	}
}

/*
 * A PF controller reset reaches every VF's driver (RESETTING, then LIVE);
 * the reset takes the secondary controllers offline, and after bringing
 * them online again they work.
 */
TEST_F(pf, pf_reset_seen_by_vf_driver)
{
	long before[8][2], now[2];
	uint16_t scid;
	int i;

	for (i = 0; i < self->rig.nvf; i++) {
		before[i][0] = vf_debugfs_num(self->rig.bdf[i], "pf_resetting");
		before[i][1] = vf_debugfs_num(self->rig.bdf[i], "pf_live");
		ASSERT_LE(0, before[i][0]);
		ASSERT_LE(0, before[i][1]);
	}
	ASSERT_EQ(0, vnl_pf_reset(self->rig.pf)) TH_LOG("%s", vnl_err);

	for (i = 0; i < self->rig.nvf; i++) {
		now[0] = vf_debugfs_num(self->rig.bdf[i], "pf_resetting");
		now[1] = vf_debugfs_num(self->rig.bdf[i], "pf_live");
		EXPECT_GE(now[0], before[i][0] + 1)
			TH_LOG("%s: RESETTING events %ld -> %ld", self->rig.bdf[i],
			       before[i][0], now[0]);
		EXPECT_GE(now[1], before[i][1] + 1)
			TH_LOG("%s: LIVE events %ld -> %ld", self->rig.bdf[i],
			       before[i][1], now[1]);
	}

	/* the PF reset took the VFs offline: bring them back and use one */
	for (i = 0; i < self->rig.nvf; i++)
		ASSERT_EQ(0, vnl_pf_vf_online(self->rig.pffd, self->rig.pf,
					      self->rig.vfn[i] - 1, VF_NVQ, VF_NVI,
					      &scid))
			TH_LOG("%s", vnl_err);
	ASSERT_EQ(0, vnl_dev_open(&self->dev, self->rig.bdf[0], VNL_IOMMUFD,
				  ARENA_IOVA, ARENA_SIZE))
		TH_LOG("%s", vnl_err);
	ASSERT_EQ(0, vnl_ctrl_enable(&self->ctrl, &self->dev, 16))
		TH_LOG("%s", vnl_err);
	ASSERT_EQ(0, vnl_create_ioq(&self->ctrl, 1, 8, false, 0))
		TH_LOG("%s", vnl_err);
}

VNL_HARNESS_MAIN
