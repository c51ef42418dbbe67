// SPDX-License-Identifier: GPL-2.0-only
/*
 * vfio-nvme device model tests: Controller Data Queues and Log User Data
 * Changes.  A CDQ lives in MMC (PF) memory that the controller writes long
 * after the command that created it, which the nvme passthrough ioctl
 * cannot provide: these tests drive the rig's second PF (bound to
 * vfio-pci) themselves through VFIO, and write through its VF bound to the
 * in-kernel nvme driver.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "lib/vnl.h"

#define IOVA		0x30000000ull
#define ARENA_SIZE	0x100000
#define ENTRY		32
#define ESA_NONE	0
#define ESA_FIRST	1
#define ESA_STOPPED	2
#define ESA_SUSPENDED	3
#define ESA_FULL	7
#define ST(x)		((x) & 0x7ff)

struct cdq {
	uint8_t *mem;
	uint64_t iova;
	uint32_t slots;
	uint32_t next;		/* next slot to read */
	uint8_t phase;		/* expected phase of the next entry */
	uint16_t id;
};

struct entry {
	uint32_t nsid;
	uint32_t nlb;
	uint64_t slba;
	uint8_t esa;
	uint8_t dlba;
	uint8_t lbacir;
};

static uint32_t le32(const uint8_t *p)
{
	return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24;
}

/* The NVMe PF bound to vfio-pci that has a VF: the rig's second PF. */
static int find_pf(char *pf, size_t len)
{
	char path[PATH_MAX], drv[PATH_MAX];
	struct dirent *de;
	DIR *dir = opendir("/sys/bus/pci/drivers/vfio-pci");
	int ret = -ENOENT;

	if (!dir)
		return -ENOENT;
	while ((de = readdir(dir))) {
		if (!strchr(de->d_name, ':'))
			continue;
		snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/virtfn0",
			 de->d_name);
		if (readlink(path, drv, sizeof(drv)) > 0) {
			snprintf(pf, len, "%.31s", de->d_name);
			ret = 0;
			break;
		}
	}
	closedir(dir);
	return ret;
}

/* the block device of the nvme-bound VF, once the driver has probed it */
static int vf_blockdev(const char *vf, char *out, size_t len)
{
	char path[PATH_MAX];
	struct dirent *de, *de2;
	DIR *d1, *d2;
	int tries;

	for (tries = 0; tries < 300; tries++) {
		snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/nvme", vf);
		d1 = opendir(path);
		while (d1 && (de = readdir(d1))) {
			if (strncmp(de->d_name, "nvme", 4))
				continue;
			snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/nvme/%s",
				 vf, de->d_name);
			d2 = opendir(path);
			while (d2 && (de2 = readdir(d2))) {
				if (!strncmp(de2->d_name, "nvme", 4) &&
				    strchr(de2->d_name + 4, 'n')) {
					snprintf(out, len, "/dev/%.32s", de2->d_name);
					closedir(d2);
					closedir(d1);
					if (!access(out, F_OK))
						return 0;
					goto again;
				}
			}
			if (d2)
				closedir(d2);
		}
		if (d1)
			closedir(d1);
again:
		usleep(100000);
	}
	return -ENOENT;
}

FIXTURE(cdq) {
	char pf[32];
	char vf[32];
	char blk[64];
	uint16_t scid;
	struct vnl_dev dev;
	struct vnl_ctrl c;
	int blkfd;
	uint8_t *wbuf;
};

static int admin(struct vnl_ctrl *c, uint8_t opc, uint32_t cdw10,
		 uint32_t cdw11, uint32_t cdw12, uint64_t prp1, uint32_t *dw0)
{
	struct vnl_sqe sqe = { .opc = opc, .prp1 = prp1, .cdw10 = cdw10,
			       .cdw11 = cdw11, .cdw12 = cdw12 };
	struct vnl_cqe cqe = {};
	int ret = vnl_cmd(c, &c->aq, &sqe, &cqe);

	if (dw0)
		*dw0 = cqe.dw0;
	return ret;
}

FIXTURE_SETUP(cdq)
{
	struct vnl_ctrl *c = &self->c;
	uint8_t *list;
	int i, n, ret;

	self->dev.device_fd = -1;
	self->blkfd = -1;
	ASSERT_EQ(0, find_pf(self->pf, sizeof(self->pf)))
		TH_LOG("no NVMe PF with a VF on vfio-pci (the rig's second PF)");
	ASSERT_EQ(0, vnl_pf_vf_bdf(self->pf, 0, self->vf, sizeof(self->vf)));
	ASSERT_EQ(0, vnl_dev_open(&self->dev, self->pf, VNL_IOMMUFD, IOVA,
				  ARENA_SIZE)) TH_LOG("%s", vnl_err);
	ASSERT_EQ(0, vnl_ctrl_enable(c, &self->dev, 32)) TH_LOG("%s", vnl_err);

	/* the VF's SCID, and the VF online with 2 VQ and 1 VI */
	list = c->buf;
	ASSERT_EQ(0, vnl_identify(c, 0x15, 0, 0, NULL));
	n = list[0];
	for (i = 0; i < n; i++)
		if ((list[32 + 32 * i + 8] | list[32 + 32 * i + 9] << 8) == 1)
			self->scid = list[32 + 32 * i] | list[33 + 32 * i] << 8;
	ASSERT_NE(0, self->scid);
	ret = admin(c, NVME_ADM_VIRT_MGMT,
		    (uint32_t)self->scid << 16 | VNL_VM_OFFLINE, 0, 0, 0, NULL);
	ASSERT_EQ(0, ret);
	ASSERT_EQ(0, admin(c, NVME_ADM_VIRT_MGMT, (uint32_t)self->scid << 16 |
			   VNL_VM_RT_VQ << 8 | VNL_VM_ASSIGN, 2, 0, 0, NULL));
	ASSERT_EQ(0, admin(c, NVME_ADM_VIRT_MGMT, (uint32_t)self->scid << 16 |
			   VNL_VM_RT_VI << 8 | VNL_VM_ASSIGN, 1, 0, 0, NULL));
	ASSERT_EQ(0, vnl_sysfs_write(self->vf, "reset", "1")) TH_LOG("%s", vnl_err);
	ASSERT_EQ(0, admin(c, NVME_ADM_VIRT_MGMT,
			   (uint32_t)self->scid << 16 | VNL_VM_ONLINE, 0, 0, 0, NULL));

	/* the VF on the in-kernel nvme driver: a block device to write to */
	/* vfio-pci claims the VFs of its PFs (driver_override): unbind */
	vnl_sysfs_write(self->vf, "driver/unbind", self->vf);
	ASSERT_EQ(0, vnl_sysfs_write(self->vf, "driver_override", "nvme"));
	ret = vnl_probe_driver(self->vf);
	ASSERT_EQ(0, ret) TH_LOG("drivers_probe %s: %s", self->vf, strerror(-ret));
	ASSERT_EQ(0, vf_blockdev(self->vf, self->blk, sizeof(self->blk)))
		TH_LOG("%s: no namespace block device", self->vf);
	self->blkfd = open(self->blk, O_RDWR | O_DIRECT);
	ASSERT_LE(0, self->blkfd) TH_LOG("open %s: %s", self->blk, strerror(errno));
	ASSERT_EQ(0, posix_memalign((void **)&self->wbuf, 4096, 4096));
	memset(self->wbuf, 0x5a, 4096);
}

FIXTURE_TEARDOWN(cdq)
{
	if (self->blkfd >= 0)
		close(self->blkfd);
	/* the VF leaves nvme before its PF is reset by the VFIO close */
	if (self->vf[0]) {
		vnl_sysfs_write(self->vf, "driver/unbind", self->vf);
		vnl_sysfs_write(self->vf, "driver_override", "\n");
	}
	if (self->dev.device_fd >= 0)
		vnl_dev_close(&self->dev);
	free(self->wbuf);
}

static int cdq_create(struct vnl_ctrl *c, struct cdq *q, uint16_t cntlid,
		      uint32_t slots)
{
	uint32_t dw0 = 0;
	int ret;

	memset(q, 0, sizeof(*q));
	q->mem = vnl_dma_alloc(c->dev, slots * ENTRY, &q->iova);
	if (!q->mem)
		return -ENOMEM;
	q->slots = slots;
	q->phase = 1;
	/* SEL 0 create, QT 0 (UDMQ); CQS = CNTLID, PC = 1; size in dwords */
	ret = admin(c, VNL_OPC_CDQ, 0, (uint32_t)cntlid << 16 | 1,
		    slots * ENTRY / 4, q->iova, &dw0);
	q->id = dw0 & 0xffff;
	return ret;
}

static int log_user_data(struct vnl_ctrl *c, struct cdq *q, bool start)
{
	return admin(c, VNL_OPC_TRACK_SEND, (start ? 1u : 0u) << 16, q->id, 0, 0,
		     NULL);
}

/* wait for the next posted entry; false if none comes within 5 s */
static bool cdq_next(struct cdq *q, struct entry *e)
{
	uint8_t *p = q->mem + q->next * ENTRY;
	int tries;

	for (tries = 0; tries < 500; tries++) {
		if ((__atomic_load_n(&p[31], __ATOMIC_ACQUIRE) & 1) == q->phase)
			break;
		usleep(10000);
	}
	if ((p[31] & 1) != q->phase)
		return false;
	e->nsid = le32(p);
	e->nlb = le32(p + 4);
	e->slba = le32(p + 8) | (uint64_t)le32(p + 12) << 32;
	e->esa = (p[31] >> 1) & 7;
	e->dlba = (p[31] >> 5) & 1;
	e->lbacir = p[31] >> 6;
	if (++q->next == q->slots) {
		q->next = 0;
		q->phase ^= 1;
	}
	return true;
}

/* 4 KiB (8 LBAs of 512 bytes) through the VF's block device */
static int write_lbas(int fd, const void *buf, uint64_t slba)
{
	return pwrite(fd, buf, 4096, slba * 512) == 4096 ? 0 : -errno;
}

/*
 * Log User Data Changes: the LBAs the VF writes appear as Type 0 entries
 * between ESA markers: first (start), stopped, suspended, first (resume).
 */
TEST_F(cdq, logs_written_lbas_with_markers)
{
	struct vnl_ctrl *c = &self->c;
	struct entry e;
	struct cdq q;
	uint8_t *feat;
	uint64_t feat_iova;
	uint32_t dw0;

	ASSERT_EQ(0, cdq_create(c, &q, self->scid, 64)) TH_LOG("%s", vnl_err);
	ASSERT_NE(0, q.id);
	ASSERT_EQ(0, log_user_data(c, &q, true));
	ASSERT_TRUE(cdq_next(&q, &e));
	EXPECT_EQ(ESA_FIRST, e.esa);
	EXPECT_EQ(2, e.lbacir);			/* no range in a marker */

	ASSERT_EQ(0, write_lbas(self->blkfd, self->wbuf, 8));
	ASSERT_EQ(0, write_lbas(self->blkfd, self->wbuf, 1000));
	ASSERT_TRUE(cdq_next(&q, &e)) TH_LOG("no entry for the write at LBA 8");
	EXPECT_EQ(ESA_NONE, e.esa);
	EXPECT_EQ(0, e.lbacir);
	EXPECT_EQ(1, e.nsid);
	EXPECT_EQ(8, e.slba);
	EXPECT_EQ(7, e.nlb);			/* 0's based: 8 blocks */
	EXPECT_EQ(0, e.dlba);
	ASSERT_TRUE(cdq_next(&q, &e));
	EXPECT_EQ(1000, e.slba);
	EXPECT_EQ(7, e.nlb);

	ASSERT_EQ(0, log_user_data(c, &q, false));
	ASSERT_TRUE(cdq_next(&q, &e));
	EXPECT_EQ(ESA_STOPPED, e.esa);
	/* not logging: nothing for this write */
	ASSERT_EQ(0, write_lbas(self->blkfd, self->wbuf, 16));

	/* suspend while logging: 011b; resume: 001b */
	ASSERT_EQ(0, log_user_data(c, &q, true));
	ASSERT_TRUE(cdq_next(&q, &e));
	EXPECT_EQ(ESA_FIRST, e.esa);
	ASSERT_EQ(0, admin(c, VNL_OPC_MIG_SEND, 0, 1 << 16 | self->scid, 0, 0, NULL));
	ASSERT_TRUE(cdq_next(&q, &e));
	EXPECT_EQ(ESA_SUSPENDED, e.esa);
	ASSERT_EQ(0, admin(c, VNL_OPC_MIG_SEND, 1, self->scid, 0, 0, NULL));
	ASSERT_TRUE(cdq_next(&q, &e));
	EXPECT_EQ(ESA_FIRST, e.esa);
	ASSERT_EQ(0, write_lbas(self->blkfd, self->wbuf, 24));
	ASSERT_TRUE(cdq_next(&q, &e));
	EXPECT_EQ(24, e.slba);

	/* Feature 21h: consume up to our position, read it back (512 B) */
	ASSERT_EQ(0, admin(c, NVME_ADM_SET_FEATURES, 0x21, q.id, q.next, 0, NULL));
	feat = vnl_dma_alloc(c->dev, VNL_PAGE, &feat_iova);
	ASSERT_NE(NULL, feat);
	memset(feat, 0xff, 512);
	ASSERT_EQ(0, admin(c, 0x0a, 0x21, q.id, 0, feat_iova, &dw0));
	EXPECT_EQ(q.next, le32(feat));
	EXPECT_EQ(0, le32(feat + 4));		/* TPT, ETPT off */
	EXPECT_EQ(q.id, dw0 & 0xffff);

	/* Suspend with DUDMQ deletes the queue */
	ASSERT_EQ(0, admin(c, VNL_OPC_MIG_SEND, 0, 1u << 31 | 1 << 16 | self->scid,
			   0, 0, NULL));
	ASSERT_EQ(0, admin(c, VNL_OPC_MIG_SEND, 1, self->scid, 0, 0, NULL));
	EXPECT_EQ(0x137, ST(admin(c, VNL_OPC_CDQ, 1, q.id, 0, 0, NULL)));
}

/*
 * A queue that fills up: the entry that fills it is tagged 111b, logging
 * stops, a One-Shot event (info 01h, DW1 = CDQID) completes the MMC's AER,
 * and starting again on the full queue is 3Bh.
 */
TEST_F(cdq, full_queue_raises_one_shot_event)
{
	struct vnl_ctrl *c = &self->c;
	struct vnl_sqe aer = { .opc = 0x0c };
	struct vnl_cqe cqe;
	struct entry e;
	struct cdq q;
	int i;

	vnl_submit(c, &c->aq, &aer);
	/* 4 slots: 3 usable (full when tail + 1 == head) */
	ASSERT_EQ(0, cdq_create(c, &q, self->scid, 4)) TH_LOG("%s", vnl_err);
	ASSERT_EQ(0, log_user_data(c, &q, true));
	for (i = 0; i < 4; i++)
		ASSERT_EQ(0, write_lbas(self->blkfd, self->wbuf, 100 + 8 * i));
	ASSERT_TRUE(cdq_next(&q, &e));
	EXPECT_EQ(ESA_FIRST, e.esa);
	ASSERT_TRUE(cdq_next(&q, &e));
	EXPECT_EQ(ESA_NONE, e.esa);
	EXPECT_EQ(100, e.slba);
	ASSERT_TRUE(cdq_next(&q, &e));
	EXPECT_EQ(ESA_FULL, e.esa);
	EXPECT_EQ(108, e.slba);

	ASSERT_EQ(0, vnl_wait(c, &c->aq, &cqe)) TH_LOG("no One-Shot AEN");
	EXPECT_EQ(aer.cid, cqe.cid);
	EXPECT_EQ(4, cqe.dw0 & 7);		/* One-Shot */
	EXPECT_EQ(1, (cqe.dw0 >> 8) & 0xff);	/* CDQ full */
	EXPECT_EQ(q.id, cqe.dw1 & 0xffff);

	EXPECT_EQ(0x13b, ST(log_user_data(c, &q, true)));
	ASSERT_EQ(0, admin(c, VNL_OPC_CDQ, 1, q.id, 0, 0, NULL));
}

/* CDQ statuses: 37h, 13h, 1Fh, Invalid Field, 38h */
TEST_F(cdq, cdq_statuses)
{
	struct vnl_ctrl *c = &self->c;
	struct cdq q, q2;
	uint64_t iova;

	EXPECT_EQ(0x137, ST(admin(c, VNL_OPC_CDQ, 1, 0x77, 0, 0, NULL)));
	EXPECT_EQ(0x137, ST(admin(c, VNL_OPC_TRACK_SEND, 1 << 16, 0x77, 0, 0, NULL)));
	ASSERT_NE(NULL, vnl_dma_alloc(c->dev, VNL_PAGE, &iova));
	/* PRP1 not page aligned */
	EXPECT_EQ(0x013, ST(admin(c, VNL_OPC_CDQ, 0, (uint32_t)self->scid << 16 | 1,
				  64, iova + 0x100, NULL)));
	/* CQS naming no controller */
	EXPECT_EQ(0x11f, ST(admin(c, VNL_OPC_CDQ, 0, 0x7ffu << 16 | 1, 64, iova,
				  NULL)));
	/* CDQSIZE not a multiple of the entry size; QT 1 */
	EXPECT_EQ(0x002, ST(admin(c, VNL_OPC_CDQ, 0, (uint32_t)self->scid << 16 | 1,
				  12, iova, NULL)));
	EXPECT_EQ(0x002, ST(admin(c, VNL_OPC_CDQ, 1 << 16,
				  (uint32_t)self->scid << 16 | 1, 64, iova, NULL)));
	/* one UDMQ per controller: a second one is Invalid Field */
	ASSERT_EQ(0, cdq_create(c, &q, self->scid, 8));
	EXPECT_EQ(0x002, ST(cdq_create(c, &q2, self->scid, 8)));
	ASSERT_EQ(0, admin(c, VNL_OPC_CDQ, 1, q.id, 0, 0, NULL));
	/* Set Features 21h: HP beyond the queue */
	ASSERT_EQ(0, cdq_create(c, &q, self->scid, 8));
	EXPECT_EQ(0x002, ST(admin(c, NVME_ADM_SET_FEATURES, 0x21, q.id, 8, 0, NULL)));
	EXPECT_EQ(0x137, ST(admin(c, NVME_ADM_SET_FEATURES, 0x21, 0x77, 0, 0, NULL)));
	ASSERT_EQ(0, admin(c, VNL_OPC_CDQ, 1, q.id, 0, 0, NULL));
}

/*
 * A suspend marker that fills the queue keeps its 011b (a host drains up
 * to it) and the full event is still raised.
 */
TEST_F(cdq, suspend_marker_filling_queue_keeps_esa)
{
	struct vnl_ctrl *c = &self->c;
	struct vnl_sqe aer = { .opc = 0x0c }, susp;
	bool seen_susp = false, seen_aen = false;
	struct vnl_cqe cqe;
	struct entry e;
	struct cdq q;
	int i;

	vnl_submit(c, &c->aq, &aer);
	ASSERT_EQ(0, cdq_create(c, &q, self->scid, 4));
	ASSERT_EQ(0, log_user_data(c, &q, true));
	ASSERT_EQ(0, write_lbas(self->blkfd, self->wbuf, 200));
	ASSERT_TRUE(cdq_next(&q, &e));
	EXPECT_EQ(ESA_FIRST, e.esa);
	ASSERT_TRUE(cdq_next(&q, &e));
	EXPECT_EQ(200, e.slba);
	/*
	 * Slot 2 is the last free one: the suspend marker goes there.  The
	 * AEN and the Suspend's own completion come in either order.
	 */
	susp = (struct vnl_sqe){ .opc = VNL_OPC_MIG_SEND,
				 .cdw11 = 1 << 16 | self->scid };
	vnl_submit(c, &c->aq, &susp);
	for (i = 0; i < 2; i++) {
		ASSERT_EQ(0, vnl_wait(c, &c->aq, &cqe)) TH_LOG("%s", vnl_err);
		if (cqe.cid == susp.cid) {
			EXPECT_EQ(0, cqe.status >> 1);
			seen_susp = true;
		} else if (cqe.cid == aer.cid) {
			EXPECT_EQ(4, cqe.dw0 & 7);		/* One-Shot */
			EXPECT_EQ(1, (cqe.dw0 >> 8) & 0xff);	/* full */
			seen_aen = true;
		}
	}
	EXPECT_TRUE(seen_susp);
	EXPECT_TRUE(seen_aen) TH_LOG("no One-Shot AEN");
	ASSERT_TRUE(cdq_next(&q, &e));
	EXPECT_EQ(ESA_SUSPENDED, e.esa);
	ASSERT_EQ(0, admin(c, VNL_OPC_MIG_SEND, 1, self->scid, 0, 0, NULL));
	ASSERT_EQ(0, admin(c, VNL_OPC_CDQ, 1, q.id, 0, 0, NULL));
}

VNL_HARNESS_MAIN
