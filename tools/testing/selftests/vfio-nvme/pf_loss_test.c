// SPDX-License-Identifier: GPL-2.0-only
/*
 * vfio-nvme PF loss mid-migration: the rig's PF goes away or is reset
 * while its VF1 is in PRE_COPY, STOP_COPY, RESUMING or has DMA logging on.
 * Three ways: a reset of the PF controller, sriov_numvfs to 0, an unbind
 * of the PF from nvme.  No crash or splat; the migration fds fail; after a
 * reset of the PF the VF is in ERROR and VFIO_DEVICE_RESET recovers it;
 * when the VFs go away the VF driver unbinds as soon as the user closes
 * the device (the VFIO core waits for that), the data fds left open fail
 * with ENODEV; and the other PF's VF, bound to the same driver and doing
 * I/O, is untouched throughout.  Each case puts the rig back as the
 * guest's init made it.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <linux/vfio.h>

#include "kselftest_harness.h"
#include "lib/vnl.h"

#define DRIVER		"nvme_vfio_pci"
#define IOVA_A		0x10000000ull
#define IOVA_O		0x30000000ull
#define ARENA_SIZE	0x100000
#define RIG_NVFS	2
#define RIG_NVQ		4
#define RIG_NVI		2
#define OTHER_LBA	700

enum loss { LOSS_RESET, LOSS_NUMVFS, LOSS_UNBIND };
enum phase { PH_PRE_COPY, PH_STOP_COPY, PH_RESUMING, PH_LOGGING };

FIXTURE(loss) {
	struct vnl_rig rig;
	struct vnl_dev dev[2];
	struct vnl_ctrl ctrl;
	char other_pf[32], other_vf[32];
	struct vnl_dev other;
	struct vnl_ctrl octrl;
	uint8_t *obuf;
	uint64_t obuf_iova;
	int fd;
};

/* the other PF's VF reads back the block it wrote at setup */
static int other_io(struct _test_data_loss *self)
{
	uint8_t expect[VNL_PAGE];
	int ret;

	memset(self->obuf, 0, VNL_PAGE);
	ret = vnl_rw(&self->octrl, NVME_CMD_READ, 1, OTHER_LBA,
		     VNL_PAGE / self->octrl.lba_size, self->obuf_iova);
	if (ret)
		return ret;
	vnl_fill_pattern(expect, VNL_PAGE, 0x07e4);
	return memcmp(expect, self->obuf, VNL_PAGE) ? -EILSEQ : 0;
}

/* the rig's two VFs, VF1 with its controller enabled */
static int open_vfs(struct _test_data_loss *self)
{
	return vnl_rig_open_vfs(&self->rig, self->dev, 2, ARENA_SIZE) ?:
	       vnl_ctrl_enable(&self->ctrl, &self->dev[0], 16);
}

FIXTURE_SETUP(loss)
{
	int vfn;

	self->fd = -1;
	self->dev[0].device_fd = -1;
	self->dev[1].device_fd = -1;
	self->other.device_fd = -1;
	ASSERT_EQ(0, vnl_rig_open(&self->rig, DRIVER)) TH_LOG("%s", vnl_err);

	/* the second PF on nvme, its VF online and bound to the driver */
	ASSERT_EQ(0, vnl_vf_of_vfio_pf(self->other_vf, sizeof(self->other_vf)))
		TH_LOG("no VF of an NVMe PF on vfio-pci (the rig's second PF)");
	ASSERT_EQ(0, vnl_pf_of_vf(self->other_vf, self->other_pf,
				  sizeof(self->other_pf), &vfn));
	ASSERT_EQ(0, vnl_sysfs_write(self->other_pf, "sriov_numvfs", "0"));
	ASSERT_EQ(0, vnl_sysfs_write(self->other_pf, "driver/unbind",
				     self->other_pf));
	ASSERT_EQ(0, vnl_pf_setup_vfs(self->other_pf, 1, 2, 1, DRIVER))
		TH_LOG("%s", vnl_err);
	ASSERT_EQ(0, vnl_dev_open(&self->other, self->other_vf, VNL_IOMMUFD,
				  IOVA_O, ARENA_SIZE))
		TH_LOG("%s", vnl_err);
	ASSERT_EQ(0, vnl_ctrl_enable(&self->octrl, &self->other, 16))
		TH_LOG("%s", vnl_err);
	ASSERT_EQ(0, vnl_create_ioq(&self->octrl, 1, 8, false, 0))
		TH_LOG("%s", vnl_err);
	self->obuf = vnl_dma_alloc(&self->other, VNL_PAGE, &self->obuf_iova);
	ASSERT_NE(NULL, self->obuf);
	vnl_fill_pattern(self->obuf, VNL_PAGE, 0x07e4);
	ASSERT_EQ(0, vnl_rw(&self->octrl, NVME_CMD_WRITE, 1, OTHER_LBA,
			    VNL_PAGE / self->octrl.lba_size, self->obuf_iova));

	ASSERT_EQ(0, open_vfs(self)) TH_LOG("%s", vnl_err);
}

/* VF @i of @pf is bound to the driver */
static bool vf_bound(const char *pf, int i)
{
	char path[PATH_MAX], link[PATH_MAX];
	ssize_t n;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/virtfn%d/driver",
		 pf, i);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0)
		return false;
	link[n] = 0;
	return !strcmp(strrchr(link, '/') ? strrchr(link, '/') + 1 : link,
		       DRIVER);
}

FIXTURE_TEARDOWN(loss)
{
	int i;

	if (self->fd >= 0)
		close(self->fd);
	for (i = 0; i < 2; i++)
		if (self->dev[i].device_fd >= 0)
			vnl_dev_close(&self->dev[i]);
	if (self->other.device_fd >= 0)
		vnl_dev_close(&self->other);
	/* the rig's PF as init made it, whatever the case left */
	for (i = 0; i < RIG_NVFS && vf_bound(self->rig.pf, i); i++)
		;
	if (i < RIG_NVFS)
		vnl_pf_setup_vfs(self->rig.pf, RIG_NVFS, RIG_NVQ, RIG_NVI, DRIVER);
	vnl_rig_close(&self->rig);
	/* the second PF back on vfio-pci with one VF, as init made it */
	vnl_sysfs_write(self->other_vf, "driver/unbind", self->other_vf);
	vnl_sysfs_write(self->other_pf, "sriov_numvfs", "0");
	vnl_sysfs_write(self->other_pf, "driver/unbind", self->other_pf);
	vnl_sysfs_write(self->other_pf, "driver_override", "vfio-pci");
	vnl_probe_driver(self->other_pf);
	vnl_sysfs_write(self->other_pf, "sriov_drivers_autoprobe", "0");
	vnl_sysfs_write(self->other_pf, "sriov_numvfs", "1");
}

/* VF1 into the case's phase; VF2's stream, half written, for RESUMING */
static int enter_phase(struct __test_metadata *_metadata,
		       struct _test_data_loss *self, enum phase ph)
{
	struct vnl_dev *d = &self->dev[0];
	struct vnl_range r = { IOVA_A, ARENA_SIZE };
	uint8_t *stream = NULL;
	uint64_t ps = VNL_PAGE;
	size_t len = 0;
	int fd, ret;

	switch (ph) {
	case PH_PRE_COPY:
		return vnl_mig_set_state(d, VFIO_DEVICE_STATE_PRE_COPY, &self->fd);
	case PH_STOP_COPY:
		return vnl_mig_set_state(d, VFIO_DEVICE_STATE_STOP_COPY, &self->fd);
	case PH_RESUMING:
		ret = vnl_mig_set_state(&self->dev[1], VFIO_DEVICE_STATE_STOP_COPY,
					&fd);
		if (ret)
			return ret;
		ret = vnl_mig_read(fd, &stream, &len, 4096);
		close(fd);
		ret = ret ?: vnl_mig_set_state(&self->dev[1],
					       VFIO_DEVICE_STATE_RUNNING, NULL);
		ret = ret ?: vnl_mig_set_state(d, VFIO_DEVICE_STATE_RESUMING,
					       &self->fd);
		ret = ret ?: vnl_mig_write(self->fd, stream, len / 2, 4096);
		free(stream);
		return ret;
	case PH_LOGGING:
		return vnl_dma_log_start(d, &ps, &r, 1);
	}
	return -EINVAL;
}

/* what is left of the migration fails: the data fd, or the log report */
static int migration_fails(struct _test_data_loss *self, enum phase ph,
			   bool device_open)
{
	static uint64_t map[ARENA_SIZE / VNL_PAGE / 64];
	uint8_t byte = 0;
	ssize_t n;

	if (ph == PH_LOGGING) {
		if (!device_open)
			return 0;
		return vnl_dma_log_report(&self->dev[0], IOVA_A, ARENA_SIZE,
					  VNL_PAGE, map) == -EIO ? 0 : -EPROTO;
	}
	if (ph == PH_RESUMING)
		n = write(self->fd, &byte, 1);
	else
		n = read(self->fd, &byte, 1);
	return n < 0 && errno == ENODEV ? 0 : -EPROTO;
}

struct remover {
	const char *pf;
	enum loss loss;
	atomic_int done;
	int ret;
};

static void *remove_fn(void *arg)
{
	struct remover *r = arg;

	if (r->loss == LOSS_NUMVFS)
		r->ret = vnl_sysfs_write(r->pf, "sriov_numvfs", "0");
	else
		r->ret = vnl_write_file("/sys/bus/pci/drivers/nvme/unbind", r->pf);
	atomic_store(&r->done, 1);
	return NULL;
}

/*
 * One case: VF1 in @ph, the PF lost by @how; VF1 (and VF2) usable again
 * afterwards.  Returns with the rig as it found it, or fails an assertion.
 */
static void one_case(struct __test_metadata *_metadata,
		     struct _test_data_loss *self, enum loss how,
		     enum phase ph)
{
	struct remover rm = { .pf = self->rig.pf, .loss = how };
	struct vnl_dev *d = &self->dev[0];
	char path[PATH_MAX];
	pthread_t thread;
	int i, tries;

	ASSERT_EQ(0, other_io(self)) TH_LOG("the other PF's VF before");
	ASSERT_EQ(0, enter_phase(_metadata, self, ph))
		TH_LOG("%s", vnl_err);

	if (how == LOSS_RESET) {
		ASSERT_EQ(0, vnl_pf_reset(self->rig.pf)) TH_LOG("%s", vnl_err);
		EXPECT_EQ(0, migration_fails(self, ph, true));
		for (tries = 0; tries < 50; tries++) {
			if (ph == PH_LOGGING ||
			    vnl_mig_get_state(d) == VFIO_DEVICE_STATE_ERROR)
				break;
			usleep(100000);
		}
		if (ph != PH_LOGGING)
			EXPECT_EQ(VFIO_DEVICE_STATE_ERROR, vnl_mig_get_state(d));
		EXPECT_EQ(0, other_io(self)) TH_LOG("the other PF's VF after");
		/* secondary controllers are offline after a PF reset */
		for (i = 0; i < RIG_NVFS; i++)
			ASSERT_EQ(0, vnl_pf_vf_online(self->rig.pffd, self->rig.pf,
						      i, RIG_NVQ, RIG_NVI, NULL));
		vnl_dma_log_stop(d);
		ASSERT_EQ(0, vnl_dev_reset(d)) TH_LOG("%s", vnl_err);
		EXPECT_EQ(VFIO_DEVICE_STATE_RUNNING, vnl_mig_get_state(d));
		d->dma_used = 0;
		ASSERT_EQ(0, vnl_ctrl_enable(&self->ctrl, d, 16)) TH_LOG("%s", vnl_err);
		goto out;
	}

	/* the VFs go: their removal waits until the user closes them */
	ASSERT_EQ(0, pthread_create(&thread, NULL, remove_fn, &rm));
	sleep(2);
	EXPECT_EQ(0, atomic_load(&rm.done))
		TH_LOG("the VFs went while their VFIO devices were open");
	EXPECT_EQ(0, other_io(self)) TH_LOG("the other PF's VF during");
	for (i = 0; i < 2; i++)
		vnl_dev_close(&self->dev[i]);
	for (tries = 0; tries < 300 && !atomic_load(&rm.done); tries++)
		usleep(100000);
	ASSERT_EQ(1, atomic_load(&rm.done)) TH_LOG("removing the VFs hangs");
	pthread_join(thread, NULL);
	EXPECT_EQ(0, rm.ret) TH_LOG("%s", vnl_err);
	/* the VFs and their binding are gone; the files left open fail */
	for (i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "/sys/bus/pci/drivers/%s/%s",
			 DRIVER, self->rig.bdf[i]);
		EXPECT_NE(0, access(path, F_OK)) TH_LOG("%s still bound", path);
	}
	if (self->fd >= 0)
		EXPECT_EQ(0, migration_fails(self, ph, false));
	EXPECT_EQ(0, other_io(self)) TH_LOG("the other PF's VF after");

	/* and the rig comes back: the VFs migrate again */
	ASSERT_EQ(0, vnl_pf_setup_vfs(self->rig.pf, RIG_NVFS, RIG_NVQ, RIG_NVI,
				      DRIVER))
		TH_LOG("%s", vnl_err);
	/* the same VFs again (virtfn0, virtfn1); the PF's node is new */
	close(self->rig.pffd);
	self->rig.pffd = vnl_pf_open(self->rig.pf);
	ASSERT_LE(0, self->rig.pffd) TH_LOG("%s", vnl_err);
	ASSERT_EQ(0, open_vfs(self)) TH_LOG("%s", vnl_err);
out:
	if (self->fd >= 0)
		close(self->fd);
	self->fd = -1;
	/* VF1 migrates again */
	ASSERT_EQ(0, vnl_mig_set_state(d, VFIO_DEVICE_STATE_STOP, NULL));
	ASSERT_EQ(0, vnl_mig_set_state(d, VFIO_DEVICE_STATE_RUNNING, NULL));
	EXPECT_EQ(0, other_io(self)) TH_LOG("the other PF's VF at the end");
}

static const char *const phase_names[] = {
	"PRE_COPY", "STOP_COPY", "RESUMING", "DMA logging",
};

static void each_phase(struct __test_metadata *_metadata,
		       struct _test_data_loss *self, enum loss how)
{
	unsigned int ph;

	for (ph = 0; ph < ARRAY_SIZE(phase_names); ph++) {
		TH_LOG("PF lost in %s", phase_names[ph]);
		one_case(_metadata, self, how, ph);
	}
}

TEST_F_TIMEOUT(loss, pf_reset, 600)
{
	each_phase(_metadata, self, LOSS_RESET);
}

TEST_F_TIMEOUT(loss, sriov_numvfs_0, 600)
{
	each_phase(_metadata, self, LOSS_NUMVFS);
}

TEST_F_TIMEOUT(loss, pf_unbind, 600)
{
	each_phase(_metadata, self, LOSS_UNBIND);
}

VNL_HARNESS_MAIN
