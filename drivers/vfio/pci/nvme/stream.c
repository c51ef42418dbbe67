// SPDX-License-Identifier: GPL-2.0-only
/*
 * nvme-vfio-pci: the migration stream (Documentation/stream.rst).
 *
 * Encoders and the incremental parser with its checks against the
 * destination VF.  Nothing here touches a device: the functions are pure
 * and tested by KUnit (stream_kunit.c).
 */
#include <linux/bitfield.h>
#include <linux/mm.h>
#include <linux/overflow.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/unaligned.h>
#include <kunit/visibility.h>

#include "nvme-vfio-pci.h"
/* ---- Stream encoding and validation (no device access) ---- */

/* record why a check failed, for the kernel log; @why may be NULL */
static __printf(3, 4) int nvmevf_why(struct nvmevf_why *why, int err,
				     const char *fmt, ...)
{
	va_list args;

	if (why) {
		va_start(args, fmt);
		vsnprintf(why->msg, sizeof(why->msg), fmt, args);
		va_end(args);
	}
	return err;
}

/**
 * nvmevf_stream_hdr_fill() - fill a stream header
 * @h: the header
 */
void nvmevf_stream_hdr_fill(struct nvmevf_stream_hdr *h)
{
	memcpy(h->magic, NVMEVF_STREAM_MAGIC, sizeof(h->magic));
	h->version = cpu_to_le32(NVMEVF_STREAM_VERSION);
	h->reserved = 0;
}
EXPORT_SYMBOL_IF_KUNIT(nvmevf_stream_hdr_fill);

/**
 * nvmevf_rec_hdr_fill() - fill a record header
 * @h: the header
 * @tag: enum nvmevf_rec_tag
 * @flags: NVMEVF_REC_F_*
 * @size: payload bytes that follow the header
 */
void nvmevf_rec_hdr_fill(struct nvmevf_rec_hdr *h, u32 tag, u32 flags,
			 u64 size)
{
	h->tag = cpu_to_le32(tag);
	h->flags = cpu_to_le32(flags);
	h->size = cpu_to_le64(size);
}
EXPORT_SYMBOL_IF_KUNIT(nvmevf_rec_hdr_fill);

/**
 * nvmevf_compat_size() - payload size of a compat record
 * @nns: number of namespaces
 *
 * Return: bytes.
 */
size_t nvmevf_compat_size(unsigned int nns)
{
	return struct_size_t(struct nvmevf_compat, ns, nns);
}
EXPORT_SYMBOL_IF_KUNIT(nvmevf_compat_size);

/**
 * nvmevf_compat_fill() - encode a compat record payload
 * @c: output, nvmevf_compat_size(@info->nns) bytes
 * @info: the source VF
 */
void nvmevf_compat_fill(struct nvmevf_compat *c,
			const struct nvmevf_dev_info *info)
{
	c->vendor = cpu_to_le16(info->vendor);
	c->device = cpu_to_le16(info->device);
	c->max_transfer = cpu_to_le32(info->max_transfer);
	c->nvq = cpu_to_le16(info->nvq);
	c->nvi = cpu_to_le16(info->nvi);
	c->state_version = cpu_to_le16(info->state_version);
	c->nns = cpu_to_le16(info->nns);
	export_uuid(c->vs_uuid, &info->vs_uuid);
	memcpy(c->ns, info->ns, info->nns * sizeof(info->ns[0]));
}
EXPORT_SYMBOL_IF_KUNIT(nvmevf_compat_fill);

/* the namespace's structure: what the destination's data layout must match */
static bool nvmevf_ns_same_layout(const struct nvmevf_compat_ns *a,
				  const struct nvmevf_compat_ns *b)
{
	return a->nsid == b->nsid && a->lbads == b->lbads &&
	       a->flags == b->flags && a->ms == b->ms && a->nsze == b->nsze;
}

/* the namespace's identity: the same namespace, not just a like one */
static bool nvmevf_ns_same_identity(const struct nvmevf_compat_ns *a,
				    const struct nvmevf_compat_ns *b)
{
	return !memcmp(a->nguid, b->nguid, sizeof(a->nguid)) &&
	       !memcmp(a->eui64, b->eui64, sizeof(a->eui64)) &&
	       !memcmp(a->uuid, b->uuid, sizeof(a->uuid));
}

/**
 * nvmevf_compat_check() - check a compat record against the destination
 * @buf: the compat record's payload
 * @len: its size
 * @dst: the destination VF
 * @csvi: returns the destination's index of the stream's NVMe state version
 * @csuuidi: returns the destination's index of the stream's vendor format
 * @why: if not NULL, says why the check failed
 *
 * Return: 0, or -EINVAL (malformed: size not matching the namespace count,
 * NSIDs 0 or not ascending), -E2BIG (more than NVMEVF_MAX_NS namespaces),
 * -EXDEV (other PCI vendor/device ID), -ENOEXEC (state version not
 * NVMEVF_NVME_STATE_VERSION, or version or vendor format not offered by the
 * destination's PF), -ENOSPC (more VQ or VI resources than the
 * destination's) or -EREMOTEIO (namespaces differ: another count, NSID,
 * LBA format, metadata or size, or, when @dst->check_identity is set,
 * another NGUID, EUI64 or UUID).
 */
int nvmevf_compat_check(const void *buf, size_t len,
			const struct nvmevf_dev_info *dst, u8 *csvi,
			u8 *csuuidi, struct nvmevf_why *why)
{
	const struct nvmevf_compat *c = buf;
	unsigned int nns, i;
	uuid_t uuid;
	u32 prev = 0;

	if (len < sizeof(*c))
		return nvmevf_why(why, -EINVAL, "compat record of %zu bytes",
				  len);
	nns = le16_to_cpu(c->nns);
	if (nns > NVMEVF_MAX_NS)
		return nvmevf_why(why, -E2BIG, "%u namespaces, at most %u",
				  nns, NVMEVF_MAX_NS);
	if (len != nvmevf_compat_size(nns))
		return nvmevf_why(why, -EINVAL,
				  "compat record of %zu bytes for %u namespaces",
				  len, nns);
	for (i = 0; i < nns; i++) {
		u32 nsid = le32_to_cpu(c->ns[i].nsid);

		if (nsid <= prev)
			return nvmevf_why(why, -EINVAL,
					  "NSID %u follows NSID %u", nsid,
					  prev);
		prev = nsid;
	}

	if (le16_to_cpu(c->vendor) != dst->vendor ||
	    le16_to_cpu(c->device) != dst->device)
		return nvmevf_why(why, -EXDEV,
				  "source is %04x:%04x, this VF %04x:%04x",
				  le16_to_cpu(c->vendor),
				  le16_to_cpu(c->device), dst->vendor,
				  dst->device);

	if (le16_to_cpu(c->state_version) != NVMEVF_NVME_STATE_VERSION)
		return nvmevf_why(why, -ENOEXEC, "NVMe state version %u",
				  le16_to_cpu(c->state_version));
	import_uuid(&uuid, c->vs_uuid);
	if (nvmevf_parse_csf(dst->csf, sizeof(dst->csf),
			     le16_to_cpu(c->state_version), &uuid, csvi,
			     csuuidi) || !*csvi || !*csuuidi)
		return nvmevf_why(why, -ENOEXEC,
				  "the PF offers no state format %pUb",
				  &uuid);

	if (le16_to_cpu(c->nvq) > dst->nvq || le16_to_cpu(c->nvi) > dst->nvi)
		return nvmevf_why(why, -ENOSPC,
				  "source has %u VQ / %u VI, this VF %u / %u",
				  le16_to_cpu(c->nvq), le16_to_cpu(c->nvi),
				  dst->nvq, dst->nvi);

	if (nns != dst->nns)
		return nvmevf_why(why, -EREMOTEIO,
				  "source has %u namespaces attached, this VF %u",
				  nns, dst->nns);
	for (i = 0; i < nns; i++) {
		if (!nvmevf_ns_same_layout(&c->ns[i], &dst->ns[i]))
			return nvmevf_why(why, -EREMOTEIO,
					  "namespace %u (NSID %u, here %u): other format or size",
					  i, le32_to_cpu(c->ns[i].nsid),
					  le32_to_cpu(dst->ns[i].nsid));
		if (dst->check_identity &&
		    !nvmevf_ns_same_identity(&c->ns[i], &dst->ns[i]))
			return nvmevf_why(why, -EREMOTEIO,
					  "NSID %u: other NGUID, EUI64 or UUID (ns_identity=Y)",
					  le32_to_cpu(c->ns[i].nsid));
	}
	return 0;
}

/**
 * nvmevf_state_size() - size of a Controller State data structure
 * @hdr: its 48-byte header
 * @total: returns 48 + 4 * (NVMECSS + VSS)
 *
 * Return: 0, or -EIO for a version other than 0, non-zero high halves of
 * NVMECSS/VSS, or a size above NVMEVF_STATE_MAX (reported as -E2BIG).
 */
int nvmevf_state_size(const struct nvme_lm_state_hdr *hdr, u64 *total)
{
	u64 nvmecss = le64_to_cpu(hdr->nvmecss), vss = le64_to_cpu(hdr->vss);

	if (le16_to_cpu(hdr->ver) || hdr->nvmecss_hi || hdr->vss_hi)
		return -EIO;
	if (nvmecss > NVMEVF_STATE_MAX / 4 || vss > NVMEVF_STATE_MAX / 4)
		return -E2BIG;
	*total = sizeof(*hdr) + 4 * (nvmecss + vss);
	return *total > NVMEVF_STATE_MAX ? -E2BIG : 0;
}

/**
 * nvmevf_state_check() - check a controller state record against the
 *	destination's resources
 * @buf: the Controller State data structure
 * @len: its size
 * @nvq: VQ resources of the destination (admin queue included)
 * @nvi: VI resources of the destination
 * @why: if not NULL, says why the check failed
 *
 * The header must be version 0, taken while the source was suspended
 * (CSATTR bit 0), carry both NVMe state (version 0) and vendor state, and
 * its sizes must add up to @len.  The I/O queues of the NVMe state must fit
 * the destination: at most @nvq - 1 SQs and CQs, QIDs ascending within
 * 1..@nvq - 1, CQ interrupt vectors below @nvi.
 *
 * Return: 0, -EINVAL (malformed) or -ENOSPC (beyond @nvq / @nvi).
 */
int nvmevf_state_check(const void *buf, size_t len, u16 nvq, u16 nvi,
		       struct nvmevf_why *why)
{
	const struct nvme_lm_state_hdr *hdr = buf;
	const struct nvme_lm_nvme_state *ns;
	const struct nvme_lm_iosq_state *sq;
	const struct nvme_lm_iocq_state *cq;
	u16 niosq, niocq, maxq, qid, prev, iv;
	u64 nvmecss, total;
	unsigned int i;

	if (len < sizeof(*hdr) || nvmevf_state_size(hdr, &total) ||
	    total != len)
		return nvmevf_why(why, -EINVAL,
				  "controller state of %zu bytes, header says other",
				  len);
	if (!(hdr->csattr & NVME_LM_CSATTR_SUSPENDED))
		return nvmevf_why(why, -EINVAL,
				  "controller state not taken while suspended");
	nvmecss = le64_to_cpu(hdr->nvmecss);
	if (nvmecss < sizeof(*ns) / 4 || !le64_to_cpu(hdr->vss))
		return nvmevf_why(why, -EINVAL,
				  "controller state without NVMe or vendor state");

	ns = buf + sizeof(*hdr);
	niosq = le16_to_cpu(ns->niosq);
	niocq = le16_to_cpu(ns->niocq);
	if (le16_to_cpu(ns->ver) != NVMEVF_NVME_STATE_VERSION ||
	    nvmecss != (sizeof(*ns) + (u64)(niosq + niocq) * sizeof(*sq)) / 4)
		return nvmevf_why(why, -EINVAL,
				  "NVMe state version %u, size not matching %u SQs and %u CQs",
				  le16_to_cpu(ns->ver), niosq, niocq);

	maxq = nvq ? nvq - 1 : 0;
	if (niosq > maxq || niocq > maxq)
		return nvmevf_why(why, -ENOSPC,
				  "%u I/O SQs and %u CQs, this VF has %u",
				  niosq, niocq, maxq);

	sq = (const void *)(ns + 1);
	for (i = 0, prev = 0; i < niosq; i++, prev = qid) {
		qid = le16_to_cpu(sq[i].qid);
		if (qid <= prev)
			return nvmevf_why(why, -EINVAL,
					  "SQ %u follows SQ %u", qid, prev);
		if (qid > maxq)
			return nvmevf_why(why, -ENOSPC,
					  "SQ %u, this VF has %u", qid, maxq);
	}
	cq = (const void *)(sq + niosq);
	for (i = 0, prev = 0; i < niocq; i++, prev = qid) {
		qid = le16_to_cpu(cq[i].qid);
		iv = FIELD_GET(NVME_LM_CQA_IV_MASK, le32_to_cpu(cq[i].attr));
		if (qid <= prev)
			return nvmevf_why(why, -EINVAL,
					  "CQ %u follows CQ %u", qid, prev);
		if (qid > maxq || iv >= nvi)
			return nvmevf_why(why, -ENOSPC,
					  "CQ %u on vector %u, this VF has %u queues and %u vectors",
					  qid, iv, maxq, nvi);
	}
	return 0;
}
EXPORT_SYMBOL_IF_KUNIT(nvmevf_state_check);

/**
 * nvmevf_reader_init() - start parsing a stream
 * @rd: the reader
 * @dst: the destination VF, records are checked against it as they arrive
 */
void nvmevf_reader_init(struct nvmevf_reader *rd,
			const struct nvmevf_dev_info *dst)
{
	memset(rd, 0, sizeof(*rd));
	rd->dst = dst;
	rd->phase = NVMEVF_RD_STREAM_HDR;
}
EXPORT_SYMBOL_IF_KUNIT(nvmevf_reader_init);

/**
 * nvmevf_reader_free() - free what a reader allocated
 * @rd: the reader
 */
void nvmevf_reader_free(struct nvmevf_reader *rd)
{
	kvfree(rd->compat);
	kvfree(rd->state);
	rd->compat = NULL;
	rd->state = NULL;
	rd->payload = NULL;
}
EXPORT_SYMBOL_IF_KUNIT(nvmevf_reader_free);

/**
 * nvmevf_reader_fail() - reject a stream
 * @rd: the reader
 * @err: the negative errno every later call returns
 *
 * Return: @err.
 */
int nvmevf_reader_fail(struct nvmevf_reader *rd, int err)
{
	rd->phase = NVMEVF_RD_ERROR;
	rd->err = err;
	return err;
}

/**
 * nvmevf_reader_window() - where the next bytes of the stream go
 * @rd: the reader
 * @want: bytes the caller has, at least 1
 * @dst: returns where to put them; NULL if they are to be skipped (the
 *	payload of an unknown optional record)
 *
 * The caller copies at most the returned count to @dst, then calls
 * nvmevf_reader_advance().  @dst stays valid until nvmevf_reader_free().
 *
 * Return: bytes that may be placed (1..@want), or the negative errno that
 * rejected the stream; -EINVAL for bytes after the end record.
 */
ssize_t nvmevf_reader_window(struct nvmevf_reader *rd, size_t want,
			     void **dst)
{
	u64 n;

	*dst = NULL;
	switch (rd->phase) {
	case NVMEVF_RD_STREAM_HDR:
	case NVMEVF_RD_REC_HDR:
		n = (rd->phase == NVMEVF_RD_STREAM_HDR ?
		     sizeof(rd->hdr.stream) : sizeof(rd->hdr.rec)) - rd->hdr_have;
		*dst = rd->hdr.raw + rd->hdr_have;
		break;
	case NVMEVF_RD_PAYLOAD:
		n = rd->size - rd->have;
		*dst = rd->payload + rd->have;
		break;
	case NVMEVF_RD_SKIP:
		n = rd->size - rd->have;
		break;
	case NVMEVF_RD_END:
		return want ? nvmevf_reader_fail(rd, -EINVAL) : 0;
	default:
		return rd->err;
	}
	return min_t(u64, n, want);
}
EXPORT_SYMBOL_IF_KUNIT(nvmevf_reader_window);

static int nvmevf_reader_stream_hdr(struct nvmevf_reader *rd)
{
	u32 version = le32_to_cpu(rd->hdr.stream.version);

	if (memcmp(rd->hdr.stream.magic, NVMEVF_STREAM_MAGIC,
		   sizeof(rd->hdr.stream.magic)) || !version)
		return nvmevf_reader_fail(rd, nvmevf_why(&rd->why, -EINVAL,
					  "not an nvme-vfio-pci stream"));
	/* version 1 (40-byte namespace entries) was never released */
	if (version != NVMEVF_STREAM_VERSION)
		return nvmevf_reader_fail(rd, nvmevf_why(&rd->why,
					  -EPROTONOSUPPORT,
					  "stream version %u, this driver reads %u",
					  version, NVMEVF_STREAM_VERSION));
	rd->phase = NVMEVF_RD_REC_HDR;
	return 0;
}

static int nvmevf_reader_alloc(struct nvmevf_reader *rd, u8 **buf,
			       size_t *len)
{
	*buf = kvzalloc(rd->size, GFP_KERNEL_ACCOUNT);
	if (!*buf)
		return nvmevf_reader_fail(rd, -ENOMEM);
	*len = rd->size;
	rd->payload = *buf;
	rd->phase = NVMEVF_RD_PAYLOAD;
	return 0;
}

static int nvmevf_reader_rec_hdr(struct nvmevf_reader *rd)
{
	u32 flags = le32_to_cpu(rd->hdr.rec.flags);

	rd->tag = le32_to_cpu(rd->hdr.rec.tag);
	rd->size = le64_to_cpu(rd->hdr.rec.size);
	rd->have = 0;
	/* a default reason; the checks below refine it */
	nvmevf_why(&rd->why, 0, "record tag %u of %llu bytes at byte %llu",
		   rd->tag, rd->size, rd->total);
	if (rd->size > NVMEVF_STREAM_MAX - rd->total)
		return nvmevf_reader_fail(rd, -E2BIG);

	switch (rd->tag) {
	case NVMEVF_REC_COMPAT:
		if (rd->compat)
			return nvmevf_reader_fail(rd, -EINVAL);
		if (rd->size > NVMEVF_COMPAT_MAX)
			return nvmevf_reader_fail(rd, -E2BIG);
		if (rd->size < sizeof(struct nvmevf_compat))
			return nvmevf_reader_fail(rd, -EINVAL);
		return nvmevf_reader_alloc(rd, &rd->compat, &rd->compat_len);
	case NVMEVF_REC_CTRL_STATE:
		if (!rd->compat_ok || rd->state)
			return nvmevf_reader_fail(rd, -EINVAL);
		if (rd->size > NVMEVF_STATE_MAX)
			return nvmevf_reader_fail(rd, -E2BIG);
		if (rd->size < sizeof(struct nvme_lm_state_hdr) || rd->size & 3)
			return nvmevf_reader_fail(rd, -EINVAL);
		return nvmevf_reader_alloc(rd, &rd->state, &rd->state_len);
	case NVMEVF_REC_END:
		if (rd->size || !rd->state_ok)
			return nvmevf_reader_fail(rd, -EINVAL);
		rd->phase = NVMEVF_RD_END;
		return 0;
	default:
		if (!(flags & NVMEVF_REC_F_OPTIONAL))
			return nvmevf_reader_fail(rd, nvmevf_why(&rd->why,
						  -EOPNOTSUPP,
						  "unknown mandatory record tag %u",
						  rd->tag));
		rd->phase = rd->size ? NVMEVF_RD_SKIP : NVMEVF_RD_REC_HDR;
		return 0;
	}
}

static int nvmevf_reader_rec_done(struct nvmevf_reader *rd)
{
	int ret = 0;

	if (rd->phase == NVMEVF_RD_PAYLOAD) {
		switch (rd->tag) {
		case NVMEVF_REC_COMPAT:
			ret = nvmevf_compat_check(rd->compat, rd->compat_len,
						  rd->dst, &rd->csvi,
						  &rd->csuuidi, &rd->why);
			rd->compat_ok = !ret;
			break;
		case NVMEVF_REC_CTRL_STATE:
			ret = nvmevf_state_check(rd->state, rd->state_len,
						 rd->dst->nvq, rd->dst->nvi,
						 &rd->why);
			rd->state_ok = !ret;
			break;
		}
		if (ret)
			return nvmevf_reader_fail(rd, ret);
	}
	rd->payload = NULL;
	rd->phase = NVMEVF_RD_REC_HDR;
	return 0;
}

/**
 * nvmevf_reader_advance() - account for bytes placed by the caller
 * @rd: the reader
 * @n: bytes placed at (or skipped from) the last nvmevf_reader_window(), at
 *	most what it returned
 *
 * Validates every unit (stream header, record header, record payload) as
 * soon as it is complete: the compat record is checked against the
 * destination on arrival, so an incompatible source is refused while
 * precopy data is still being sent.
 *
 * Return: 0, or the negative errno that rejected the stream (also returned
 * by every later call).
 */
int nvmevf_reader_advance(struct nvmevf_reader *rd, size_t n)
{
	void *dst;

	if (rd->phase == NVMEVF_RD_ERROR)
		return rd->err;
	if (!n)
		return 0;
	if (nvmevf_reader_window(rd, n, &dst) != n)
		return nvmevf_reader_fail(rd, -EINVAL);
	/* headers count too: endless empty optional records are refused */
	if (n > NVMEVF_STREAM_MAX - rd->total)
		return nvmevf_reader_fail(rd, -E2BIG);
	rd->total += n;

	switch (rd->phase) {
	case NVMEVF_RD_STREAM_HDR:
		rd->hdr_have += n;
		if (rd->hdr_have < sizeof(rd->hdr.stream))
			return 0;
		rd->hdr_have = 0;
		return nvmevf_reader_stream_hdr(rd);
	case NVMEVF_RD_REC_HDR:
		rd->hdr_have += n;
		if (rd->hdr_have < sizeof(rd->hdr.rec))
			return 0;
		rd->hdr_have = 0;
		return nvmevf_reader_rec_hdr(rd);
	default:
		rd->have += n;
		if (rd->have < rd->size)
			return 0;
		return nvmevf_reader_rec_done(rd);
	}
}
EXPORT_SYMBOL_IF_KUNIT(nvmevf_reader_advance);

/**
 * nvmevf_reader_finish() - check that a stream is complete and valid
 * @rd: the reader
 *
 * Called before anything is sent to the destination: the stream must have
 * ended with the end record, after a compat and a controller state record,
 * and both are checked again against the destination.
 *
 * Return: 0 (@rd->csvi, @rd->csuuidi, @rd->state and @rd->state_len are
 * ready for Set Controller State), the errno that rejected the stream, or
 * -EINVAL for a truncated stream.
 */
int nvmevf_reader_finish(struct nvmevf_reader *rd)
{
	int ret;

	if (rd->phase == NVMEVF_RD_ERROR)
		return rd->err;
	if (rd->phase != NVMEVF_RD_END || !rd->compat_ok || !rd->state_ok)
		return nvmevf_why(&rd->why, -EINVAL,
				  "stream ended after %llu bytes, incomplete",
				  rd->total);
	ret = nvmevf_compat_check(rd->compat, rd->compat_len, rd->dst,
				  &rd->csvi, &rd->csuuidi, &rd->why);
	if (!ret)
		ret = nvmevf_state_check(rd->state, rd->state_len,
					 rd->dst->nvq, rd->dst->nvi, &rd->why);
	return ret;
}
EXPORT_SYMBOL_IF_KUNIT(nvmevf_reader_finish);
