// SPDX-License-Identifier: GPL-2.0-only
/*
 * vfio-nvme device model tests: the PF is an NVMe Migration Management
 * Controller (TP4159), driven through the nvme driver's admin passthrough
 * ioctl on /dev/nvmeN; the VFs are driven through VFIO with lib/.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "lib/vnl.h"

#define DRIVER		"nvme_vfio_pci"
#define IOVA_A		0x10000000ull
#define IOVA_B		0x20000000ull
#define ARENA_SIZE	0x100000
#define CHUNK_SMALL	64

/* status values as the passthrough ioctl returns them: SCT << 8 | SC */
#define ST_INVALID_OPCODE	0x001
#define ST_INVALID_FIELD	0x002
#define ST_CMD_SEQ_ERROR	0x00c
#define ST_INVALID_CTRL_ID	0x11f
#define ST_NOT_ENOUGH_RES	0x138
#define ST_CTRL_SUSPENDED	0x139
#define ST_CTRL_NOT_SUSPENDED	0x13a
#define ST(x)			((x) & 0x7ff)

static uint16_t le16(const uint8_t *p)
{
	return p[0] | p[1] << 8;
}

static uint32_t le32(const uint8_t *p)
{
	return le16(p) | (uint32_t)le16(p + 2) << 16;
}

static uint64_t le64(const uint8_t *p)
{
	return le32(p) | (uint64_t)le32(p + 4) << 32;
}

/* Set Features through the PF's admin queue */
static int set_feature_pf(int fd, uint8_t fid, uint32_t nsid, uint32_t cdw11)
{
	uint32_t cdw[6] = { fid, cdw11 };

	return vnl_pf_cmd(fd, NVME_ADM_SET_FEATURES, nsid, cdw, NULL, 0, NULL);
}

FIXTURE(mmc) {
	struct vnl_rig rig;
	struct vnl_dev dev[2];
	struct vnl_ctrl ctrl[2];
	bool suspended[2];
	bool tracking;
	bool err_rec_set;	/* namespace 1 Error Recovery changed */
	uint16_t vf1_nvq;	/* VF1's VQ/VI resources to restore, or 0 */
	uint16_t vf1_nvi;
};

FIXTURE_SETUP(mmc)
{
	int i;

	for (i = 0; i < 2; i++)
		self->dev[i].device_fd = -1;
	ASSERT_EQ(0, vnl_rig_open(&self->rig, DRIVER)) TH_LOG("%s", vnl_err);
}

FIXTURE_TEARDOWN(mmc)
{
	int i;

	if (self->tracking)
		vnl_lm_track_mem(self->rig.pffd, self->rig.scid[0], false, 0, NULL, 0,
				 NULL, NULL);
	for (i = 0; i < 2; i++) {
		if (self->suspended[i])
			vnl_lm_resume(self->rig.pffd, self->rig.scid[i]);
		if (self->dev[i].device_fd >= 0)
			vnl_dev_close(&self->dev[i]);
	}
	/* the namespace object is shared by every controller: back to 0 */
	if (self->err_rec_set)
		set_feature_pf(self->rig.pffd, 0x05, 1, 0);
	if (self->vf1_nvq)
		vnl_pf_vf_online(self->rig.pffd, self->rig.pf, self->rig.vfn[0] - 1,
				 self->vf1_nvq, self->vf1_nvi, NULL);
	vnl_rig_close(&self->rig);
}

static int open_vf(struct __test_metadata *_metadata, const char *bdf,
		   struct vnl_dev *dev, struct vnl_ctrl *ctrl, uint64_t iova)
{
	int ret = vnl_dev_open(dev, bdf, VNL_IOMMUFD, iova, ARENA_SIZE);

	if (ret) {
		TH_LOG("open %s: %s", bdf, vnl_err);
		return ret;
	}
	if (!ctrl)
		return 0;
	ret = vnl_ctrl_enable(ctrl, dev, 16);
	if (ret)
		TH_LOG("enable %s: %s", bdf, vnl_err);
	return ret;
}

static size_t first_diff(const uint8_t *a, const uint8_t *b, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (a[i] != b[i])
			return i;
	return len;
}

/*
 * VF1 enabled with one I/O queue pair, suspended, and its whole state (NVMe
 * state v0 + vendor state) read: a real state to replay or corrupt.
 */
static int suspended_vf1_state(struct __test_metadata *_metadata,
			       struct vnl_rig *rig, struct vnl_dev *dev,
			       struct vnl_ctrl *c, bool *suspended,
			       uint8_t **state, size_t *len)
{
	int ret;

	ret = open_vf(_metadata, rig->bdf[0], dev, c, IOVA_A);
	if (!ret)
		ret = vnl_create_ioq(c, 1, 16, false, 0);
	if (!ret)
		ret = vnl_lm_suspend(rig->pffd, rig->scid[0], 1, false);
	if (ret) {
		TH_LOG("%s", vnl_err);
		return ret;
	}
	*suspended = true;
	return vnl_lm_get_state_all(rig->pffd, rig->scid[0], 1, 1, 4096, state,
				    len, NULL);
}

static bool cq_pending(struct vnl_queue *q)
{
	return (__atomic_load_n(&q->cq[q->cq_head].status, __ATOMIC_ACQUIRE) & 1) ==
		q->phase;
}

/* Get Features on a VF's admin queue; DW0 in @dw0 */
static int get_feature(struct vnl_ctrl *c, uint8_t fid, uint32_t nsid, uint32_t *dw0)
{
	struct vnl_sqe sqe = { .opc = 0x0a, .nsid = nsid, .cdw10 = fid };
	struct vnl_cqe cqe = {};
	int ret = vnl_cmd(c, &c->aq, &sqe, &cqe);

	*dw0 = cqe.dw0;
	return ret;
}

/* Get Log Page of @len bytes (<= 4096) into the controller's admin page */
static int get_log_page(struct vnl_ctrl *c, uint8_t lid, bool rae, uint32_t len)
{
	struct vnl_sqe sqe = {
		.opc = 0x02,
		.prp1 = c->buf_iova,
		.cdw10 = (len / 4 - 1) << 16 | (rae ? 1u << 15 : 0) | lid,
	};

	memset(c->buf, 0xff, VNL_PAGE);
	return vnl_cmd(c, &c->aq, &sqe, NULL);
}

/* Namespace Attachment (15h) through the PF for one controller */
static int ns_attach_pf(int fd, uint32_t nsid, uint16_t cntlid, bool attach)
{
	uint16_t list[2048] = { 1, cntlid };
	uint32_t cdw[6] = { attach ? 0 : 1 };

	return vnl_pf_cmd(fd, 0x15, nsid, cdw, list, sizeof(list), NULL);
}

/* VQ and VI resources of a secondary controller, from the PF's CNS 15h */
static int sec_ctrl_res(int fd, uint16_t scid, uint16_t *nvq, uint16_t *nvi)
{
	uint32_t cdw[6] = { (uint32_t)scid << 16 | 0x15 };
	uint8_t *buf = calloc(1, 4096);
	int ret;

	if (!buf)
		return -ENOMEM;
	ret = vnl_pf_cmd(fd, NVME_ADM_IDENTIFY, 0, cdw, buf, 4096, NULL);
	if (!ret && (!buf[0] || le16(buf + 32) != scid))
		ret = -ENOENT;
	if (!ret) {
		*nvq = le16(buf + 32 + 10);
		*nvi = le16(buf + 32 + 12);
	}
	free(buf);
	return ret;
}

/*
 * Migrate the suspended @state onto VF2 (@dev[1]): open it unless
 * @vf2_open (opening is a function level reset), give it VF1's arena at the
 * same IOVAs, suspend it, set the state in chunks and resume it.  From then
 * on @c (VF1's queues) drives VF2.
 */
static int state_to_vf2(struct __test_metadata *_metadata, struct vnl_rig *r,
			struct vnl_dev dev[2], struct vnl_ctrl *c, bool suspended[2],
			const uint8_t *state, size_t len, bool vf2_open)
{
	int ret = 0;

	if (!vf2_open)
		ret = open_vf(_metadata, r->bdf[1], &dev[1], NULL, IOVA_B);
	if (!ret)
		ret = vnl_dev_map_arena_of(&dev[1], &dev[0]);
	if (!ret)
		ret = vnl_lm_suspend(r->pffd, r->scid[1], 1, false);
	if (!ret) {
		suspended[1] = true;
		ret = vnl_lm_set_state_all(r->pffd, r->scid[1], 1, 1, 64, state, len);
	}
	if (!ret)
		ret = vnl_lm_resume(r->pffd, r->scid[1]);
	if (ret) {
		TH_LOG("to VF2: %d: %s", ret, vnl_err);
		return ret;
	}
	suspended[1] = false;
	c->dev = &dev[1];
	return 0;
}

#define TO_VF2(state, len, vf2_open) \
	state_to_vf2(_metadata, &self->rig, self->dev, &self->ctrl[0], \
		     self->suspended, state, len, vf2_open)

/* ---- Identify ---- */

TEST_F(mmc, identify_mmc_fields)
{
	uint8_t *buf = calloc(1, 4096);
	struct vnl_sqe sqe;
	uint32_t cdw[6] = {};
	int nv, nuuid, opc, i;
	static const uint8_t lm_opcodes[] = { 0x3d, 0x3e, 0x41, 0x42, 0x45 };

	ASSERT_NE(NULL, buf);
	/* PF: an MMC */
	cdw[0] = 0x01;
	ASSERT_EQ(0, vnl_pf_cmd(self->rig.pffd, NVME_ADM_IDENTIFY, 0, cdw, buf, 4096, NULL));
	EXPECT_NE(0, le16(buf + 256) & (1 << 11)) TH_LOG("PF OACS %#x", le16(buf + 256));
	EXPECT_GE(le16(buf + 570), 1);			/* CMMRTD */
	EXPECT_GE(le16(buf + 572), le16(buf + 570));	/* NMMRTD >= CMMRTD */
	EXPECT_LE(buf[574], buf[575]);			/* MINMRTG <= MAXMRTG */
	EXPECT_EQ(1, buf[576] & 1);			/* TRATTR.THMCS */
	EXPECT_EQ(2, buf[576] & 2);			/* TRATTR.TUDCS */
	EXPECT_GE(le16(buf + 578), 1);			/* MCUDMQ */
	EXPECT_GE(le16(buf + 580), le16(buf + 578));	/* MNSUDMQ */

	/* CNS 20h: NVMe state version 0 at index 1, one vendor UUID */
	cdw[0] = 0x20;
	memset(buf, 0xff, 4096);
	ASSERT_EQ(0, vnl_pf_cmd(self->rig.pffd, NVME_ADM_IDENTIFY, 0, cdw, buf, 4096, NULL));
	nv = buf[0];
	nuuid = buf[1];
	ASSERT_GE(nv, 1);
	EXPECT_EQ(0, le16(buf + 2));
	ASSERT_GE(nuuid, 1);
	for (i = 0; i < 16; i++)
		if (buf[2 + 2 * nv + i])
			break;
	EXPECT_LT(i, 16) TH_LOG("vendor state UUID is all zeroes");

	/* Commands Supported and Effects: CSUPP for the five LM opcodes */
	cdw[0] = (4096 / 4 - 1) << 16 | 0x05;
	ASSERT_EQ(0, vnl_pf_cmd(self->rig.pffd, 0x02, 0, cdw, buf, 4096, NULL));
	for (i = 0; i < (int)sizeof(lm_opcodes); i++) {
		opc = lm_opcodes[i];
		EXPECT_EQ(1, le32(buf + 4 * opc) & 1)
			TH_LOG("opcode %#x not supported", opc);
	}

	/* NVM Identify Controller: LBAMQF (byte 24) = 0, Type 0 entries */
	cdw[0] = 0x06;
	cdw[1] = 0;	/* CSI 0 */
	memset(buf, 0xff, 4096);
	ASSERT_EQ(0, vnl_pf_cmd(self->rig.pffd, NVME_ADM_IDENTIFY, 0, cdw, buf, 4096, NULL));
	EXPECT_EQ(0, buf[24]);

	/* A VF is a migratable controller: no HMLMS, no LM commands */
	ASSERT_EQ(0, open_vf(_metadata, self->rig.bdf[0], &self->dev[0],
			     &self->ctrl[0], IOVA_A));
	ASSERT_EQ(0, vnl_identify(&self->ctrl[0], 0x01, 0, 0, buf));
	EXPECT_EQ(0, le16(buf + 256) & (1 << 11));
	EXPECT_EQ(ST_INVALID_FIELD, ST(vnl_identify(&self->ctrl[0], 0x20, 0, 0, buf)));
	for (i = 0; i < (int)sizeof(lm_opcodes); i++) {
		opc = lm_opcodes[i];
		sqe = (struct vnl_sqe){ .opc = opc, .cdw11 = self->rig.scid[1] };
		EXPECT_EQ(ST_INVALID_OPCODE,
			  ST(vnl_cmd(&self->ctrl[0], &self->ctrl[0].aq, &sqe, NULL)))
			TH_LOG("opcode %#x on a VF", opc);
	}
	free(buf);
}

/* ---- Suspend and Get Controller State ---- */

TEST_F(mmc, suspend_stops_fetching)
{
	struct vnl_ctrl *c = &self->ctrl[0];
	uint8_t *one, *chunked, *sq, *cq, *data;
	size_t len1, len2;
	uint64_t iova;
	bool csup;
	struct vnl_sqe rd, id, aer;
	bool seen_id = false;
	struct vnl_cqe cqe;
	uint16_t tail;
	int i;

	ASSERT_EQ(0, open_vf(_metadata, self->rig.bdf[0], &self->dev[0],
			     &self->ctrl[0], IOVA_A));
	ASSERT_EQ(0, vnl_create_ioq(c, 1, 16, false, 0)) TH_LOG("%s", vnl_err);
	data = vnl_dma_alloc(&self->dev[0], VNL_PAGE, &iova);
	ASSERT_NE(NULL, data);

	/* an AER outstanding: events raised while suspended queue up */
	aer = (struct vnl_sqe){ .opc = 0x0c };
	vnl_submit(c, &c->aq, &aer);
	ASSERT_EQ(0, vnl_lm_suspend(self->rig.pffd, self->rig.scid[0], 1, false));
	self->suspended[0] = true;
	/* suspending again with the same type is not an error */
	EXPECT_EQ(0, vnl_lm_suspend(self->rig.pffd, self->rig.scid[0], 1, false));

	rd = (struct vnl_sqe){ .opc = NVME_CMD_READ, .nsid = 1, .prp1 = iova };
	vnl_submit(c, &c->ioq, &rd);
	id = (struct vnl_sqe){ .opc = NVME_ADM_IDENTIFY, .prp1 = c->buf_iova,
			       .cdw10 = 1 };
	vnl_submit(c, &c->aq, &id);
	usleep(500000);
	EXPECT_FALSE(cq_pending(&c->ioq)) TH_LOG("I/O executed while suspended");
	EXPECT_FALSE(cq_pending(&c->aq)) TH_LOG("admin executed while suspended");

	/* one read == many small reads; CSUP on every chunk */
	ASSERT_EQ(0, vnl_lm_get_state_all(self->rig.pffd, self->rig.scid[0], 1, 1,
					  1 << 20, &one, &len1, &csup));
	EXPECT_TRUE(csup);
	ASSERT_EQ(0, vnl_lm_get_state_all(self->rig.pffd, self->rig.scid[0], 1, 1,
					  CHUNK_SMALL, &chunked, &len2, &csup));
	EXPECT_TRUE(csup);
	ASSERT_EQ(len1, len2);
	EXPECT_EQ(len1, first_diff(one, chunked, len1))
		TH_LOG("state of %zu bytes differs at %zu", len1,
		       first_diff(one, chunked, len1));
	free(chunked);
	/*
	 * An invalid doorbell write (no SQ 9) raises an error event while
	 * suspended: the snapshot of the suspended controller stays the same
	 */
	vnl_write32(&self->dev[0], vnl_db_offset(c, 9, false), 1);
	usleep(100000);
	ASSERT_EQ(0, vnl_lm_get_state_all(self->rig.pffd, self->rig.scid[0], 1, 1,
					  1 << 20, &chunked, &len2, &csup));
	ASSERT_EQ(len1, len2);
	EXPECT_EQ(len1, first_diff(one, chunked, len1))
		TH_LOG("the state changed while suspended, at byte %zu",
		       first_diff(one, chunked, len1));

	/* header: VER 0, CSATTR suspended, NVMECSS = 2 + 6 * (1 + 1) */
	EXPECT_EQ(0, le16(one));
	EXPECT_EQ(1, one[2] & 1);
	EXPECT_EQ(14, le64(one + 16));
	EXPECT_EQ(0, le64(one + 24));
	EXPECT_GE(le64(one + 32), 1);			/* vendor state present */
	EXPECT_EQ(len1, 48 + 4 * (le64(one + 16) + le64(one + 32)));
	/* NVMe state v0: one I/O SQ, one I/O CQ */
	EXPECT_EQ(0, le16(one + 48));
	EXPECT_EQ(1, le16(one + 50));
	EXPECT_EQ(1, le16(one + 52));
	sq = one + 56;
	cq = sq + 24;
	tail = c->ioq.sq_tail;
	EXPECT_EQ(c->ioq.sq_iova, le64(sq));
	EXPECT_EQ(c->ioq.depth - 1, le16(sq + 8));
	EXPECT_EQ(1, le16(sq + 10));			/* SQID */
	EXPECT_EQ(1, le16(sq + 12));			/* CQID */
	EXPECT_EQ(1, le16(sq + 14) & 1);		/* PC */
	EXPECT_EQ(tail - 1, le16(sq + 16)) TH_LOG("head: the Read is still unfetched");
	EXPECT_EQ(tail, le16(sq + 18));			/* tail doorbell */
	EXPECT_EQ(c->ioq.cq_iova, le64(cq));
	EXPECT_EQ(c->ioq.depth - 1, le16(cq + 8));
	EXPECT_EQ(1, le16(cq + 10));
	EXPECT_EQ(c->ioq.cq_head, le16(cq + 12));
	EXPECT_EQ(c->ioq.cq_head, le16(cq + 14));	/* nothing posted since */
	EXPECT_EQ(1, le32(cq + 16) & 1);		/* PC */
	EXPECT_EQ(0, le32(cq + 16) & 2);		/* IEN off */
	/* S0PT: the phase tag held in slot 0 (the Set Features/Create CQEs
	 * went to the admin CQ; this CQ's slot 0 is still zeroed)
	 */
	EXPECT_EQ(0, le32(cq + 16) & 4);
	free(one);
	free(chunked);

	/* Resume: the pending commands run */
	ASSERT_EQ(0, vnl_lm_resume(self->rig.pffd, self->rig.scid[0]));
	self->suspended[0] = false;
	ASSERT_EQ(0, vnl_wait(c, &c->ioq, &cqe)) TH_LOG("%s", vnl_err);
	EXPECT_EQ(rd.cid, cqe.cid);
	EXPECT_EQ(0, cqe.status >> 1);
	/* the Identify, and the AER completed by the doorbell event */
	for (i = 0; i < 2 && !seen_id; i++) {
		ASSERT_EQ(0, vnl_wait(c, &c->aq, &cqe)) TH_LOG("%s", vnl_err);
		if (cqe.cid == id.cid) {
			seen_id = true;
			EXPECT_EQ(0, cqe.status >> 1);
		} else {
			EXPECT_EQ(aer.cid, cqe.cid);
		}
	}
	EXPECT_TRUE(seen_id);
}

/*
 * Move a running controller from VF1 to VF2: the queues and buffers stay in
 * the same memory (VF2 maps VF1's arena at the same IOVAs), a Read submitted
 * after Suspend completes on VF2, interrupts arrive there, I/O and admin
 * commands go on, and an AER outstanding on VF1 completes on VF2.
 */
TEST_F(mmc, migrate_state_vf1_to_vf2)
{
	struct vnl_ctrl *c = &self->ctrl[0];
	uint8_t *data, *expect, *state;
	uint64_t data_iova;
	size_t len;
	bool csup, seen_aer = false, seen_sf = false;
	struct vnl_sqe rd, aer, sf;
	struct vnl_cqe cqe;
	uint16_t nlb;
	int i;

	ASSERT_EQ(0, open_vf(_metadata, self->rig.bdf[0], &self->dev[0], c, IOVA_A));
	ASSERT_EQ(0, vnl_msix_enable(&self->dev[0], 1)) TH_LOG("%s", vnl_err);
	ASSERT_EQ(0, vnl_create_ioq(c, 1, 16, true, 0)) TH_LOG("%s", vnl_err);
	nlb = VNL_PAGE / c->lba_size;
	data = vnl_dma_alloc(&self->dev[0], VNL_PAGE, &data_iova);
	expect = malloc(VNL_PAGE);
	ASSERT_NE(NULL, data);
	ASSERT_NE(NULL, expect);

	/* an AER left outstanding, for SMART/health critical warnings */
	sf = (struct vnl_sqe){ .opc = NVME_ADM_SET_FEATURES, .cdw10 = 0x0b,
			       .cdw11 = 0xff };
	ASSERT_EQ(0, vnl_cmd(c, &c->aq, &sf, NULL));
	aer = (struct vnl_sqe){ .opc = 0x0c };
	vnl_submit(c, &c->aq, &aer);

	vnl_fill_pattern(expect, VNL_PAGE, 0x5eed);
	memcpy(data, expect, VNL_PAGE);
	ASSERT_EQ(0, vnl_rw(c, NVME_CMD_WRITE, 1, 100, nlb, data_iova));

	/* VF1: suspend, then a Read that must not run here */
	ASSERT_EQ(0, vnl_lm_suspend(self->rig.pffd, self->rig.scid[0], 1, false));
	self->suspended[0] = true;
	memset(data, 0, VNL_PAGE);
	rd = (struct vnl_sqe){ .opc = NVME_CMD_READ, .nsid = 1, .prp1 = data_iova,
			       .cdw10 = 100, .cdw12 = nlb - 1 };
	vnl_submit(c, &c->ioq, &rd);
	ASSERT_EQ(0, vnl_lm_get_state_all(self->rig.pffd, self->rig.scid[0], 1, 1, 256,
					  &state, &len, &csup));
	EXPECT_TRUE(csup);
	usleep(200000);
	EXPECT_FALSE(cq_pending(&c->ioq));

	/* VF2: its own arena, plus VF1's at the same IOVAs */
	ASSERT_EQ(0, open_vf(_metadata, self->rig.bdf[1], &self->dev[1],
			     &self->ctrl[1], IOVA_B));
	ASSERT_EQ(0, vnl_dev_map_arena_of(&self->dev[1], &self->dev[0]))
		TH_LOG("%s", vnl_err);
	ASSERT_EQ(0, vnl_msix_enable(&self->dev[1], 1));
	ASSERT_EQ(0, vnl_lm_suspend(self->rig.pffd, self->rig.scid[1], 1, false));
	self->suspended[1] = true;
	/* in several chunks: first, middle..., last */
	ASSERT_EQ(0, vnl_lm_set_state_all(self->rig.pffd, self->rig.scid[1], 1, 1, 64,
					  state, len)) TH_LOG("%s", vnl_err);
	vnl_irq_count(&self->dev[1], 0, 0);
	ASSERT_EQ(0, vnl_lm_resume(self->rig.pffd, self->rig.scid[1]));
	self->suspended[1] = false;
	free(state);

	/* from now on VF1's queues are driven on VF2 */
	c->dev = &self->dev[1];
	ASSERT_EQ(0, vnl_wait(c, &c->ioq, &cqe)) TH_LOG("%s", vnl_err);
	EXPECT_EQ(rd.cid, cqe.cid);
	EXPECT_EQ(0, cqe.status >> 1);
	EXPECT_EQ(0, memcmp(data, expect, VNL_PAGE));
	EXPECT_GT(vnl_irq_count(&self->dev[1], 0, 10000), 0)
		TH_LOG("no interrupt on VF2 for the migrated CQ");

	/* I/O continues on the same queues */
	vnl_fill_pattern(expect, VNL_PAGE, 0xfeed);
	memcpy(data, expect, VNL_PAGE);
	ASSERT_EQ(0, vnl_rw(c, NVME_CMD_WRITE, 1, 200, nlb, data_iova));
	memset(data, 0, VNL_PAGE);
	ASSERT_EQ(0, vnl_rw(c, NVME_CMD_READ, 1, 200, nlb, data_iova));
	EXPECT_EQ(0, memcmp(data, expect, VNL_PAGE));

	/* admin too: the controller now is VF2's */
	ASSERT_EQ(0, vnl_identify(c, 0x01, 0, 0, NULL)) TH_LOG("%s", vnl_err);
	EXPECT_EQ(self->rig.scid[1], le16((uint8_t *)c->buf + 78));

	/* over-temperature threshold 0 K: a SMART event completes the AER */
	sf = (struct vnl_sqe){ .opc = NVME_ADM_SET_FEATURES, .cdw10 = 0x04,
			       .cdw11 = 0 };
	vnl_submit(c, &c->aq, &sf);
	for (i = 0; i < 2; i++) {
		ASSERT_EQ(0, vnl_wait(c, &c->aq, &cqe)) TH_LOG("%s", vnl_err);
		if (cqe.cid == aer.cid) {
			seen_aer = true;
			EXPECT_EQ(1, cqe.dw0 & 7);	/* SMART / health */
		} else if (cqe.cid == sf.cid) {
			seen_sf = true;
		}
	}
	EXPECT_TRUE(seen_sf);
	EXPECT_TRUE(seen_aer) TH_LOG("the AER outstanding on VF1 did not complete on VF2");
	free(expect);
}

#define MAX_GRANULES	256

/*
 * Read and clear the tracked changes: fills @set with the start addresses
 * of the granules reported (each descriptor expanded), returns how many, or
 * -1.  @attrb and @rpmpg return the header fields.
 */
static int track_recv_all(struct __test_metadata *_metadata, int fd,
			  uint16_t cntlid, uint64_t *set, uint8_t *attrb,
			  uint16_t *rpmpg)
{
	uint8_t *buf = calloc(1, 4096);
	uint32_t ntmcd, i, j, glen;
	uint64_t gran, addr;
	int n = 0, ret;

	if (!buf)
		return -1;
	ret = vnl_lm_track_recv(fd, cntlid, buf, 4096);
	if (ret) {
		TH_LOG("Track Receive: %#x", ret);
		free(buf);
		return -1;
	}
	*attrb = buf[1];
	*rpmpg = le16(buf + 8);
	ntmcd = le32(buf + 4);
	gran = 4096ull << *rpmpg;
	if (buf[0] != 0 || le16(buf + 2) != cntlid || ntmcd > 255) {
		TH_LOG("bad header: ver %u cntlid %u ntmcd %u", buf[0],
		       le16(buf + 2), ntmcd);
		free(buf);
		return -1;
	}
	for (i = 0; i < ntmcd; i++) {
		addr = le64(buf + 16 + 16 * i);
		glen = le32(buf + 24 + 16 * i);
		if (addr % gran || !glen) {
			TH_LOG("bad descriptor %u: %#llx len %u", i,
			       (unsigned long long)addr, glen);
			free(buf);
			return -1;
		}
		for (j = 0; j < glen && n < MAX_GRANULES; j++)
			set[n++] = addr + j * gran;
	}
	free(buf);
	return n;
}

static bool in_set(const uint64_t *set, int n, uint64_t v)
{
	int i;

	for (i = 0; i < n; i++)
		if (set[i] == v)
			return true;
	return false;
}

/* exactly the granules of @want (addresses rounded down) were reported */
static bool same_granules(const uint64_t *got, int ngot, const uint64_t *want,
			  int nwant, uint64_t gran)
{
	uint64_t w[16];
	int i, nw = 0;

	for (i = 0; i < nwant; i++)
		if (!in_set(w, nw, want[i] & ~(gran - 1)))
			w[nw++] = want[i] & ~(gran - 1);
	if (nw != ngot)
		return false;
	for (i = 0; i < nw; i++)
		if (!in_set(got, ngot, w[i]))
			return false;
	return true;
}

/*
 * Track Memory Changes reports exactly the pages VF1 wrote (Identify data,
 * Read payload, admin and I/O CQ entries) at two granularities, nothing
 * after read-and-clear, nothing outside the tracked range, and SUSP once
 * the controller is suspended.
 */
TEST_F(mmc, tracking_reports_written_pages)
{
	struct vnl_ctrl *c = &self->ctrl[0];
	struct vnl_range range = { IOVA_A, ARENA_SIZE / 2 };
	uint64_t set[MAX_GRANULES], want[8], in_iova, out_iova, gran;
	uint8_t *in, *out, attrb;
	uint16_t rpmpg;
	int n, g;
	static const uint8_t rmrtg[] = { 0, 4 };	/* 4 KiB, 64 KiB */

	ASSERT_EQ(0, open_vf(_metadata, self->rig.bdf[0], &self->dev[0], c, IOVA_A));
	ASSERT_EQ(0, vnl_create_ioq(c, 1, 16, false, 0)) TH_LOG("%s", vnl_err);
	in = vnl_dma_alloc(&self->dev[0], VNL_PAGE, &in_iova);
	ASSERT_NE(NULL, in);
	/* a buffer in the upper half of the arena, outside the range */
	self->dev[0].dma_used = ARENA_SIZE / 2 + 7 * VNL_PAGE;
	out = vnl_dma_alloc(&self->dev[0], VNL_PAGE, &out_iova);
	ASSERT_NE(NULL, out);

	for (g = 0; g < (int)sizeof(rmrtg); g++) {
		gran = 4096ull << rmrtg[g];
		ASSERT_EQ(0, vnl_lm_track_mem(self->rig.pffd, self->rig.scid[0], true,
					      rmrtg[g], &range, 1, NULL, NULL));
		self->tracking = true;
		/* nothing written yet */
		n = track_recv_all(_metadata, self->rig.pffd, self->rig.scid[0], set,
				   &attrb, &rpmpg);
		ASSERT_EQ(0, n);
		EXPECT_EQ(0, attrb);
		EXPECT_EQ(rmrtg[g], rpmpg);

		ASSERT_EQ(0, vnl_identify(c, 0x01, 0, 0, NULL));
		ASSERT_EQ(0, vnl_rw(c, NVME_CMD_READ, 1, 0, 1, in_iova));
		ASSERT_EQ(0, vnl_rw(c, NVME_CMD_READ, 1, 0, 1, out_iova));
		want[0] = c->buf_iova;		/* Identify data */
		want[1] = c->aq.cq_iova;	/* admin CQE */
		want[2] = in_iova;		/* Read payload */
		want[3] = c->ioq.cq_iova;	/* I/O CQEs */
		n = track_recv_all(_metadata, self->rig.pffd, self->rig.scid[0], set,
				   &attrb, &rpmpg);
		ASSERT_LT(0, n);
		EXPECT_TRUE(same_granules(set, n, want, 4, gran))
			TH_LOG("granule %#llx: %d granules reported",
			       (unsigned long long)gran, n);
		EXPECT_FALSE(in_set(set, n, out_iova & ~(gran - 1)));
		EXPECT_EQ(0, attrb & 1);	/* no MTR */

		/* read and clear: nothing new */
		n = track_recv_all(_metadata, self->rig.pffd, self->rig.scid[0], set,
				   &attrb, &rpmpg);
		EXPECT_EQ(0, n);

		ASSERT_EQ(0, vnl_lm_track_mem(self->rig.pffd, self->rig.scid[0], false,
					      0, NULL, 0, NULL, NULL));
		self->tracking = false;
	}

	/* SUSP: the controller was suspended during the Track Receive */
	ASSERT_EQ(0, vnl_lm_track_mem(self->rig.pffd, self->rig.scid[0], true, 0,
				      &range, 1, NULL, NULL));
	self->tracking = true;
	ASSERT_EQ(0, vnl_lm_suspend(self->rig.pffd, self->rig.scid[0], 1, false));
	self->suspended[0] = true;
	n = track_recv_all(_metadata, self->rig.pffd, self->rig.scid[0], set, &attrb,
			   &rpmpg);
	EXPECT_EQ(0, n);
	EXPECT_EQ(2, attrb & 2);
	ASSERT_EQ(0, vnl_lm_resume(self->rig.pffd, self->rig.scid[0]));
	self->suspended[0] = false;
}

/* Every status of the digest's tables that needs no CDQ, from a bad input. */
TEST_F(mmc, negative_statuses)
{
	struct vnl_ctrl *c = &self->ctrl[0];
	uint16_t vf1 = self->rig.scid[0], vf2 = self->rig.scid[1], pfid;
	struct vnl_range range = { IOVA_A, ARENA_SIZE }, many[340];
	uint8_t *buf = calloc(1, 4096), *state;
	uint32_t cdw[6] = {}, dw0, dw1;
	size_t len;
	int i, n;

	ASSERT_NE(NULL, buf);
	cdw[0] = 0x01;
	ASSERT_EQ(0, vnl_pf_cmd(self->rig.pffd, NVME_ADM_IDENTIFY, 0, cdw, buf, 4096, NULL));
	pfid = le16(buf + 78);

	/* 1Fh Invalid Controller Identifier: the MMC itself, no such ctrl */
	EXPECT_EQ(ST_INVALID_CTRL_ID, ST(vnl_lm_suspend(self->rig.pffd, pfid, 1, false)));
	EXPECT_EQ(ST_INVALID_CTRL_ID, ST(vnl_lm_suspend(self->rig.pffd, 0x7ff, 1, false)));
	EXPECT_EQ(ST_INVALID_CTRL_ID, ST(vnl_lm_resume(self->rig.pffd, 0x7ff)));
	EXPECT_EQ(ST_INVALID_CTRL_ID,
		  ST(vnl_lm_get_state(self->rig.pffd, pfid, 1, 0, 0, buf, 48, NULL)));
	EXPECT_EQ(ST_INVALID_CTRL_ID,
		  ST(vnl_lm_track_mem(self->rig.pffd, pfid, true, 0, &range, 1, NULL, NULL)));
	EXPECT_EQ(ST_INVALID_CTRL_ID, ST(vnl_lm_track_recv(self->rig.pffd, vf1, buf, 64)))
		TH_LOG("Track Receive of an untracked controller");

	/* 3Ah Controller Not Suspended */
	EXPECT_EQ(ST_CTRL_NOT_SUSPENDED, ST(vnl_lm_resume(self->rig.pffd, vf1)));

	/* the Set targets below: VF2, suspended */
	ASSERT_EQ(0, vnl_lm_suspend(self->rig.pffd, vf2, 1, false));
	self->suspended[1] = true;

	/* Invalid Field on Get Controller State */
	EXPECT_EQ(ST_INVALID_FIELD,
		  ST(vnl_lm_get_state(self->rig.pffd, vf1, 1, 0, 2, buf, 48, NULL)));
	EXPECT_EQ(ST_INVALID_FIELD,
		  ST(vnl_lm_get_state(self->rig.pffd, vf1, 1, 0, 1 << 20, buf, 48, NULL)));
	EXPECT_EQ(ST_INVALID_FIELD,
		  ST(vnl_lm_get_state(self->rig.pffd, vf1, 9, 0, 0, buf, 48, NULL)));
	EXPECT_EQ(ST_INVALID_FIELD,
		  ST(vnl_lm_get_state(self->rig.pffd, vf1, 1, 9, 0, buf, 48, NULL)));

	/* Set Controller State: sequence errors and bad fields */
	EXPECT_EQ(ST_CMD_SEQ_ERROR,
		  ST(vnl_lm_set_state(self->rig.pffd, vf2, 1, 1, VNL_SEQ_MIDDLE, 48, buf, 64)));
	EXPECT_EQ(ST_CMD_SEQ_ERROR,
		  ST(vnl_lm_set_state(self->rig.pffd, vf2, 1, 1, VNL_SEQ_LAST, 48, buf, 0)));
	EXPECT_EQ(ST_INVALID_FIELD,
		  ST(vnl_lm_set_state(self->rig.pffd, vf2, 0, 0, VNL_SEQ_ONLY, 0, buf, 48)));
	EXPECT_EQ(ST_INVALID_FIELD,
		  ST(vnl_lm_set_state(self->rig.pffd, vf2, 1, 1, VNL_SEQ_FIRST, 2, buf, 64)));

	/* a real state: VF1 with an I/O queue pair, suspended */
	ASSERT_EQ(0, suspended_vf1_state(_metadata, &self->rig, &self->dev[0],
					 c, &self->suspended[0], &state, &len));
	/* NVMe state onto a controller that has I/O queues: Invalid Field */
	EXPECT_EQ(ST_INVALID_FIELD,
		  ST(vnl_lm_set_state_all(self->rig.pffd, vf1, 1, 1, 4096, state, len)));
	/* CSVI 0 with NVMECSS != 0 */
	EXPECT_EQ(ST_INVALID_FIELD,
		  ST(vnl_lm_set_state_all(self->rig.pffd, vf2, 0, 1, 4096, state, len)));
	/* first chunk received, not committed: Resume is a sequence error */
	ASSERT_EQ(0, vnl_lm_set_state(self->rig.pffd, vf2, 1, 1, VNL_SEQ_FIRST, 0,
				      state, 48));
	EXPECT_EQ(ST_CMD_SEQ_ERROR, ST(vnl_lm_resume(self->rig.pffd, vf2)));
	/* a new "first" discards the sequence; then a complete one commits */
	ASSERT_EQ(0, vnl_lm_set_state_all(self->rig.pffd, vf2, 1, 1, 64, state, len));
	free(state);

	/* 39h Controller Suspended: no tracking changes on a suspended target */
	EXPECT_EQ(ST_CTRL_SUSPENDED,
		  ST(vnl_lm_track_mem(self->rig.pffd, vf1, true, 0, &range, 1, NULL, NULL)));
	ASSERT_EQ(0, vnl_lm_resume(self->rig.pffd, vf1));
	self->suspended[0] = false;

	/* Track Memory Changes: bad version, granularity, alignment, length */
	memset(buf, 0, 64);
	buf[0] = 1;				/* VER 1 */
	buf[4] = 1;
	cdw[0] = 1 << 16 | 1;
	cdw[1] = vf1;
	EXPECT_EQ(ST_INVALID_FIELD,
		  ST(vnl_pf_cmd(self->rig.pffd, VNL_OPC_TRACK_SEND, 0, cdw, buf, 20, NULL)));
	EXPECT_EQ(ST_INVALID_FIELD,
		  ST(vnl_lm_track_mem(self->rig.pffd, vf1, true, 40, &range, 1, NULL, NULL)));
	range.addr += 0x800;
	EXPECT_EQ(ST_INVALID_FIELD,
		  ST(vnl_lm_track_mem(self->rig.pffd, vf1, true, 0, &range, 1, NULL, NULL)));
	range.addr = IOVA_A;
	range.len = 0;
	EXPECT_EQ(ST_INVALID_FIELD,
		  ST(vnl_lm_track_mem(self->rig.pffd, vf1, true, 0, &range, 1, NULL, NULL)));
	/* more descriptors than CMMRTD (Identify bytes 571:570): Invalid Field */
	cdw[0] = 0x01;
	ASSERT_EQ(0, vnl_pf_cmd(self->rig.pffd, NVME_ADM_IDENTIFY, 0, cdw, buf, 4096, NULL));
	n = le16(buf + 570) + 1;
	ASSERT_LE(n, 340);
	for (i = 0; i < n; i++) {
		many[i].addr = IOVA_A + 2ull * i * VNL_PAGE;
		many[i].len = VNL_PAGE;
	}
	EXPECT_EQ(ST_INVALID_FIELD,
		  ST(vnl_lm_track_mem(self->rig.pffd, vf1, true, 0, many, n, NULL, NULL)));
	/*
	 * 38h Not Enough Resources: within the limits but too fine to track
	 * (2 TiB in 4 KiB granules); DW0 is the finest granularity it can do,
	 * DW1 how many descriptors it can track at that granularity
	 */
	range.addr = 0;
	range.len = 2ull << 40;
	dw0 = ~0u;
	dw1 = ~0u;
	EXPECT_EQ(ST_NOT_ENOUGH_RES,
		  ST(vnl_lm_track_mem(self->rig.pffd, vf1, true, 0, &range, 1, &dw0, &dw1)));
	EXPECT_GT(dw0 & 0xffff, 0);
	EXPECT_LE(dw0 & 0xffff, buf[575]) TH_LOG("MRTG %u above MAXMRTG", dw0 & 0xffff);
	EXPECT_EQ(1, dw1);
	/* that granularity is accepted */
	ASSERT_EQ(0, vnl_lm_track_mem(self->rig.pffd, vf1, true, dw0 & 0xffff, &range,
				      1, NULL, NULL));
	self->tracking = true;
	ASSERT_EQ(0, vnl_lm_track_mem(self->rig.pffd, vf1, false, 0, NULL, 0, NULL, NULL));
	self->tracking = false;
	range.addr = IOVA_A;
	/* and a second start on a tracked controller: 1Fh */
	range.len = ARENA_SIZE;
	ASSERT_EQ(0, vnl_lm_track_mem(self->rig.pffd, vf1, true, 0, &range, 1, NULL, NULL));
	self->tracking = true;
	EXPECT_EQ(ST_INVALID_CTRL_ID,
		  ST(vnl_lm_track_mem(self->rig.pffd, vf1, true, 0, &range, 1, NULL, NULL)));
	free(buf);
}

/*
 * Malformed Set Controller State buffers, from a real state with random
 * corruption: QEMU stays alive, nothing half-built is left, and the target
 * VF still takes a valid state and works afterwards.
 */
TEST_F(mmc, fuzz_set_state)
{
	struct vnl_ctrl *c = &self->ctrl[0];
	uint16_t vf2 = self->rig.scid[1];
	uint8_t *state, *bad;
	size_t len, blen;
	unsigned int seed = 1;
	int i, k, ret, accepted = 0;

	ASSERT_EQ(0, suspended_vf1_state(_metadata, &self->rig, &self->dev[0],
					 c, &self->suspended[0], &state, &len));
	bad = malloc(len + 256);
	ASSERT_NE(NULL, bad);
	/* open VF2 first: opening a VFIO device resets the function */
	ASSERT_EQ(0, open_vf(_metadata, self->rig.bdf[1], &self->dev[1], NULL, IOVA_B));
	ASSERT_EQ(0, vnl_dev_map_arena_of(&self->dev[1], &self->dev[0]));
	ASSERT_EQ(0, vnl_lm_suspend(self->rig.pffd, vf2, 1, false));
	self->suspended[1] = true;

	for (i = 0; i < 300; i++) {
		memcpy(bad, state, len);
		blen = len;
		switch (i % 4) {
		case 0:		/* random bytes anywhere */
			for (k = 0; k < 4; k++)
				bad[rand_r(&seed) % len] = rand_r(&seed);
			break;
		case 1:		/* a random dword in the NVMe state */
			k = 48 + 4 * (rand_r(&seed) % ((len - 48) / 4));
			memset(bad + k, rand_r(&seed), 4);
			break;
		case 2:		/* truncated or padded */
			blen = 4 * (1 + rand_r(&seed) % ((len + 255) / 4));
			if (blen > len)
				memset(bad + len, rand_r(&seed), blen - len);
			break;
		default:	/* header sizes */
			bad[16 + rand_r(&seed) % 32] = rand_r(&seed);
			break;
		}
		ret = vnl_lm_set_state_all(self->rig.pffd, vf2, 1, 1,
					   4 * (1 + rand_r(&seed) % 64), bad, blen);
		ASSERT_LE(0, ret) TH_LOG("iteration %d: ioctl failed: %s", i, vnl_err);
		if (ret)
			continue;
		/*
		 * Some corruptions are valid states (a head pointer moved
		 * within the queue...).  The committed state has I/O queues:
		 * reset VF2 to take the next one.
		 */
		accepted++;
		ASSERT_EQ(0, vnl_dev_reset(&self->dev[1])) TH_LOG("%s", vnl_err);
		/*
		 * nvme-vfio-pci resumes a VF after a reset, outside the
		 * reset itself; it is done once the migration state can
		 * be read.  Only then suspend VF2 by hand.
		 */
		vnl_mig_get_state(&self->dev[1]);
		ASSERT_EQ(0, vnl_lm_suspend(self->rig.pffd, vf2, 1, false));
	}
	TH_LOG("%d of 300 corrupted states accepted", accepted);

	/* the PF still answers, and VF2 takes the good state and runs it */
	ASSERT_EQ(0, vnl_lm_set_state_all(self->rig.pffd, vf2, 1, 1, 128, state, len));
	ASSERT_EQ(0, vnl_lm_resume(self->rig.pffd, vf2));
	self->suspended[1] = false;
	c->dev = &self->dev[1];
	ASSERT_EQ(0, vnl_identify(c, 0x01, 0, 0, NULL)) TH_LOG("%s", vnl_err);
	EXPECT_EQ(vf2, le16((uint8_t *)c->buf + 78));
	ASSERT_EQ(0, vnl_rw(c, NVME_CMD_READ, 1, 0, 1, c->buf_iova));
	free(bad);
	free(state);
}

/* ---- Vendor state: what a passthrough guest sees besides the queues ---- */

/*
 * A namespace change pending on VF1 (NSID 1 in its Changed Namespace List,
 * the Notice event queued with no AER outstanding) is seen on VF2: the AER
 * completes there and the log page lists NSID 1, once.
 */
TEST_F(mmc, migrate_changed_ns_list)
{
	struct vnl_ctrl *c = &self->ctrl[0];
	uint32_t *log = NULL;
	struct vnl_sqe aer;
	struct vnl_cqe cqe;
	uint8_t *state;
	size_t len;

	ASSERT_EQ(0, open_vf(_metadata, self->rig.bdf[0], &self->dev[0], c, IOVA_A));
	/* forget changes other tests made (reading the log clears it) */
	ASSERT_EQ(0, get_log_page(c, 0x04, false, 4096)) TH_LOG("%s", vnl_err);
	/* detach and attach again: the attachment of NSID 1 changed on VF1 */
	ASSERT_EQ(0, ns_attach_pf(self->rig.pffd, 1, self->rig.scid[0], false));
	ASSERT_EQ(0, ns_attach_pf(self->rig.pffd, 1, self->rig.scid[0], true));
	ASSERT_EQ(0, vnl_lm_suspend(self->rig.pffd, self->rig.scid[0], 1, false));
	self->suspended[0] = true;
	ASSERT_EQ(0, vnl_lm_get_state_all(self->rig.pffd, self->rig.scid[0], 1, 1, 4096,
					  &state, &len, NULL));
	ASSERT_EQ(0, TO_VF2(state, len, false));
	free(state);

	/* the queued event completes an AER on VF2: Notice, NS attribute, 04h */
	aer = (struct vnl_sqe){ .opc = 0x0c };
	vnl_submit(c, &c->aq, &aer);
	ASSERT_EQ(0, vnl_wait(c, &c->aq, &cqe)) TH_LOG("%s", vnl_err);
	EXPECT_EQ(aer.cid, cqe.cid);
	EXPECT_EQ(0x040002, cqe.dw0 & 0xffffff) TH_LOG("AER DW0 %#x", cqe.dw0);

	/* the log page has NSID 1, and reading it (RAE 0) clears the list */
	ASSERT_EQ(0, get_log_page(c, 0x04, false, 4096)) TH_LOG("%s", vnl_err);
	log = c->buf;
	EXPECT_EQ(1, log[0]) TH_LOG("Changed Namespace List starts with %#x", log[0]);
	EXPECT_EQ(0, log[1]);
	ASSERT_EQ(0, get_log_page(c, 0x04, false, 4096)) TH_LOG("%s", vnl_err);
	EXPECT_EQ(0, log[0]);
}

/*
 * The Error Recovery feature (DULBE, TLER) of namespace 1 is carried.  In
 * QEMU the value lives in the namespace object every controller shares, so
 * the destination's differing value is simulated by a Set Features on the
 * PF between Get and Set Controller State.
 */
TEST_F(mmc, migrate_error_recovery)
{
	struct vnl_ctrl *c = &self->ctrl[0];
	const uint32_t err_rec = 1u << 16 | 0x20;	/* DULBE, TLER 3.2 s */
	struct vnl_sqe sf;
	uint8_t *state, *bad;
	uint32_t dw0;
	size_t len;

	ASSERT_EQ(0, open_vf(_metadata, self->rig.bdf[0], &self->dev[0], c, IOVA_A));
	sf = (struct vnl_sqe){ .opc = NVME_ADM_SET_FEATURES, .nsid = 1, .cdw10 = 0x05,
			       .cdw11 = err_rec };
	self->err_rec_set = true;
	ASSERT_EQ(0, vnl_cmd(c, &c->aq, &sf, NULL));
	ASSERT_EQ(0, get_feature(c, 0x05, 1, &dw0));
	ASSERT_EQ(err_rec, dw0) TH_LOG("namespace 1 without DULBE support?");
	ASSERT_EQ(0, vnl_lm_suspend(self->rig.pffd, self->rig.scid[0], 1, false));
	self->suspended[0] = true;
	ASSERT_EQ(0, vnl_lm_get_state_all(self->rig.pffd, self->rig.scid[0], 1, 1, 4096,
					  &state, &len, NULL));
	ASSERT_EQ(0, set_feature_pf(self->rig.pffd, 0x05, 1, 0));

	ASSERT_EQ(0, TO_VF2(state, len, false));
	ASSERT_EQ(0, get_feature(c, 0x05, 1, &dw0)) TH_LOG("%s", vnl_err);
	EXPECT_EQ(err_rec, dw0) TH_LOG("Error Recovery on VF2: %#x", dw0);

	/* strict: the last entry (NSID 1) naming a namespace VF2 lacks */
	ASSERT_EQ(0, vnl_lm_suspend(self->rig.pffd, self->rig.scid[1], 1, false));
	self->suspended[1] = true;
	bad = malloc(len);
	ASSERT_NE(NULL, bad);
	memcpy(bad, state, len);
	ASSERT_EQ(1, le32(bad + len - 8));
	bad[len - 8] = 2;
	EXPECT_EQ(ST_INVALID_FIELD, ST(vnl_lm_set_state_all(self->rig.pffd,
							    self->rig.scid[1], 1, 1,
							    4096, bad, len)));
	free(bad);
	free(state);
}

/*
 * Set accepts the vendor state of version 1 (no header extension, no
 * Changed Namespace List, no Error Recovery list), and only with its own
 * header length.
 */
TEST_F(mmc, set_state_vendor_v1)
{
	struct vnl_ctrl *c = &self->ctrl[0];
	uint8_t *state, *v1, *vs;
	size_t len, vs_off, vs_len, tail, v1_len;
	uint16_t vf2 = self->rig.scid[1];

	ASSERT_EQ(0, suspended_vf1_state(_metadata, &self->rig, &self->dev[0], c,
					 &self->suspended[0], &state, &len));
	vs_off = 48 + 4 * le64(state + 16);
	vs_len = 4 * le64(state + 32);
	ASSERT_EQ(len, vs_off + vs_len);
	vs = state + vs_off;
	ASSERT_EQ(2, le16(vs + 4));
	ASSERT_EQ(136, le16(vs + 6));
	/* drop the extension (128..135) and the two trailing lists */
	tail = 4 * le16(vs + 128) + 8 * le16(vs + 130);
	ASSERT_LE(136 + tail, vs_len);
	v1_len = vs_len - 8 - tail;
	v1 = calloc(1, vs_off + v1_len);
	ASSERT_NE(NULL, v1);
	memcpy(v1, state, vs_off + 128);
	memcpy(v1 + vs_off + 128, vs + 136, vs_len - 136 - tail);
	v1[32] = v1_len / 4;
	v1[33] = v1_len / 4 >> 8;
	v1[vs_off + 4] = 1;			/* VERSION 1 */
	v1[vs_off + 6] = 128;			/* HDRLEN */
	v1[vs_off + 8] = v1_len;		/* SIZE */
	v1[vs_off + 9] = v1_len >> 8;

	ASSERT_EQ(0, open_vf(_metadata, self->rig.bdf[1], &self->dev[1], NULL, IOVA_B));
	ASSERT_EQ(0, vnl_lm_suspend(self->rig.pffd, vf2, 1, false));
	self->suspended[1] = true;
	/* version 1 with the header length of version 2, and the reverse */
	v1[vs_off + 6] = 136;
	EXPECT_EQ(ST_INVALID_FIELD,
		  ST(vnl_lm_set_state_all(self->rig.pffd, vf2, 1, 1, 4096, v1,
					  vs_off + v1_len)));
	v1[vs_off + 6] = 128;
	vs[6] = 128;
	EXPECT_EQ(ST_INVALID_FIELD,
		  ST(vnl_lm_set_state_all(self->rig.pffd, vf2, 1, 1, 4096, state, len)));
	vs[6] = 136;

	ASSERT_EQ(0, TO_VF2(v1, vs_off + v1_len, true));
	ASSERT_EQ(0, vnl_identify(c, 0x01, 0, 0, NULL)) TH_LOG("%s", vnl_err);
	EXPECT_EQ(vf2, le16((uint8_t *)c->buf + 78));
	EXPECT_EQ(0, vnl_rw(c, NVME_CMD_READ, 1, 0, 1, c->buf_iova));
	free(v1);
	free(state);
}

/*
 * Number of Queues on the destination reports what the source's host was
 * granted (VF1: one I/O queue pair), not VF2's own resources, and the
 * grant holds for queue creation.
 */
TEST_F(mmc, migrate_num_queues)
{
	struct vnl_ctrl *c = &self->ctrl[0];
	uint32_t src_nq, dst_nq, dw0;
	uint16_t nvq, nvi;
	struct vnl_sqe sqe;
	uint8_t *state;
	size_t len;

	ASSERT_EQ(0, sec_ctrl_res(self->rig.pffd, self->rig.scid[0], &nvq, &nvi));
	ASSERT_GT(nvq, 2) TH_LOG("VF1 has %u VQ resources", nvq);
	self->vf1_nvq = nvq;
	self->vf1_nvi = nvi;
	ASSERT_EQ(0, vnl_pf_vf_online(self->rig.pffd, self->rig.pf, self->rig.vfn[0] - 1,
				      2, nvi, NULL)) TH_LOG("%s", vnl_err);

	ASSERT_EQ(0, open_vf(_metadata, self->rig.bdf[0], &self->dev[0], c, IOVA_A));
	ASSERT_EQ(0, vnl_create_ioq(c, 1, 16, false, 0)) TH_LOG("%s", vnl_err);
	ASSERT_EQ(0, get_feature(c, 0x07, 0, &src_nq));
	EXPECT_EQ(0, src_nq);		/* one SQ, one CQ (0's based) */
	ASSERT_EQ(0, vnl_lm_suspend(self->rig.pffd, self->rig.scid[0], 1, false));
	self->suspended[0] = true;
	ASSERT_EQ(0, vnl_lm_get_state_all(self->rig.pffd, self->rig.scid[0], 1, 1, 4096,
					  &state, &len, NULL));

	/* VF2 by itself reports its own, larger, resources */
	ASSERT_EQ(0, open_vf(_metadata, self->rig.bdf[1], &self->dev[1], &self->ctrl[1],
			     IOVA_B));
	ASSERT_EQ(0, get_feature(&self->ctrl[1], 0x07, 0, &dst_nq));
	ASSERT_NE(src_nq, dst_nq);

	ASSERT_EQ(0, TO_VF2(state, len, true));
	free(state);
	ASSERT_EQ(0, get_feature(c, 0x07, 0, &dw0)) TH_LOG("%s", vnl_err);
	EXPECT_EQ(src_nq, dw0) TH_LOG("Number of Queues on VF2 %#x, VF1 had %#x", dw0,
				      src_nq);
	/* a second I/O CQ is beyond the grant: Invalid Queue Identifier */
	sqe = (struct vnl_sqe){ .opc = NVME_ADM_CREATE_CQ, .prp1 = c->buf_iova,
				.cdw10 = 1u << 16 | 2, .cdw11 = 1 };
	EXPECT_EQ(0x101, vnl_cmd(c, &c->aq, &sqe, NULL));
	/* the migrated I/O queue pair works */
	EXPECT_EQ(0, vnl_rw(c, NVME_CMD_READ, 1, 0, 1, c->buf_iova));
}

/*
 * Get Controller State with NVMe state only (CSUUIDI 0) would drop an
 * outstanding AER or a completion not yet posted: Command Sequence Error.
 * With neither it works; the bare header (CSVI 0) is always returned.
 */
TEST_F(mmc, get_state_nvme_only)
{
	struct vnl_ctrl *c = &self->ctrl[0];
	uint16_t vf1 = self->rig.scid[0];
	struct vnl_sqe aer, rd[2];
	uint8_t hdr[48], *state;
	struct vnl_cqe cqe;
	uint64_t iova;
	size_t len;
	int i;

	ASSERT_EQ(0, open_vf(_metadata, self->rig.bdf[0], &self->dev[0], c, IOVA_A));
	/* a CQ of two entries: one completion posted fills it */
	ASSERT_EQ(0, vnl_create_ioq(c, 1, 2, false, 0)) TH_LOG("%s", vnl_err);
	ASSERT_NE(NULL, vnl_dma_alloc(&self->dev[0], VNL_PAGE, &iova));

	/* an outstanding AER */
	aer = (struct vnl_sqe){ .opc = 0x0c };
	vnl_submit(c, &c->aq, &aer);
	usleep(100000);
	ASSERT_EQ(0, vnl_lm_suspend(self->rig.pffd, vf1, 1, false));
	self->suspended[0] = true;
	EXPECT_EQ(ST_CMD_SEQ_ERROR, ST(vnl_lm_get_state(self->rig.pffd, vf1, 1, 0, 0, hdr,
							sizeof(hdr), NULL)));
	EXPECT_EQ(0, vnl_lm_get_state(self->rig.pffd, vf1, 1, 1, 0, hdr, sizeof(hdr), NULL));
	EXPECT_EQ(0, vnl_lm_get_state(self->rig.pffd, vf1, 0, 0, 0, hdr, sizeof(hdr), NULL));
	ASSERT_EQ(0, vnl_lm_resume(self->rig.pffd, vf1));
	self->suspended[0] = false;

	/* an invalid doorbell write (no SQ 9) completes the AER */
	vnl_write32(&self->dev[0], vnl_db_offset(c, 9, false), 1);
	ASSERT_EQ(0, vnl_wait(c, &c->aq, &cqe)) TH_LOG("%s", vnl_err);
	ASSERT_EQ(aer.cid, cqe.cid);

	/* idle: the NVMe state alone is returned */
	ASSERT_EQ(0, vnl_lm_suspend(self->rig.pffd, vf1, 1, false));
	self->suspended[0] = true;
	ASSERT_EQ(0, vnl_lm_get_state_all(self->rig.pffd, vf1, 1, 0, 4096, &state, &len,
					  NULL));
	EXPECT_EQ(48 + 4 * 14, len);
	EXPECT_EQ(0, le64(state + 32));		/* VSS */
	free(state);
	ASSERT_EQ(0, vnl_lm_resume(self->rig.pffd, vf1));
	self->suspended[0] = false;

	/* two Reads: the first fills the CQ, the second's completion waits */
	for (i = 0; i < 2; i++) {
		rd[i] = (struct vnl_sqe){ .opc = NVME_CMD_READ, .nsid = 1, .prp1 = iova };
		vnl_submit(c, &c->ioq, &rd[i]);
		usleep(200000);
		ASSERT_TRUE(cq_pending(&c->ioq));
	}
	ASSERT_EQ(0, vnl_lm_suspend(self->rig.pffd, vf1, 1, false));
	self->suspended[0] = true;
	EXPECT_EQ(ST_CMD_SEQ_ERROR, ST(vnl_lm_get_state(self->rig.pffd, vf1, 1, 0, 0, hdr,
							sizeof(hdr), NULL)));
	/* with the vendor state: the completion travels in it (NCQE 1) */
	ASSERT_EQ(0, vnl_lm_get_state_all(self->rig.pffd, vf1, 1, 1, 4096, &state, &len,
					  NULL));
	EXPECT_EQ(1, le32(state + 48 + 4 * le64(state + 16) + 124));
	free(state);
	ASSERT_EQ(0, vnl_lm_resume(self->rig.pffd, vf1));
	self->suspended[0] = false;
	for (i = 0; i < 2; i++) {
		ASSERT_EQ(0, vnl_wait(c, &c->ioq, &cqe)) TH_LOG("%s", vnl_err);
		EXPECT_EQ(rd[i].cid, cqe.cid);
	}
}

/*
 * The rig's fault injection: the next N commands of a kind fail with the
 * chosen status, then commands work again.
 */
TEST_F(mmc, fault_injection)
{
	uint16_t vf1 = self->rig.scid[0];
	uint8_t buf[48];
	int i;

	/* two Suspends fail with Internal Error + DNR, the third works */
	ASSERT_EQ(0, vnl_lm_fault("nvme0", "suspend", 2, 0x4006)) TH_LOG("%s", vnl_err);
	for (i = 0; i < 2; i++)
		EXPECT_EQ(0x4006, vnl_lm_suspend(self->rig.pffd, vf1, 1, false));
	ASSERT_EQ(0, vnl_lm_suspend(self->rig.pffd, vf1, 1, false));
	self->suspended[0] = true;

	/* one Get Controller State fails with a chosen generic status */
	ASSERT_EQ(0, vnl_lm_fault("nvme0", "get-state", 1, 0x0004));
	EXPECT_EQ(0x0004, vnl_lm_get_state(self->rig.pffd, vf1, 1, 1, 0, buf, 48, NULL));
	EXPECT_EQ(0, vnl_lm_get_state(self->rig.pffd, vf1, 1, 1, 0, buf, 48, NULL));

	/* Resume, with a fault armed for another kind: not affected */
	ASSERT_EQ(0, vnl_lm_fault("nvme0", "track-recv", 1, 0x0006));
	ASSERT_EQ(0, vnl_lm_resume(self->rig.pffd, vf1));
	self->suspended[0] = false;
	ASSERT_EQ(0, vnl_lm_fault("nvme0", "none", 0, 0x0006));
}

/* Virtualization Management statuses (20h, 21h, 22h, 1Fh) on the MMC */
TEST_F(mmc, virt_mgmt_statuses)
{
	uint8_t *buf = calloc(1, 4096);
	uint32_t cdw[6] = { 0x01 };
	uint16_t pfid;

	ASSERT_NE(NULL, buf);
	ASSERT_EQ(0, vnl_pf_cmd(self->rig.pffd, NVME_ADM_IDENTIFY, 0, cdw, buf, 4096, NULL));
	pfid = le16(buf + 78);
	free(buf);

	/* 1Fh: no such secondary controller */
	cdw[0] = 0x7ff << 16 | VNL_VM_OFFLINE;
	EXPECT_EQ(ST_INVALID_CTRL_ID,
		  ST(vnl_pf_cmd(self->rig.pffd, NVME_ADM_VIRT_MGMT, 0, cdw, NULL, 0, NULL)));
	/* 20h Invalid Secondary Controller State: assign while online */
	cdw[0] = (uint32_t)self->rig.scid[0] << 16 | VNL_VM_RT_VQ << 8 | VNL_VM_ASSIGN;
	cdw[1] = 2;
	EXPECT_EQ(0x120, ST(vnl_pf_cmd(self->rig.pffd, NVME_ADM_VIRT_MGMT, 0, cdw,
				       NULL, 0, NULL)));
	/* 21h Invalid Number of Controller Resources: more than exist */
	cdw[0] = (uint32_t)pfid << 16 | VNL_VM_RT_VQ << 8 | 0x1;	/* primary */
	cdw[1] = 0xffff;
	EXPECT_EQ(0x121, ST(vnl_pf_cmd(self->rig.pffd, NVME_ADM_VIRT_MGMT, 0, cdw,
				       NULL, 0, NULL)));
	/* 22h Invalid Resource Identifier: RT 2 */
	cdw[0] = (uint32_t)self->rig.scid[0] << 16 | 2 << 8 | VNL_VM_ASSIGN;
	cdw[1] = 1;
	EXPECT_EQ(0x122, ST(vnl_pf_cmd(self->rig.pffd, NVME_ADM_VIRT_MGMT, 0, cdw,
				       NULL, 0, NULL)));
}

VNL_HARNESS_MAIN
