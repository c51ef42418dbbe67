// SPDX-License-Identifier: GPL-2.0-only
/*
 * vnl: NVMe side — enable a controller, admin and I/O queue pairs, Identify,
 * Read/Write, all through a vnl_dev.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vnl.h"

int vnl_fail(const char *fmt, ...);

#define CSTS_RDY	0x1
#define CSTS_CFS	0x2

/* CLOCK_MONOTONIC in milliseconds */
uint64_t vnl_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000ull + ts.tv_nsec / 1000000;
}

static int wait_rdy(struct vnl_ctrl *c, uint32_t want)
{
	/* CAP.TO is in 500 ms units */
	uint64_t limit = vnl_now_ms() + ((c->cap >> 24) & 0xff) * 500 + 1000;
	uint32_t csts;

	for (;;) {
		csts = vnl_read32(c->dev, NVME_REG_CSTS);
		if (csts == ~0u) {
			errno = ENODEV;
			return vnl_fail("%s: CSTS reads all ones", c->dev->bdf);
		}
		if ((csts & CSTS_RDY) == want)
			return 0;
		if (vnl_now_ms() > limit) {
			errno = ETIMEDOUT;
			return vnl_fail("%s: CSTS.RDY != %u (CSTS %#x)",
					c->dev->bdf, want, csts);
		}
		usleep(1000);
	}
}

uint64_t vnl_db_offset(struct vnl_ctrl *c, uint16_t qid, bool cq)
{
	return NVME_REG_DB + (2 * qid + cq) * (4u << c->dstrd);
}

static int queue_alloc(struct vnl_ctrl *c, struct vnl_queue *q, uint16_t qid,
		       uint16_t depth)
{
	memset(q, 0, sizeof(*q));
	q->qid = qid;
	q->depth = depth;
	q->phase = 1;
	q->sq = vnl_dma_alloc(c->dev, depth * sizeof(struct vnl_sqe), &q->sq_iova);
	q->cq = vnl_dma_alloc(c->dev, depth * sizeof(struct vnl_cqe), &q->cq_iova);
	return q->sq && q->cq ? 0 : -ENOMEM;
}

/**
 * vnl_ctrl_enable() - reset and enable an NVMe controller with an admin queue
 * @c: controller to fill
 * @d: opened device
 * @aq_depth: admin queue depth
 *
 * Return: 0 or negative errno.
 */
int vnl_ctrl_enable(struct vnl_ctrl *c, struct vnl_dev *d, uint16_t aq_depth)
{
	uint32_t cc;
	int ret;

	memset(c, 0, sizeof(*c));
	c->dev = d;
	c->timeout_ms = 30000;	/* TCG, possibly nested: be generous */
	errno = 0;
	c->cap = vnl_read64(d, NVME_REG_CAP);
	if (c->cap == ~0ull) {
		errno = ENODEV;
		return vnl_fail("%s: CAP reads all ones", d->bdf);
	}
	c->dstrd = (c->cap >> 32) & 0xf;
	if (aq_depth > ((c->cap & 0xffff) + 1))
		aq_depth = (c->cap & 0xffff) + 1;

	cc = vnl_read32(d, NVME_REG_CC);
	if (cc & 1) {
		vnl_write32(d, NVME_REG_CC, cc & ~1u);
		ret = wait_rdy(c, 0);
		if (ret)
			return ret;
	}
	ret = queue_alloc(c, &c->aq, 0, aq_depth);
	if (ret)
		return ret;
	c->buf = vnl_dma_alloc(d, VNL_PAGE, &c->buf_iova);
	if (!c->buf)
		return -ENOMEM;

	vnl_write32(d, NVME_REG_AQA, (aq_depth - 1) << 16 | (aq_depth - 1));
	vnl_write64(d, NVME_REG_ASQ, c->aq.sq_iova);
	vnl_write64(d, NVME_REG_ACQ, c->aq.cq_iova);
	/* IOCQES 4 (16 B), IOSQES 6 (64 B), MPS 0 (4 KiB), CSS NVM, EN */
	cc = 4u << 20 | 6u << 16 | 1;
	vnl_write32(d, NVME_REG_CC, cc);
	ret = wait_rdy(c, CSTS_RDY);
	if (ret)
		return ret;
	if (vnl_read32(d, NVME_REG_CSTS) & CSTS_CFS) {
		errno = EIO;
		return vnl_fail("%s: controller fatal status", d->bdf);
	}

	ret = vnl_identify(c, 0x01, 0, 0, c->buf);
	if (ret)
		return ret;
	memcpy(&c->cntlid, (uint8_t *)c->buf + 78, 2);
	return 0;
}

/**
 * vnl_ctrl_disable() - clear CC.EN and wait for CSTS.RDY to drop
 * @c: controller
 */
void vnl_ctrl_disable(struct vnl_ctrl *c)
{
	if (!c->dev)
		return;
	vnl_write32(c->dev, NVME_REG_CC, 0);
	wait_rdy(c, 0);
}

/**
 * vnl_submit() - place a command in a submission queue and ring the doorbell
 * @c: controller
 * @q: queue
 * @sqe: command; its CID is assigned here
 */
void vnl_submit(struct vnl_ctrl *c, struct vnl_queue *q, struct vnl_sqe *sqe)
{
	sqe->cid = q->next_cid++;
	q->sq[q->sq_tail] = *sqe;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	q->sq_tail = (q->sq_tail + 1) % q->depth;
	vnl_write32(c->dev, vnl_db_offset(c, q->qid, false), q->sq_tail);
}

/**
 * vnl_wait() - wait for the next completion of a queue
 * @c: controller
 * @q: queue
 * @cqe: returns the completion
 *
 * Return: 0, or -ETIMEDOUT.
 */
int vnl_wait(struct vnl_ctrl *c, struct vnl_queue *q, struct vnl_cqe *cqe)
{
	uint64_t limit = vnl_now_ms() + c->timeout_ms;
	struct vnl_cqe *e = &q->cq[q->cq_head];

	while ((__atomic_load_n(&e->status, __ATOMIC_ACQUIRE) & 1) != q->phase) {
		if (vnl_now_ms() > limit) {
			errno = ETIMEDOUT;
			return vnl_fail("%s: no completion on queue %u",
					c->dev->bdf, q->qid);
		}
		usleep(100);
	}
	*cqe = *e;
	if (++q->cq_head == q->depth) {
		q->cq_head = 0;
		q->phase ^= 1;
	}
	vnl_write32(c->dev, vnl_db_offset(c, q->qid, true), q->cq_head);
	return 0;
}

/**
 * vnl_cmd() - submit one command and wait for its completion
 * @c: controller
 * @q: queue
 * @sqe: command
 * @cqe: completion, may be NULL
 *
 * Return: 0 on NVMe success, a positive NVMe status field (SCT << 8 | SC)
 * on NVMe error, negative errno if no completion arrived or it does not
 * match the command.
 */
int vnl_cmd(struct vnl_ctrl *c, struct vnl_queue *q, struct vnl_sqe *sqe,
	    struct vnl_cqe *cqe)
{
	struct vnl_cqe tmp;
	int ret;

	if (!cqe)
		cqe = &tmp;
	vnl_submit(c, q, sqe);
	ret = vnl_wait(c, q, cqe);
	if (ret)
		return ret;
	if (cqe->cid != sqe->cid || cqe->sqid != q->qid) {
		errno = EPROTO;
		return vnl_fail("%s: CQE cid %u sqid %u, expected %u/%u",
				c->dev->bdf, cqe->cid, cqe->sqid, sqe->cid,
				q->qid);
	}
	if (VNL_SC(cqe->status) || VNL_SCT(cqe->status)) {
		snprintf(vnl_err, sizeof(vnl_err),
			 "%s: opcode %#x failed: SCT %#x SC %#x", c->dev->bdf,
			 sqe->opc, VNL_SCT(cqe->status), VNL_SC(cqe->status));
		return VNL_SCT(cqe->status) << 8 | VNL_SC(cqe->status);
	}
	return 0;
}

/**
 * vnl_identify() - Identify into the controller's admin page, copied to @out
 * @c: controller
 * @cns: CNS value
 * @nsid: namespace ID
 * @cntid: CDW10 CNTID
 * @out: 4096 bytes, may be NULL
 *
 * Return: as vnl_cmd().
 */
int vnl_identify(struct vnl_ctrl *c, uint8_t cns, uint32_t nsid, uint16_t cntid,
		 void *out)
{
	struct vnl_sqe sqe = {
		.opc = NVME_ADM_IDENTIFY,
		.nsid = nsid,
		.prp1 = c->buf_iova,
		.cdw10 = (uint32_t)cntid << 16 | cns,
	};
	int ret;

	memset(c->buf, 0, VNL_PAGE);
	ret = vnl_cmd(c, &c->aq, &sqe, NULL);
	if (!ret && out && out != c->buf)
		memcpy(out, c->buf, VNL_PAGE);
	return ret;
}

/**
 * vnl_create_ioq() - Set Features Number of Queues, create one I/O pair
 * @c: controller
 * @qid: queue ID for both the CQ and the SQ
 * @depth: entries
 * @ien: interrupts enabled on the CQ
 * @iv: interrupt vector of the CQ
 *
 * Also reads the LBA size of namespace 1 for vnl_rw().
 *
 * Return: as vnl_cmd().
 */
int vnl_create_ioq(struct vnl_ctrl *c, uint16_t qid, uint16_t depth,
		   bool ien, uint16_t iv)
{
	struct vnl_sqe sqe;
	uint8_t *id = c->buf;
	int ret;

	if (depth > (c->cap & 0xffff) + 1)
		depth = (c->cap & 0xffff) + 1;
	ret = queue_alloc(c, &c->ioq, qid, depth);
	if (ret)
		return ret;

	sqe = (struct vnl_sqe){ .opc = NVME_ADM_SET_FEATURES, .cdw10 = 0x07,
				.cdw11 = (uint32_t)(qid - 1) << 16 | (qid - 1) };
	ret = vnl_cmd(c, &c->aq, &sqe, NULL);
	if (ret)
		return ret;
	sqe = (struct vnl_sqe){ .opc = NVME_ADM_CREATE_CQ, .prp1 = c->ioq.cq_iova,
				.cdw10 = (uint32_t)(depth - 1) << 16 | qid,
				.cdw11 = (uint32_t)iv << 16 | (ien ? 2 : 0) | 1 };
	ret = vnl_cmd(c, &c->aq, &sqe, NULL);
	if (ret)
		return ret;
	sqe = (struct vnl_sqe){ .opc = NVME_ADM_CREATE_SQ, .prp1 = c->ioq.sq_iova,
				.cdw10 = (uint32_t)(depth - 1) << 16 | qid,
				.cdw11 = (uint32_t)qid << 16 | 1 };
	ret = vnl_cmd(c, &c->aq, &sqe, NULL);
	if (ret)
		return ret;

	ret = vnl_identify(c, 0x00, 1, 0, NULL);
	if (ret)
		return ret;
	/* FLBAS bits 3:0 select LBAF at byte 128 + 4 * n; LBADS at byte 2 */
	c->lba_size = 1u << id[128 + 4 * (id[26] & 0xf) + 2];
	return 0;
}

/**
 * vnl_rw() - Read or Write of up to one page on the I/O queue
 * @c: controller
 * @opc: NVME_CMD_READ or NVME_CMD_WRITE
 * @nsid: namespace
 * @slba: first LBA
 * @nlb: number of LBAs (not 0's based); nlb * lba_size <= 4096
 * @iova: page-aligned data buffer
 *
 * Return: as vnl_cmd().
 */
int vnl_rw(struct vnl_ctrl *c, uint8_t opc, uint32_t nsid, uint64_t slba,
	   uint16_t nlb, uint64_t iova)
{
	struct vnl_sqe sqe = {
		.opc = opc,
		.nsid = nsid,
		.prp1 = iova,
		.cdw10 = (uint32_t)slba,
		.cdw11 = (uint32_t)(slba >> 32),
		.cdw12 = (uint32_t)(nlb - 1),
	};

	if (!nlb || !c->lba_size || nlb * c->lba_size > VNL_PAGE) {
		errno = EINVAL;
		return vnl_fail("%s: %u blocks of %u bytes", __func__, nlb,
				c->lba_size);
	}
	return vnl_cmd(c, &c->ioq, &sqe, NULL);
}
