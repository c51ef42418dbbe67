// SPDX-License-Identifier: GPL-2.0-only
/*
 * KUnit tests of the migration stream: the incremental parser and the checks
 * against the destination VF (stream.c, Documentation/stream.rst).
 */
#include <kunit/test.h>
#include <linux/module.h>
#include <linux/bitfield.h>
#include <linux/nvme-pci.h>
#include <linux/unaligned.h>

#include "nvme-vfio-pci.h"

/* the QEMU model's vendor state format, and another one */
static const uuid_t t_uuid = UUID_INIT(0xf0714064, 0xd3a4, 0x4d67, 0x8d, 0xe0,
				       0xa6, 0x37, 0xd0, 0x14, 0xfe, 0xb8);
static const uuid_t t_other_uuid = UUID_INIT(0x01234567, 0x89ab, 0xcdef,
					     0x01, 0x23, 0x45, 0x67, 0x89,
					     0xab, 0xcd, 0xef);

#define T_NVQ		4	/* admin + 3 I/O queue pairs */
#define T_NVI		3
#define T_VS_BYTES	16
#define T_BUF_SIZE	SZ_16K

/**
 * struct lm_test - one test's source, destination and stream
 * @src: what the compat record describes
 * @dst: the destination VF
 * @buf: the stream
 * @len: bytes in @buf
 * @state: where the controller state record's payload starts in @buf
 * @state_len: its size
 * @rd: the parser
 */
struct lm_test {
	struct nvmevf_dev_info *src;
	struct nvmevf_dev_info *dst;
	u8 *buf;
	size_t len;
	size_t state;
	size_t state_len;
	struct nvmevf_reader rd;
};

static void t_csf(struct nvmevf_dev_info *info, bool two)
{
	u8 *p = info->csf;

	memset(info->csf, 0, sizeof(info->csf));
	if (!two) {
		/* NV 1 (version 0), NUUID 1 */
		p[0] = 1;
		p[1] = 1;
		put_unaligned_le16(0, p + 2);
		export_uuid(p + 4, &t_uuid);
		return;
	}
	/* NV 2 (versions 7, 0), NUUID 2 (other, ours): indexes 2 and 2 */
	p[0] = 2;
	p[1] = 2;
	put_unaligned_le16(7, p + 2);
	put_unaligned_le16(0, p + 4);
	export_uuid(p + 6, &t_other_uuid);
	export_uuid(p + 22, &t_uuid);
}

static void t_ns(struct nvmevf_compat_ns *ns, u32 nsid)
{
	memset(ns, 0, sizeof(*ns));
	ns->nsid = cpu_to_le32(nsid);
	ns->lbads = 9;
	ns->nsze = cpu_to_le64(131072);
	memset(ns->nguid, 0x40 + nsid, sizeof(ns->nguid));
	memset(ns->eui64, 0x50 + nsid, sizeof(ns->eui64));
	memset(ns->uuid, 0x60 + nsid, sizeof(ns->uuid));
}

static void t_info(struct nvmevf_dev_info *info)
{
	t_csf(info, false);
	info->vendor = 0x1b36;
	info->device = 0x0010;
	info->max_transfer = SZ_4K;
	info->nvq = T_NVQ;
	info->nvi = T_NVI;
	info->state_version = 0;
	uuid_copy(&info->vs_uuid, &t_uuid);
	info->nns = 1;
	info->check_identity = true;
	t_ns(&info->ns[0], 1);
}

/* Controller State: @nsq SQs and @ncq CQs with QIDs 1.., CQ vector @iv. */
static size_t t_state(u8 *p, u16 nsq, u16 ncq, u16 iv)
{
	struct nvme_lm_state_hdr *hdr = (void *)p;
	struct nvme_lm_nvme_state *ns = (void *)(hdr + 1);
	struct nvme_lm_iosq_state *sq = (void *)(ns + 1);
	struct nvme_lm_iocq_state *cq = (void *)(sq + nsq);
	u8 *vs = (void *)(cq + ncq);
	unsigned int i;

	memset(p, 0, (u8 *)vs - p + T_VS_BYTES);
	hdr->csattr = NVME_LM_CSATTR_SUSPENDED;
	hdr->nvmecss = cpu_to_le64(2 + 6 * (nsq + ncq));
	hdr->vss = cpu_to_le64(T_VS_BYTES / 4);
	ns->niosq = cpu_to_le16(nsq);
	ns->niocq = cpu_to_le16(ncq);
	for (i = 0; i < nsq; i++) {
		sq[i].prp1 = cpu_to_le64(0x100000 * (i + 1));
		sq[i].qsize = cpu_to_le16(63);
		sq[i].qid = cpu_to_le16(i + 1);
		sq[i].cqid = cpu_to_le16(i + 1);
		sq[i].attr = cpu_to_le16(NVME_LM_SQA_PC);
	}
	for (i = 0; i < ncq; i++) {
		cq[i].prp1 = cpu_to_le64(0x200000 * (i + 1));
		cq[i].qsize = cpu_to_le16(63);
		cq[i].qid = cpu_to_le16(i + 1);
		cq[i].attr = cpu_to_le32(NVME_LM_CQA_PC | NVME_LM_CQA_IEN |
					 FIELD_PREP(NVME_LM_CQA_IV_MASK, iv));
	}
	memset(vs, 0xa5, T_VS_BYTES);
	return (u8 *)vs - p + T_VS_BYTES;
}

static void t_put(struct lm_test *t, const void *p, size_t n)
{
	memcpy(t->buf + t->len, p, n);
	t->len += n;
}

static void t_stream_hdr(struct lm_test *t, u32 version)
{
	struct nvmevf_stream_hdr h;

	nvmevf_stream_hdr_fill(&h);
	h.version = cpu_to_le32(version);
	t_put(t, &h, sizeof(h));
}

static void t_rec(struct lm_test *t, u32 tag, u32 flags, u64 size)
{
	struct nvmevf_rec_hdr h;

	nvmevf_rec_hdr_fill(&h, tag, flags, size);
	t_put(t, &h, sizeof(h));
}

static void t_compat(struct lm_test *t)
{
	size_t n = nvmevf_compat_size(t->src->nns);

	t_rec(t, NVMEVF_REC_COMPAT, 0, n);
	nvmevf_compat_fill((void *)(t->buf + t->len), t->src);
	t->len += n;
}

static void t_ctrl_state(struct lm_test *t, u16 nsq, u16 ncq, u16 iv)
{
	u8 tmp[512];
	size_t n = t_state(tmp, nsq, ncq, iv);

	t_rec(t, NVMEVF_REC_CTRL_STATE, 0, n);
	t->state = t->len;
	t->state_len = n;
	t_put(t, tmp, n);
}

static void t_end(struct lm_test *t)
{
	t_rec(t, NVMEVF_REC_END, 0, 0);
}

static void t_reset(struct lm_test *t)
{
	nvmevf_reader_free(&t->rd);
	nvmevf_reader_init(&t->rd, t->dst);
	t->len = 0;
}

/* a valid stream: 2 SQs, 2 CQs on vector 2 */
static void t_valid(struct lm_test *t)
{
	t_reset(t);
	t_stream_hdr(t, NVMEVF_STREAM_VERSION);
	t_compat(t);
	t_ctrl_state(t, 2, 2, 2);
	t_end(t);
}

/* Feed @len bytes of @t's stream (from @off) in writes of at most @step. */
static int t_feed(struct lm_test *t, size_t off, size_t len, size_t step)
{
	while (len) {
		ssize_t n;
		void *dst;
		int ret;

		n = nvmevf_reader_window(&t->rd, min(len, step), &dst);
		if (n < 0)
			return n;
		if (dst)
			memcpy(dst, t->buf + off, n);
		ret = nvmevf_reader_advance(&t->rd, n);
		if (ret)
			return ret;
		off += n;
		len -= n;
	}
	return 0;
}

static int t_feed_all(struct lm_test *t)
{
	return t_feed(t, 0, t->len, t->len);
}

static int lm_test_init(struct kunit *test)
{
	struct lm_test *t;

	t = kunit_kzalloc(test, sizeof(*t), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, t);
	t->src = kunit_kzalloc(test, sizeof(*t->src), GFP_KERNEL);
	t->dst = kunit_kzalloc(test, sizeof(*t->dst), GFP_KERNEL);
	t->buf = kunit_kzalloc(test, T_BUF_SIZE, GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, t->src);
	KUNIT_ASSERT_NOT_NULL(test, t->dst);
	KUNIT_ASSERT_NOT_NULL(test, t->buf);
	t_info(t->src);
	t_info(t->dst);
	nvmevf_reader_init(&t->rd, t->dst);
	test->priv = t;
	return 0;
}

static void lm_test_exit(struct kunit *test)
{
	struct lm_test *t = test->priv;

	nvmevf_reader_free(&t->rd);
}

static void lm_valid_stream_test(struct kunit *test)
{
	struct lm_test *t = test->priv;

	t_valid(t);
	KUNIT_EXPECT_EQ(test, t_feed_all(t), 0);
	KUNIT_EXPECT_EQ(test, nvmevf_reader_finish(&t->rd), 0);
	KUNIT_EXPECT_EQ(test, t->rd.csvi, 1);
	KUNIT_EXPECT_EQ(test, t->rd.csuuidi, 1);
	KUNIT_ASSERT_EQ(test, t->rd.state_len, t->state_len);
	KUNIT_EXPECT_MEMEQ(test, t->rd.state, t->buf + t->state, t->state_len);

	/* the destination's own indexes are used, not the source's */
	t_csf(t->dst, true);
	t_valid(t);
	KUNIT_EXPECT_EQ(test, t_feed_all(t), 0);
	KUNIT_EXPECT_EQ(test, nvmevf_reader_finish(&t->rd), 0);
	KUNIT_EXPECT_EQ(test, t->rd.csvi, 2);
	KUNIT_EXPECT_EQ(test, t->rd.csuuidi, 2);

	/* queue counts and vectors at the destination's limits */
	t_reset(t);
	t_stream_hdr(t, NVMEVF_STREAM_VERSION);
	t_compat(t);
	t_ctrl_state(t, T_NVQ - 1, T_NVQ - 1, T_NVI - 1);
	t_end(t);
	KUNIT_EXPECT_EQ(test, t_feed_all(t), 0);
	KUNIT_EXPECT_EQ(test, nvmevf_reader_finish(&t->rd), 0);

	/* no namespace at all, on both sides */
	t->src->nns = 0;
	t->dst->nns = 0;
	t_valid(t);
	KUNIT_EXPECT_EQ(test, t_feed_all(t), 0);
	KUNIT_EXPECT_EQ(test, nvmevf_reader_finish(&t->rd), 0);
}

static void lm_split_writes_test(struct kunit *test)
{
	struct lm_test *t = test->priv;
	static const size_t steps[] = { 1, 3, 7, 16, 17 };
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(steps); i++) {
		t_valid(t);
		KUNIT_EXPECT_EQ_MSG(test, t_feed(t, 0, t->len, steps[i]), 0,
				    "step %zu", steps[i]);
		KUNIT_EXPECT_EQ_MSG(test, nvmevf_reader_finish(&t->rd), 0,
				    "step %zu", steps[i]);
		KUNIT_ASSERT_EQ(test, t->rd.state_len, t->state_len);
		KUNIT_EXPECT_MEMEQ(test, t->rd.state, t->buf + t->state,
				   t->state_len);
	}
}

static void lm_truncated_test(struct kunit *test)
{
	struct lm_test *t = test->priv;
	size_t cuts[6];
	unsigned int i;

	t_valid(t);
	cuts[0] = 0;				/* nothing */
	cuts[1] = 9;				/* inside the stream header */
	cuts[2] = 16 + 5;			/* inside a record header */
	cuts[3] = t->state + 10;		/* inside the state payload */
	cuts[4] = t->len - 16;			/* no end record */
	cuts[5] = t->len - 1;			/* end record cut */
	for (i = 0; i < ARRAY_SIZE(cuts); i++) {
		t_valid(t);
		KUNIT_EXPECT_EQ(test, t_feed(t, 0, cuts[i], 1), 0);
		KUNIT_EXPECT_EQ_MSG(test, nvmevf_reader_finish(&t->rd), -EINVAL,
				    "cut at %zu", cuts[i]);
	}
}

static void lm_bad_magic_test(struct kunit *test)
{
	struct lm_test *t = test->priv;
	void *dst;

	t_valid(t);
	t->buf[3] ^= 0x20;
	KUNIT_EXPECT_EQ(test, t_feed_all(t), -EINVAL);
	/* the error sticks */
	KUNIT_EXPECT_EQ(test, nvmevf_reader_window(&t->rd, 1, &dst), -EINVAL);
	KUNIT_EXPECT_EQ(test, nvmevf_reader_advance(&t->rd, 1), -EINVAL);
	KUNIT_EXPECT_EQ(test, nvmevf_reader_finish(&t->rd), -EINVAL);

	/* version 0 does not exist */
	t_reset(t);
	t_stream_hdr(t, 0);
	KUNIT_EXPECT_EQ(test, t_feed_all(t), -EINVAL);
}

static void lm_newer_version_test(struct kunit *test)
{
	struct lm_test *t = test->priv;

	t_reset(t);
	t_stream_hdr(t, NVMEVF_STREAM_VERSION + 1);
	t_compat(t);
	KUNIT_EXPECT_EQ(test, t_feed_all(t), -EPROTONOSUPPORT);
	KUNIT_EXPECT_EQ(test, nvmevf_reader_finish(&t->rd), -EPROTONOSUPPORT);

	/* nor an older one: version 1 had other namespace entries */
	t_reset(t);
	t_stream_hdr(t, 1);
	t_compat(t);
	KUNIT_EXPECT_EQ(test, t_feed_all(t), -EPROTONOSUPPORT);
}

static void lm_unknown_tag_test(struct kunit *test)
{
	struct lm_test *t = test->priv;
	u8 junk[100];

	/* unknown and mandatory: refused */
	t_reset(t);
	t_stream_hdr(t, NVMEVF_STREAM_VERSION);
	t_compat(t);
	t_rec(t, 0x99, 0, sizeof(junk));
	KUNIT_EXPECT_EQ(test, t_feed_all(t), -EOPNOTSUPP);
	KUNIT_EXPECT_EQ(test, nvmevf_reader_finish(&t->rd), -EOPNOTSUPP);

	/* unknown and optional: skipped, wherever it is */
	memset(junk, 0x5a, sizeof(junk));
	t_reset(t);
	t_stream_hdr(t, NVMEVF_STREAM_VERSION);
	t_rec(t, 0x99, NVMEVF_REC_F_OPTIONAL, 0);
	t_compat(t);
	t_rec(t, 0x99, NVMEVF_REC_F_OPTIONAL | BIT(7), sizeof(junk));
	t_put(t, junk, sizeof(junk));
	t_ctrl_state(t, 1, 1, 0);
	t_rec(t, 0x1234, NVMEVF_REC_F_OPTIONAL, 5);
	t_put(t, junk, 5);
	t_end(t);
	KUNIT_EXPECT_EQ(test, t_feed(t, 0, t->len, 1), 0);
	KUNIT_EXPECT_EQ(test, nvmevf_reader_finish(&t->rd), 0);
	KUNIT_EXPECT_MEMEQ(test, t->rd.state, t->buf + t->state, t->state_len);
}

static void lm_oversize_test(struct kunit *test)
{
	struct lm_test *t = test->priv;

	/* a controller state above the cap: refused at its header */
	t_reset(t);
	t_stream_hdr(t, NVMEVF_STREAM_VERSION);
	t_compat(t);
	t_rec(t, NVMEVF_REC_CTRL_STATE, 0, NVMEVF_STATE_MAX + 4);
	KUNIT_EXPECT_EQ(test, t_feed_all(t), -E2BIG);
	KUNIT_EXPECT_NULL(test, t->rd.state);

	/* a compat record above 64 namespaces */
	t_reset(t);
	t_stream_hdr(t, NVMEVF_STREAM_VERSION);
	t_rec(t, NVMEVF_REC_COMPAT, 0, nvmevf_compat_size(NVMEVF_MAX_NS + 1));
	KUNIT_EXPECT_EQ(test, t_feed_all(t), -E2BIG);

	/* an optional record that would take the stream above its cap */
	t_reset(t);
	t_stream_hdr(t, NVMEVF_STREAM_VERSION);
	t_rec(t, 0x99, NVMEVF_REC_F_OPTIONAL, NVMEVF_STREAM_MAX);
	KUNIT_EXPECT_EQ(test, t_feed_all(t), -E2BIG);

	/* the cap counts headers: no endless empty optional records */
	t_reset(t);
	t_stream_hdr(t, NVMEVF_STREAM_VERSION);
	t_rec(t, 0x99, NVMEVF_REC_F_OPTIONAL, 0);
	KUNIT_EXPECT_EQ(test, t_feed_all(t), 0);
	t->rd.total = NVMEVF_STREAM_MAX - 8;
	KUNIT_EXPECT_EQ(test, t_feed(t, 16, 16, 16), -E2BIG);

	/* a size that would wrap */
	t_reset(t);
	t_stream_hdr(t, NVMEVF_STREAM_VERSION);
	t_rec(t, NVMEVF_REC_COMPAT, 0, U64_MAX);
	KUNIT_EXPECT_EQ(test, t_feed_all(t), -E2BIG);

	/* the count field itself above 64, whatever the size says */
	t->src->nns = 0;
	t_valid(t);
	put_unaligned_le16(NVMEVF_MAX_NS + 1,
			   t->buf + 16 + 16 + offsetof(struct nvmevf_compat, nns));
	KUNIT_EXPECT_EQ(test, t_feed_all(t), -E2BIG);
}

static void lm_queue_resources_test(struct kunit *test)
{
	struct lm_test *t = test->priv;
	u8 *st = kunit_kzalloc(test, 512, GFP_KERNEL);
	struct nvme_lm_iosq_state *sq;
	size_t n;

	KUNIT_ASSERT_NOT_NULL(test, st);

	/* more I/O SQs than NVQ - 1 */
	t_reset(t);
	t_stream_hdr(t, NVMEVF_STREAM_VERSION);
	t_compat(t);
	t_ctrl_state(t, T_NVQ, 1, 0);
	t_end(t);
	KUNIT_EXPECT_EQ(test, t_feed_all(t), -ENOSPC);
	KUNIT_EXPECT_EQ(test, nvmevf_reader_finish(&t->rd), -ENOSPC);

	/* more I/O CQs than NVQ - 1 */
	n = t_state(st, 1, T_NVQ, 0);
	KUNIT_EXPECT_EQ(test, nvmevf_state_check(st, n, T_NVQ, T_NVI, NULL), -ENOSPC);

	/* a CQ vector beyond NVI */
	n = t_state(st, 1, 1, T_NVI);
	KUNIT_EXPECT_EQ(test, nvmevf_state_check(st, n, T_NVQ, T_NVI, NULL), -ENOSPC);

	/* a QID beyond NVQ - 1 */
	n = t_state(st, 1, 1, 0);
	sq = (void *)(st + sizeof(struct nvme_lm_state_hdr) +
		      sizeof(struct nvme_lm_nvme_state));
	sq->qid = cpu_to_le16(T_NVQ);
	KUNIT_EXPECT_EQ(test, nvmevf_state_check(st, n, T_NVQ, T_NVI, NULL), -ENOSPC);

	/* a destination without VQ resources takes no I/O queue */
	n = t_state(st, 1, 1, 0);
	KUNIT_EXPECT_EQ(test, nvmevf_state_check(st, n, 0, T_NVI, NULL), -ENOSPC);
	n = t_state(st, 0, 0, 0);
	KUNIT_EXPECT_EQ(test, nvmevf_state_check(st, n, 0, 0, NULL), 0);

	/* the source had more resources than the destination */
	t->src->nvq = T_NVQ + 1;
	t_valid(t);
	KUNIT_EXPECT_EQ(test, t_feed_all(t), -ENOSPC);
	t->src->nvq = T_NVQ;
	t->src->nvi = T_NVI + 1;
	t_valid(t);
	KUNIT_EXPECT_EQ(test, t_feed_all(t), -ENOSPC);
}

static void lm_state_malformed_test(struct kunit *test)
{
	u8 *st = kunit_kzalloc(test, 512, GFP_KERNEL);
	struct nvme_lm_state_hdr *hdr = (void *)st;
	struct nvme_lm_iosq_state *sq;
	size_t n;

	KUNIT_ASSERT_NOT_NULL(test, st);
	n = t_state(st, 2, 2, 1);
	KUNIT_EXPECT_EQ(test, nvmevf_state_check(st, n, T_NVQ, T_NVI, NULL), 0);

	/* sizes that do not add up */
	KUNIT_EXPECT_EQ(test, nvmevf_state_check(st, n - 4, T_NVQ, T_NVI, NULL),
			-EINVAL);
	KUNIT_EXPECT_EQ(test, nvmevf_state_check(st, 47, T_NVQ, T_NVI, NULL), -EINVAL);
	hdr->nvmecss = cpu_to_le64(2 + 6 * 3);
	hdr->vss = cpu_to_le64(T_VS_BYTES / 4 + 6);
	KUNIT_EXPECT_EQ(test, nvmevf_state_check(st, n, T_NVQ, T_NVI, NULL), -EINVAL);

	/* not a snapshot of a suspended controller */
	n = t_state(st, 2, 2, 1);
	hdr->csattr = 0;
	KUNIT_EXPECT_EQ(test, nvmevf_state_check(st, n, T_NVQ, T_NVI, NULL), -EINVAL);

	/* a high half of NVMECSS */
	n = t_state(st, 2, 2, 1);
	hdr->nvmecss_hi = cpu_to_le64(1);
	KUNIT_EXPECT_EQ(test, nvmevf_state_check(st, n, T_NVQ, T_NVI, NULL), -EINVAL);

	/* QIDs not ascending */
	n = t_state(st, 2, 2, 1);
	sq = (void *)(st + sizeof(*hdr) + sizeof(struct nvme_lm_nvme_state));
	sq[1].qid = sq[0].qid;
	KUNIT_EXPECT_EQ(test, nvmevf_state_check(st, n, T_NVQ, T_NVI, NULL), -EINVAL);

	/* no vendor state */
	n = t_state(st, 1, 1, 0) - T_VS_BYTES;
	hdr->vss = 0;
	KUNIT_EXPECT_EQ(test, nvmevf_state_check(st, n, T_NVQ, T_NVI, NULL), -EINVAL);
}

static void lm_namespace_mismatch_test(struct kunit *test)
{
	struct lm_test *t = test->priv;

	/* another NGUID */
	t->src->ns[0].nguid[15] ^= 1;
	t_valid(t);
	KUNIT_EXPECT_EQ(test, t_feed_all(t), -EREMOTEIO);
	KUNIT_EXPECT_EQ(test, nvmevf_reader_finish(&t->rd), -EREMOTEIO);
	t_ns(&t->src->ns[0], 1);

	/* another EUI64, UUID, size, LBA data size, metadata size, NSID */
	t->src->ns[0].eui64[0] ^= 1;
	t_valid(t);
	KUNIT_EXPECT_EQ(test, t_feed_all(t), -EREMOTEIO);
	t_ns(&t->src->ns[0], 1);
	t->src->ns[0].uuid[7] ^= 1;
	t_valid(t);
	KUNIT_EXPECT_EQ(test, t_feed_all(t), -EREMOTEIO);
	t_ns(&t->src->ns[0], 1);
	t->src->ns[0].nsze = cpu_to_le64(131071);
	t_valid(t);
	KUNIT_EXPECT_EQ(test, t_feed_all(t), -EREMOTEIO);
	t_ns(&t->src->ns[0], 1);
	t->src->ns[0].lbads = 12;
	t_valid(t);
	KUNIT_EXPECT_EQ(test, t_feed_all(t), -EREMOTEIO);
	t_ns(&t->src->ns[0], 1);
	t->src->ns[0].ms = cpu_to_le16(8);
	t_valid(t);
	KUNIT_EXPECT_EQ(test, t_feed_all(t), -EREMOTEIO);
	t_ns(&t->src->ns[0], 2);
	t_valid(t);
	KUNIT_EXPECT_EQ(test, t_feed_all(t), -EREMOTEIO);
	t_ns(&t->src->ns[0], 1);

	/* one namespace more on the source */
	t->src->nns = 2;
	t_ns(&t->src->ns[1], 2);
	t_valid(t);
	KUNIT_EXPECT_EQ(test, t_feed_all(t), -EREMOTEIO);

	/* NSIDs out of order: malformed */
	t_ns(&t->src->ns[0], 3);
	t_valid(t);
	KUNIT_EXPECT_EQ(test, t_feed_all(t), -EINVAL);

	/* the same namespaces: accepted */
	t->dst->nns = 2;
	t_ns(&t->src->ns[0], 1);
	t_ns(&t->dst->ns[1], 2);
	t_valid(t);
	KUNIT_EXPECT_EQ(test, t_feed_all(t), 0);
	KUNIT_EXPECT_EQ(test, nvmevf_reader_finish(&t->rd), 0);
}

static void lm_device_mismatch_test(struct kunit *test)
{
	struct lm_test *t = test->priv;

	t->src->device = 0x0011;
	t_valid(t);
	KUNIT_EXPECT_EQ(test, t_feed_all(t), -EXDEV);
	t->src->device = t->dst->device;

	/* a vendor state format the destination's PF does not offer */
	uuid_copy(&t->src->vs_uuid, &t_other_uuid);
	t_valid(t);
	KUNIT_EXPECT_EQ(test, t_feed_all(t), -ENOEXEC);
	uuid_copy(&t->src->vs_uuid, &t_uuid);

	/* an NVMe state version the driver does not parse */
	t->src->state_version = 7;
	t_csf(t->dst, true);
	t_valid(t);
	KUNIT_EXPECT_EQ(test, t_feed_all(t), -ENOEXEC);
}

static void lm_record_order_test(struct kunit *test)
{
	struct lm_test *t = test->priv;

	/* controller state before the compat record */
	t_reset(t);
	t_stream_hdr(t, NVMEVF_STREAM_VERSION);
	t_ctrl_state(t, 1, 1, 0);
	KUNIT_EXPECT_EQ(test, t_feed_all(t), -EINVAL);

	/* two compat records */
	t_reset(t);
	t_stream_hdr(t, NVMEVF_STREAM_VERSION);
	t_compat(t);
	t_compat(t);
	KUNIT_EXPECT_EQ(test, t_feed_all(t), -EINVAL);

	/* end before the controller state */
	t_reset(t);
	t_stream_hdr(t, NVMEVF_STREAM_VERSION);
	t_compat(t);
	t_end(t);
	KUNIT_EXPECT_EQ(test, t_feed_all(t), -EINVAL);

	/* an end record with a payload */
	t_reset(t);
	t_stream_hdr(t, NVMEVF_STREAM_VERSION);
	t_compat(t);
	t_ctrl_state(t, 1, 1, 0);
	t_rec(t, NVMEVF_REC_END, 0, 4);
	KUNIT_EXPECT_EQ(test, t_feed_all(t), -EINVAL);

	/* a controller state that is not whole dwords */
	t_reset(t);
	t_stream_hdr(t, NVMEVF_STREAM_VERSION);
	t_compat(t);
	t_rec(t, NVMEVF_REC_CTRL_STATE, 0, 50);
	KUNIT_EXPECT_EQ(test, t_feed_all(t), -EINVAL);

	/* a compat record whose size does not match its count (1) */
	t_reset(t);
	t_stream_hdr(t, NVMEVF_STREAM_VERSION);
	t_compat(t);
	put_unaligned_le64(nvmevf_compat_size(1) + 8, t->buf + 16 + 8);
	memset(t->buf + t->len, 0, 8);
	t->len += 8;
	KUNIT_EXPECT_EQ(test, t_feed_all(t), -EINVAL);

	/* bytes after the end record */
	t_valid(t);
	t->buf[t->len++] = 0;
	KUNIT_EXPECT_EQ(test, t_feed_all(t), -EINVAL);
	KUNIT_EXPECT_EQ(test, nvmevf_reader_finish(&t->rd), -EINVAL);
}

/* Without the identity check only the namespace structure must match. */
static void lm_namespace_identity_relaxed_test(struct kunit *test)
{
	struct lm_test *t = test->priv;

	t->dst->check_identity = false;
	t->src->ns[0].nguid[3] ^= 1;
	t->src->ns[0].eui64[1] ^= 1;
	t->src->ns[0].uuid[15] ^= 1;
	t_valid(t);
	KUNIT_EXPECT_EQ(test, t_feed_all(t), 0);
	KUNIT_EXPECT_EQ(test, nvmevf_reader_finish(&t->rd), 0);

	/* the structure is still checked */
	t_ns(&t->src->ns[0], 1);
	t->src->ns[0].nsze = cpu_to_le64(131073);
	t_valid(t);
	KUNIT_EXPECT_EQ(test, t_feed_all(t), -EREMOTEIO);
	t_ns(&t->src->ns[0], 1);
	t->src->ns[0].flags ^= NVMEVF_NS_F_EXT_LBA;
	t_valid(t);
	KUNIT_EXPECT_EQ(test, t_feed_all(t), -EREMOTEIO);
}

static struct kunit_case nvmevf_lm_test_cases[] = {
	KUNIT_CASE(lm_valid_stream_test),
	KUNIT_CASE(lm_split_writes_test),
	KUNIT_CASE(lm_truncated_test),
	KUNIT_CASE(lm_bad_magic_test),
	KUNIT_CASE(lm_newer_version_test),
	KUNIT_CASE(lm_unknown_tag_test),
	KUNIT_CASE(lm_oversize_test),
	KUNIT_CASE(lm_queue_resources_test),
	KUNIT_CASE(lm_state_malformed_test),
	KUNIT_CASE(lm_namespace_mismatch_test),
	KUNIT_CASE(lm_namespace_identity_relaxed_test),
	KUNIT_CASE(lm_device_mismatch_test),
	KUNIT_CASE(lm_record_order_test),
	{}
};

static struct kunit_suite nvmevf_lm_test_suite = {
	.name = "nvme-vfio-pci-stream",
	.init = lm_test_init,
	.exit = lm_test_exit,
	.test_cases = nvmevf_lm_test_cases,
};

kunit_test_suite(nvmevf_lm_test_suite);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("KUnit tests of nvme-vfio-pci: command encoders, parsers, the migration stream");
MODULE_IMPORT_NS("EXPORTED_FOR_KUNIT_TESTING");
