// SPDX-License-Identifier: GPL-2.0-only
/*
 * nvme-vfio-pci: VFIO live migration (uAPI v2) of an NVMe VF through its PF,
 * the TP4159 Migration Management Controller.
 *
 * The migration FSM, the save and resume files and the migration stream.
 * Documentation/migration.rst has the design (arcs, locking, lifetime) and
 * Documentation/stream.rst the stream format.
 *
 * Locking, in order:
 *   state_mutex (device) -> migf->lock
 *   migf->io_lock -> (user copies) ; migf->io_lock -> migf->lock
 * state_mutex serialises the FSM, MIG_DATA_SIZE and every PF command.
 * migf->lock guards a file's state and bookkeeping and is never held across
 * a user copy; migf->io_lock serialises a file's read()/write() callers
 * across their user copies and is never taken under state_mutex.  Buffers
 * that a reader or writer may copy from or into without migf->lock are only
 * freed when the file is released.
 */
#include <linux/anon_inodes.h>
#include <linux/bitfield.h>
#include <linux/cleanup.h>
#include <linux/debugfs.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/ktime.h>
#include <linux/mm.h>
#include <linux/nvme.h>
#include <linux/overflow.h>
#include <linux/pci.h>
#include <linux/poll.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/uaccess.h>
#include <linux/unaligned.h>
#include <linux/vfio.h>
#include <linux/vfio_pci_core.h>

#include "nvme-vfio-pci.h"

/* ---- Stream encoding and validation (no device access) ---- */

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

static bool nvmevf_ns_equal(const struct nvmevf_compat_ns *a,
			    const struct nvmevf_compat_ns *b)
{
	return a->nsid == b->nsid && a->lbads == b->lbads &&
	       a->flags == b->flags && a->ms == b->ms && a->nsze == b->nsze &&
	       !memcmp(a->nguid, b->nguid, sizeof(a->nguid)) &&
	       !memcmp(a->eui64, b->eui64, sizeof(a->eui64));
}

/**
 * nvmevf_compat_check() - check a compat record against the destination
 * @buf: the compat record's payload
 * @len: its size
 * @dst: the destination VF
 * @csvi: returns the destination's index of the stream's NVMe state version
 * @csuuidi: returns the destination's index of the stream's vendor format
 *
 * Return: 0, or -EINVAL (malformed: size not matching the namespace count,
 * NSIDs 0 or not ascending), -E2BIG (more than NVMEVF_MAX_NS namespaces),
 * -EXDEV (other PCI vendor/device ID), -ENOEXEC (state version not
 * NVMEVF_NVME_STATE_VERSION, or version or vendor format not offered by the
 * destination's PF), -ENOSPC (more VQ or VI resources than the
 * destination's) or -EREMOTEIO (namespaces differ).
 */
int nvmevf_compat_check(const void *buf, size_t len,
			const struct nvmevf_dev_info *dst, u8 *csvi,
			u8 *csuuidi)
{
	const struct nvmevf_compat *c = buf;
	unsigned int nns, i;
	uuid_t uuid;
	u32 prev = 0;

	if (len < sizeof(*c))
		return -EINVAL;
	nns = le16_to_cpu(c->nns);
	if (nns > NVMEVF_MAX_NS)
		return -E2BIG;
	if (len != nvmevf_compat_size(nns))
		return -EINVAL;
	for (i = 0; i < nns; i++) {
		u32 nsid = le32_to_cpu(c->ns[i].nsid);

		if (nsid <= prev)
			return -EINVAL;
		prev = nsid;
	}

	if (le16_to_cpu(c->vendor) != dst->vendor ||
	    le16_to_cpu(c->device) != dst->device)
		return -EXDEV;

	if (le16_to_cpu(c->state_version) != NVMEVF_NVME_STATE_VERSION)
		return -ENOEXEC;
	import_uuid(&uuid, c->vs_uuid);
	if (nvmevf_parse_csf(dst->csf, sizeof(dst->csf),
			     le16_to_cpu(c->state_version), &uuid, csvi,
			     csuuidi) || !*csvi || !*csuuidi)
		return -ENOEXEC;

	if (le16_to_cpu(c->nvq) > dst->nvq || le16_to_cpu(c->nvi) > dst->nvi)
		return -ENOSPC;

	if (nns != dst->nns)
		return -EREMOTEIO;
	for (i = 0; i < nns; i++)
		if (!nvmevf_ns_equal(&c->ns[i], &dst->ns[i]))
			return -EREMOTEIO;
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
 *
 * The header must be version 0, taken while the source was suspended
 * (CSATTR bit 0), carry both NVMe state (version 0) and vendor state, and
 * its sizes must add up to @len.  The I/O queues of the NVMe state must fit
 * the destination: at most @nvq - 1 SQs and CQs, QIDs ascending within
 * 1..@nvq - 1, CQ interrupt vectors below @nvi.
 *
 * Return: 0, -EINVAL (malformed) or -ENOSPC (beyond @nvq / @nvi).
 */
int nvmevf_state_check(const void *buf, size_t len, u16 nvq, u16 nvi)
{
	const struct nvme_lm_state_hdr *hdr = buf;
	const struct nvme_lm_nvme_state *ns;
	const struct nvme_lm_iosq_state *sq;
	const struct nvme_lm_iocq_state *cq;
	u16 niosq, niocq, maxq, qid, prev;
	u64 nvmecss, total;
	unsigned int i;

	if (len < sizeof(*hdr) || nvmevf_state_size(hdr, &total) ||
	    total != len || !(hdr->csattr & NVME_LM_CSATTR_SUSPENDED))
		return -EINVAL;
	nvmecss = le64_to_cpu(hdr->nvmecss);
	if (nvmecss < sizeof(*ns) / 4 || !le64_to_cpu(hdr->vss))
		return -EINVAL;

	ns = buf + sizeof(*hdr);
	niosq = le16_to_cpu(ns->niosq);
	niocq = le16_to_cpu(ns->niocq);
	if (le16_to_cpu(ns->ver) != NVMEVF_NVME_STATE_VERSION ||
	    nvmecss != (sizeof(*ns) + (u64)(niosq + niocq) * sizeof(*sq)) / 4)
		return -EINVAL;

	maxq = nvq ? nvq - 1 : 0;
	if (niosq > maxq || niocq > maxq)
		return -ENOSPC;

	sq = (const void *)(ns + 1);
	for (i = 0, prev = 0; i < niosq; i++, prev = qid) {
		qid = le16_to_cpu(sq[i].qid);
		if (qid <= prev)
			return -EINVAL;
		if (qid > maxq)
			return -ENOSPC;
	}
	cq = (const void *)(sq + niosq);
	for (i = 0, prev = 0; i < niocq; i++, prev = qid) {
		qid = le16_to_cpu(cq[i].qid);
		if (qid <= prev)
			return -EINVAL;
		if (qid > maxq ||
		    FIELD_GET(NVME_LM_CQA_IV_MASK, le32_to_cpu(cq[i].attr)) >= nvi)
			return -ENOSPC;
	}
	return 0;
}

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

static int nvmevf_reader_fail(struct nvmevf_reader *rd, int err)
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

static int nvmevf_reader_stream_hdr(struct nvmevf_reader *rd)
{
	u32 version = le32_to_cpu(rd->hdr.stream.version);

	if (memcmp(rd->hdr.stream.magic, NVMEVF_STREAM_MAGIC,
		   sizeof(rd->hdr.stream.magic)) || !version)
		return nvmevf_reader_fail(rd, -EINVAL);
	if (version > NVMEVF_STREAM_VERSION)
		return nvmevf_reader_fail(rd, -EPROTONOSUPPORT);
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
			return nvmevf_reader_fail(rd, -EOPNOTSUPP);
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
						  &rd->csuuidi);
			rd->compat_ok = !ret;
			break;
		case NVMEVF_REC_CTRL_STATE:
			ret = nvmevf_state_check(rd->state, rd->state_len,
						 rd->dst->nvq, rd->dst->nvi);
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
		return -EINVAL;
	ret = nvmevf_compat_check(rd->compat, rd->compat_len, rd->dst,
				  &rd->csvi, &rd->csuuidi);
	if (!ret)
		ret = nvmevf_state_check(rd->state, rd->state_len,
					 rd->dst->nvq, rd->dst->nvi);
	return ret;
}

/* ---- Migration files ---- */

/**
 * enum nvmevf_migf_state - state of a migration file
 * @NVMEVF_MIGF_PRECOPY: save, initial data only: read() ends with -ENOMSG
 * @NVMEVF_MIGF_COMPLETE: save, the whole stream: read() ends with 0
 * @NVMEVF_MIGF_RESUMING: resume, accepting writes
 * @NVMEVF_MIGF_DISABLED: read()/write()/ioctl() fail with -ENODEV
 */
enum nvmevf_migf_state {
	NVMEVF_MIGF_PRECOPY,
	NVMEVF_MIGF_COMPLETE,
	NVMEVF_MIGF_RESUMING,
	NVMEVF_MIGF_DISABLED,
};

/**
 * struct nvmevf_seg - a piece of a save stream
 * @buf: the bytes (kvmalloc)
 * @len: their number
 */
struct nvmevf_seg {
	u8 *buf;
	size_t len;
};

/**
 * struct nvmevf_migf - a save or resume file
 * @filp: the file
 * @nvmevf: the device
 * @lock: guards everything below; never held across a user copy
 * @io_lock: serialises read()/write() across their user copies
 * @state: enum nvmevf_migf_state
 * @pos: bytes read (save)
 * @seg: save stream: [0] stream header and compat record, [1] controller
 *	state and end records
 * @nseg: segments filled
 * @info: the destination's identity (resume)
 * @rd: the stream parser (resume)
 * @poll_wait: woken when more data is ready (STOP_COPY) or the file dies
 */
struct nvmevf_migf {
	struct file *filp;
	struct nvmevf_pci_core_device *nvmevf;
	struct mutex lock;		/* file state; no user copy under it */
	struct mutex io_lock;		/* one reader/writer at a time */
	enum nvmevf_migf_state state;
	u64 pos;
	struct nvmevf_seg seg[2];
	unsigned int nseg;
	struct nvmevf_dev_info *info;
	struct nvmevf_reader rd;
	wait_queue_head_t poll_wait;
};

/*
 * A file may outlive its device (the user keeps the fd after closing the
 * device): once DISABLED, which happens before the device can go away, the
 * file must not look at migf->nvmevf.  Hence the order of the tests and
 * migf->lock around every use of migf->nvmevf from the file operations.
 */
static bool nvmevf_migf_dead(struct nvmevf_migf *migf)
{
	lockdep_assert_held(&migf->lock);
	return migf->state == NVMEVF_MIGF_DISABLED ||
	       test_bit(NVMEVF_LM_PF_EVENT, &migf->nvmevf->lm_flags);
}

static struct nvmevf_migf *
nvmevf_migf_alloc(struct nvmevf_pci_core_device *nvmevf,
		  enum nvmevf_migf_state state)
{
	struct nvmevf_migf *migf;

	migf = kzalloc(sizeof(*migf), GFP_KERNEL_ACCOUNT);
	if (!migf)
		return NULL;
	migf->nvmevf = nvmevf;
	migf->state = state;
	mutex_init(&migf->lock);
	mutex_init(&migf->io_lock);
	init_waitqueue_head(&migf->poll_wait);
	return migf;
}

static void nvmevf_migf_free(struct nvmevf_migf *migf)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(migf->seg); i++)
		kvfree(migf->seg[i].buf);
	nvmevf_reader_free(&migf->rd);
	kvfree(migf->info);
	mutex_destroy(&migf->io_lock);
	mutex_destroy(&migf->lock);
	kfree(migf);
}

static int nvmevf_migf_release(struct inode *inode, struct file *filp)
{
	nvmevf_migf_free(filp->private_data);
	return 0;
}

/* The next bytes to read; none at the end (of the precopy data). */
static int nvmevf_save_peek(struct nvmevf_migf *migf, const u8 **src,
			    size_t *n)
{
	unsigned int i;
	u64 off;

	guard(mutex)(&migf->lock);
	if (nvmevf_migf_dead(migf))
		return -ENODEV;
	off = migf->pos;
	for (i = 0; i < migf->nseg; i++) {
		if (off < migf->seg[i].len) {
			*src = migf->seg[i].buf + off;
			*n = migf->seg[i].len - off;
			return 0;
		}
		off -= migf->seg[i].len;
	}
	*n = 0;
	return migf->state == NVMEVF_MIGF_PRECOPY ? -ENOMSG : 0;
}

static int nvmevf_save_consume(struct nvmevf_migf *migf, size_t n)
{
	guard(mutex)(&migf->lock);
	if (nvmevf_migf_dead(migf))
		return -ENODEV;
	migf->pos += n;
	atomic64_add(n, &migf->nvmevf->stats.bytes_saved);
	return 0;
}

/*
 * The data is in kernel memory, produced by the arc: read() never waits, so
 * O_NONBLOCK needs nothing.  End of the precopy data is -ENOMSG, end of the
 * stream 0.
 */
static ssize_t nvmevf_save_read(struct file *filp, char __user *ubuf,
				size_t len, loff_t *ppos)
{
	struct nvmevf_migf *migf = filp->private_data;
	ssize_t done = 0;
	int ret = 0;

	if (ppos)
		return -ESPIPE;

	guard(mutex)(&migf->io_lock);
	while (len) {
		const u8 *src;
		size_t n;

		ret = nvmevf_save_peek(migf, &src, &n);
		if (ret || !n)
			break;
		n = min(n, len);
		if (copy_to_user(ubuf, src, n)) {
			ret = -EFAULT;
			break;
		}
		ret = nvmevf_save_consume(migf, n);
		if (ret)
			break;
		done += n;
		ubuf += n;
		len -= n;
	}
	return done ? done : ret;
}

static __poll_t nvmevf_save_poll(struct file *filp,
				 struct poll_table_struct *wait)
{
	struct nvmevf_migf *migf = filp->private_data;

	u64 total = 0;
	unsigned int i;

	poll_wait(filp, &migf->poll_wait, wait);
	guard(mutex)(&migf->lock);
	if (nvmevf_migf_dead(migf))
		return EPOLLERR | EPOLLHUP;
	/* at the end of the precopy data: wait for STOP_COPY's data */
	for (i = 0; i < migf->nseg; i++)
		total += migf->seg[i].len;
	if (migf->state == NVMEVF_MIGF_PRECOPY && migf->pos >= total)
		return 0;
	return EPOLLIN | EPOLLRDNORM;
}

static long nvmevf_precopy_info(struct nvmevf_migf *migf,
				struct vfio_precopy_info __user *uinfo)
{
	unsigned long minsz = offsetofend(struct vfio_precopy_info,
					  dirty_bytes);
	struct vfio_precopy_info info;

	if (copy_from_user(&info, uinfo, minsz))
		return -EFAULT;
	if (info.argsz < minsz)
		return -EINVAL;

	scoped_guard(mutex, &migf->lock) {
		if (nvmevf_migf_dead(migf))
			return -ENODEV;
		if (migf->state != NVMEVF_MIGF_PRECOPY)
			return -EINVAL;
		info.initial_bytes = migf->seg[0].len > migf->pos ?
				     migf->seg[0].len - migf->pos : 0;
	}
	/* no incremental state in TP4159: nothing ever becomes dirty */
	info.dirty_bytes = 0;
	info.flags = 0;
	return copy_to_user(uinfo, &info, minsz) ? -EFAULT : 0;
}

static long nvmevf_save_ioctl(struct file *filp, unsigned int cmd,
			      unsigned long arg)
{
	if (cmd != VFIO_MIG_GET_PRECOPY_INFO)
		return -ENOTTY;
	return nvmevf_precopy_info(filp->private_data, (void __user *)arg);
}

static const struct file_operations nvmevf_save_fops = {
	.owner = THIS_MODULE,
	.read = nvmevf_save_read,
	.poll = nvmevf_save_poll,
	.unlocked_ioctl = nvmevf_save_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.release = nvmevf_migf_release,
};

static ssize_t nvmevf_resume_window(struct nvmevf_migf *migf, size_t want,
				    void **dst)
{
	guard(mutex)(&migf->lock);
	if (nvmevf_migf_dead(migf))
		return -ENODEV;
	return nvmevf_reader_window(&migf->rd, want, dst);
}

static int nvmevf_resume_advance(struct nvmevf_migf *migf, size_t n)
{
	guard(mutex)(&migf->lock);
	if (nvmevf_migf_dead(migf))
		return -ENODEV;
	atomic64_add(n, &migf->nvmevf->stats.bytes_loaded);
	return nvmevf_reader_advance(&migf->rd, n);
}

/*
 * Writes may split the stream anywhere.  The bytes are copied straight to
 * where the parser keeps them (header staging or the record's buffer,
 * allocated from the record's size, bounded by NVMEVF_STREAM_MAX) and each
 * unit is validated when complete.
 */
static ssize_t nvmevf_resume_write(struct file *filp, const char __user *ubuf,
				   size_t len, loff_t *ppos)
{
	struct nvmevf_migf *migf = filp->private_data;
	ssize_t done = 0;
	int ret = 0;

	if (ppos)
		return -ESPIPE;

	guard(mutex)(&migf->io_lock);
	while (len) {
		ssize_t n;
		void *dst;

		n = nvmevf_resume_window(migf, len, &dst);
		if (n < 0) {
			ret = n;
			break;
		}
		if (dst && copy_from_user(dst, ubuf, n)) {
			ret = -EFAULT;
			break;
		}
		ret = nvmevf_resume_advance(migf, n);
		if (ret)
			break;
		done += n;
		ubuf += n;
		len -= n;
	}
	/* a rejected stream is reported at once, not as a short write */
	if (ret && ret != -EFAULT)
		return ret;
	return done ? done : ret;
}

static __poll_t nvmevf_resume_poll(struct file *filp,
				   struct poll_table_struct *wait)
{
	struct nvmevf_migf *migf = filp->private_data;

	guard(mutex)(&migf->lock);
	if (nvmevf_migf_dead(migf))
		return EPOLLERR | EPOLLHUP;
	return EPOLLOUT | EPOLLWRNORM;
}

static const struct file_operations nvmevf_resume_fops = {
	.owner = THIS_MODULE,
	.write = nvmevf_resume_write,
	.poll = nvmevf_resume_poll,
	.release = nvmevf_migf_release,
};

/*
 * Give @migf a file and make it the device's @slot.  Consumes @migf: on
 * failure it is freed.  Returns the reference for the core to install.
 */
static struct file *nvmevf_migf_publish(struct nvmevf_migf *migf,
					const struct file_operations *fops,
					int flags, struct nvmevf_migf **slot)
{
	struct file *filp;

	filp = anon_inode_getfile("nvmevf_mig", fops, migf, flags);
	if (IS_ERR(filp)) {
		nvmevf_migf_free(migf);
		return filp;
	}
	migf->filp = filp;
	stream_open(filp->f_inode, filp);
	get_file(filp);
	*slot = migf;
	return filp;
}

static void nvmevf_migf_put(struct nvmevf_migf **slot)
{
	struct nvmevf_migf *migf = *slot;

	if (!migf)
		return;
	scoped_guard(mutex, &migf->lock)
		migf->state = NVMEVF_MIGF_DISABLED;
	wake_up_interruptible(&migf->poll_wait);
	*slot = NULL;
	fput(migf->filp);
}

/* ---- Device side: PF commands ---- */

static int nvmevf_lm_cmd(struct nvmevf_pci_core_device *nvmevf,
			 struct nvme_command *c, void *buf, unsigned int len,
			 u32 *dw0)
{
	lockdep_assert_held(&nvmevf->state_mutex);
	return nvmevf_exec(nvmevf->core_device.pdev, &nvmevf->stats.cmd, c,
			   buf, len, dw0);
}

static void nvmevf_phase_done(struct nvmevf_pci_core_device *nvmevf,
			      enum nvmevf_phase ph, u64 start)
{
	nvmevf->stats.duration_ns[ph] = ktime_get_ns() - start;
}

static int nvmevf_suspend(struct nvmevf_pci_core_device *nvmevf)
{
	u64 start = ktime_get_ns();
	struct nvme_command c;
	int ret;

	nvmevf_cmd_suspend(&c, nvmevf->scid, NVME_LM_STYPE_SUSPEND, false);
	ret = nvmevf_lm_cmd(nvmevf, &c, NULL, 0, NULL);
	nvmevf_phase_done(nvmevf, NVMEVF_PH_SUSPEND, start);
	return ret;
}

static int nvmevf_resume(struct nvmevf_pci_core_device *nvmevf)
{
	u64 start = ktime_get_ns();
	struct nvme_command c;
	int ret;

	nvmevf_cmd_resume(&c, nvmevf->scid);
	ret = nvmevf_lm_cmd(nvmevf, &c, NULL, 0, NULL);
	nvmevf_phase_done(nvmevf, NVMEVF_PH_RESUME, start);
	return ret;
}

static int nvmevf_collect_ns(struct nvmevf_pci_core_device *nvmevf,
			     struct nvmevf_dev_info *info)
{
	u8 *list __free(kfree) = kmalloc(NVME_IDENTIFY_DATA_SIZE, GFP_KERNEL);
	u8 *id __free(kfree) = kmalloc(NVME_IDENTIFY_DATA_SIZE, GFP_KERNEL);
	struct nvme_command c;
	u32 start = 0, nsid = 0;
	int n, i, ret;

	if (!list || !id)
		return -ENOMEM;
	info->nns = 0;
	do {
		nvmevf_cmd_identify_ns(&c, NVME_ID_CNS_NS_PRESENT_LIST, start, 0);
		ret = nvmevf_lm_cmd(nvmevf, &c, list, NVME_IDENTIFY_DATA_SIZE,
				    NULL);
		if (ret)
			return ret;
		n = nvmevf_nsid_list_parse(list, NVME_IDENTIFY_DATA_SIZE, start);
		if (n < 0)
			return n;
		for (i = 0; i < n; i++) {
			nsid = get_unaligned_le32(list + i * sizeof(u32));
			nvmevf_cmd_identify_ns(&c, NVME_ID_CNS_CTRL_NS_LIST, nsid,
					       nvmevf->scid);
			ret = nvmevf_lm_cmd(nvmevf, &c, id,
					    NVME_IDENTIFY_DATA_SIZE, NULL);
			if (ret)
				return ret;
			if (!nvmevf_ctrl_list_has(id, NVME_IDENTIFY_DATA_SIZE,
						  nvmevf->scid))
				continue;
			if (info->nns == NVMEVF_MAX_NS)
				return -E2BIG;
			nvmevf_cmd_identify_ns(&c, NVME_ID_CNS_NS_PRESENT, nsid,
					       0);
			ret = nvmevf_lm_cmd(nvmevf, &c, id,
					    NVME_IDENTIFY_DATA_SIZE, NULL);
			if (!ret)
				ret = nvmevf_id_ns_parse(id,
							 NVME_IDENTIFY_DATA_SIZE,
							 nsid,
							 &info->ns[info->nns]);
			if (ret)
				return ret;
			info->nns++;
		}
		start = nsid;
	} while (n == NVME_IDENTIFY_DATA_SIZE / sizeof(u32));
	return 0;
}

/*
 * The identity of this VF as the compat record describes it; the PF's CNS
 * 20h data is kept for matching a source's formats.  Refreshes the cached
 * CSVI/CSUUIDI.
 */
static int nvmevf_collect_info(struct nvmevf_pci_core_device *nvmevf,
			       struct nvmevf_dev_info *info)
{
	struct pci_dev *pdev = nvmevf->core_device.pdev;
	struct nvme_lm_sec_ctrl_entry sc;
	struct nvme_lm_pf_info pfi;
	struct nvme_command c;
	u8 csvi, csuuidi;
	int ret;

	ret = nvme_pci_vf_pf_info(pdev, &pfi);
	if (ret)
		return ret;
	ret = nvmevf_lookup_sec_ctrl(pdev, &nvmevf->stats.cmd, &sc);
	if (ret)
		return ret;
	nvmevf_cmd_identify(&c, NVME_LM_ID_CNS_CTRL_STATE_FMTS, 0);
	ret = nvmevf_lm_cmd(nvmevf, &c, info->csf, sizeof(info->csf), NULL);
	if (ret)
		return ret;
	nvmevf_parse_csf(info->csf, sizeof(info->csf),
			 NVMEVF_NVME_STATE_VERSION, &nvmevf->vs_uuid, &csvi,
			 &csuuidi);
	if (!csvi || !csuuidi)
		return -ENOEXEC;

	info->vendor = pdev->vendor;
	info->device = pdev->device;
	info->max_transfer = pfi.max_transfer;
	info->nvq = le16_to_cpu(sc.nvq);
	info->nvi = le16_to_cpu(sc.nvi);
	info->state_version = NVMEVF_NVME_STATE_VERSION;
	uuid_copy(&info->vs_uuid, &nvmevf->vs_uuid);
	ret = nvmevf_collect_ns(nvmevf, info);
	if (ret)
		return ret;
	nvmevf->csvi = csvi;
	nvmevf->csuuidi = csuuidi;
	return 0;
}

/* Stream header and compat record: the precopy initial data. */
static int nvmevf_build_initial(struct nvmevf_pci_core_device *nvmevf,
				struct nvmevf_seg *seg)
{
	struct nvmevf_dev_info *info __free(kvfree) =
		kvzalloc(sizeof(*info), GFP_KERNEL);
	size_t clen, len;
	u8 *buf;
	int ret;

	if (!info)
		return -ENOMEM;
	ret = nvmevf_collect_info(nvmevf, info);
	if (ret)
		return ret;
	clen = nvmevf_compat_size(info->nns);
	len = sizeof(struct nvmevf_stream_hdr) + sizeof(struct nvmevf_rec_hdr) +
	      clen;
	buf = kvzalloc(len, GFP_KERNEL_ACCOUNT);
	if (!buf)
		return -ENOMEM;
	nvmevf_stream_hdr_fill((void *)buf);
	nvmevf_rec_hdr_fill((void *)(buf + sizeof(struct nvmevf_stream_hdr)),
			    NVMEVF_REC_COMPAT, 0, clen);
	nvmevf_compat_fill((void *)(buf + len - clen), info);
	seg->buf = buf;
	seg->len = len;
	return 0;
}

/* Get Controller State, header only: works while running. */
static int nvmevf_state_hdr(struct nvmevf_pci_core_device *nvmevf,
			    struct nvme_lm_state_hdr *hdr, bool consistent,
			    u64 *total)
{
	struct nvme_command c;
	u32 dw0 = 0;
	int ret;

	nvmevf_cmd_get_state(&c, nvmevf->scid, nvmevf->csvi, nvmevf->csuuidi,
			     0, 0, sizeof(*hdr) / 4);
	ret = nvmevf_lm_cmd(nvmevf, &c, hdr, sizeof(*hdr), &dw0);
	if (ret)
		return ret;
	if (consistent && !(dw0 & NVME_LM_GET_CSUP))
		return -EIO;
	return nvmevf_state_size(hdr, total);
}

/*
 * The controller state record (and the end record) into @seg.  The VF is
 * suspended: every chunk must report CSUP, i.e. the VF stayed suspended
 * for the whole command, so the chunks form one consistent snapshot.
 */
static int nvmevf_save_state(struct nvmevf_pci_core_device *nvmevf,
			     struct nvmevf_seg *seg)
{
	struct nvme_lm_state_hdr *hdr __free(kfree) =
		kmalloc(sizeof(*hdr), GFP_KERNEL);
	const size_t rec = sizeof(struct nvmevf_rec_hdr);
	struct nvme_lm_pf_info pfi;
	struct nvme_command c;
	u64 start = ktime_get_ns();
	u64 total, done;
	u8 *buf, *state;
	int ret;
	u32 n;

	if (!hdr)
		return -ENOMEM;
	ret = nvme_pci_vf_pf_info(nvmevf->core_device.pdev, &pfi);
	if (ret)
		return ret;
	ret = nvmevf_state_hdr(nvmevf, hdr, true, &total);
	if (ret)
		return ret;

	buf = kvzalloc(rec + total + rec, GFP_KERNEL_ACCOUNT);
	if (!buf)
		return -ENOMEM;
	state = buf + rec;
	memcpy(state, hdr, sizeof(*hdr));
	for (done = sizeof(*hdr);
	     (n = nvmevf_chunk_len(total, done, pfi.max_transfer)); done += n) {
		u32 dw0 = 0;

		nvmevf_cmd_get_state(&c, nvmevf->scid, nvmevf->csvi,
				     nvmevf->csuuidi, 0, done, n / 4);
		ret = nvmevf_lm_cmd(nvmevf, &c, state + done, n, &dw0);
		if (!ret && !(dw0 & NVME_LM_GET_CSUP))
			ret = -EIO;
		if (ret)
			break;
	}
	if (!ret && done != total)
		ret = -EINVAL;
	if (ret) {
		kvfree(buf);
		return ret;
	}
	nvmevf_rec_hdr_fill((void *)buf, NVMEVF_REC_CTRL_STATE, 0, total);
	nvmevf_rec_hdr_fill((void *)(state + total), NVMEVF_REC_END, 0, 0);
	seg->buf = buf;
	seg->len = rec + total + rec;
	nvmevf_phase_done(nvmevf, NVMEVF_PH_STOP_COPY, start);
	return 0;
}

/* Set Controller State in SEQIND chunks of at most the PF's max_transfer. */
static int nvmevf_set_state(struct nvmevf_pci_core_device *nvmevf, u8 *state,
			    u64 len, u8 csvi, u8 csuuidi)
{
	struct nvme_lm_pf_info pfi;
	struct nvme_command c;
	u64 done;
	int ret;
	u32 n;

	ret = nvme_pci_vf_pf_info(nvmevf->core_device.pdev, &pfi);
	if (ret)
		return ret;
	for (done = 0; (n = nvmevf_chunk_len(len, done, pfi.max_transfer));
	     done += n) {
		bool first = !done, last = done + n == len;
		enum nvme_lm_seqind seq;

		if (first)
			seq = last ? NVME_LM_SEQIND_ONLY : NVME_LM_SEQIND_FIRST;
		else
			seq = last ? NVME_LM_SEQIND_LAST : NVME_LM_SEQIND_MIDDLE;
		nvmevf_cmd_set_state(&c, nvmevf->scid, csvi, csuuidi, seq, done,
				     n / 4);
		ret = nvmevf_lm_cmd(nvmevf, &c, state + done, n, NULL);
		if (ret)
			return ret;
	}
	return done == len ? 0 : -EINVAL;
}

/* ---- The FSM ---- */

static void nvmevf_put_files_locked(struct nvmevf_pci_core_device *nvmevf)
{
	lockdep_assert_held(&nvmevf->state_mutex);
	nvmevf_migf_put(&nvmevf->saving);
	nvmevf_migf_put(&nvmevf->resuming);
}

/* The one reset: no files, RUNNING, PF events forgotten. */
static void nvmevf_reset_locked(struct nvmevf_pci_core_device *nvmevf)
{
	nvmevf_put_files_locked(nvmevf);
	nvmevf->mig_state = VFIO_DEVICE_STATE_RUNNING;
	clear_bit(NVMEVF_LM_PF_EVENT, &nvmevf->lm_flags);
}

static void nvmevf_fail_locked(struct nvmevf_pci_core_device *nvmevf,
			       int err)
{
	nvmevf_put_files_locked(nvmevf);
	nvmevf->mig_state = VFIO_DEVICE_STATE_ERROR;
	nvmevf->stats.failed_arcs++;
	nvmevf->stats.last_error = err;
}

static struct file *nvmevf_save_start(struct nvmevf_pci_core_device *nvmevf,
				      bool precopy)
{
	struct nvmevf_migf *migf;
	u64 start = ktime_get_ns();
	int ret;

	migf = nvmevf_migf_alloc(nvmevf, precopy ? NVMEVF_MIGF_PRECOPY :
						   NVMEVF_MIGF_COMPLETE);
	if (!migf)
		return ERR_PTR(-ENOMEM);
	ret = nvmevf_build_initial(nvmevf, &migf->seg[0]);
	migf->nseg = 1;
	if (!ret && precopy)
		nvmevf_phase_done(nvmevf, NVMEVF_PH_PRECOPY, start);
	if (!ret && !precopy) {
		ret = nvmevf_save_state(nvmevf, &migf->seg[1]);
		migf->nseg = 2;
	}
	if (ret) {
		nvmevf_migf_free(migf);
		return ERR_PTR(ret);
	}
	return nvmevf_migf_publish(migf, &nvmevf_save_fops, O_RDONLY,
				   &nvmevf->saving);
}

/* PRE_COPY_P2P -> STOP_COPY: append the state to the precopy file. */
static int nvmevf_save_finish(struct nvmevf_pci_core_device *nvmevf)
{
	struct nvmevf_migf *migf = nvmevf->saving;
	struct nvmevf_seg seg;
	int ret;

	if (WARN_ON(!migf))
		return -EINVAL;
	ret = nvmevf_save_state(nvmevf, &seg);
	if (ret)
		return ret;
	guard(mutex)(&migf->lock);
	if (migf->state != NVMEVF_MIGF_PRECOPY) {
		kvfree(seg.buf);
		return -ENODEV;
	}
	migf->seg[1] = seg;
	migf->nseg = 2;
	migf->state = NVMEVF_MIGF_COMPLETE;
	wake_up_interruptible(&migf->poll_wait);
	return 0;
}

static struct file *
nvmevf_resume_start(struct nvmevf_pci_core_device *nvmevf)
{
	struct nvmevf_migf *migf;
	u64 start = ktime_get_ns();
	int ret;

	migf = nvmevf_migf_alloc(nvmevf, NVMEVF_MIGF_RESUMING);
	if (!migf)
		return ERR_PTR(-ENOMEM);
	migf->info = kvzalloc(sizeof(*migf->info), GFP_KERNEL_ACCOUNT);
	ret = migf->info ? nvmevf_collect_info(nvmevf, migf->info) : -ENOMEM;
	if (ret) {
		nvmevf_migf_free(migf);
		return ERR_PTR(ret);
	}
	nvmevf_reader_init(&migf->rd, migf->info);
	nvmevf_phase_done(nvmevf, NVMEVF_PH_RESUMING, start);
	return nvmevf_migf_publish(migf, &nvmevf_resume_fops, O_WRONLY,
				   &nvmevf->resuming);
}

/*
 * RESUMING -> STOP: the whole stream is validated before the first Set
 * Controller State, so a rejected stream leaves the destination untouched.
 * No user copy happens here; writers wait on migf->lock.
 */
static int nvmevf_load(struct nvmevf_pci_core_device *nvmevf)
{
	struct nvmevf_migf *migf = nvmevf->resuming;
	u64 start = ktime_get_ns();
	int ret;

	if (WARN_ON(!migf))
		return -EINVAL;
	scoped_guard(mutex, &migf->lock) {
		if (migf->state != NVMEVF_MIGF_RESUMING)
			return -ENODEV;
		ret = nvmevf_reader_finish(&migf->rd);
		if (ret)
			return ret;
		/* nothing more can be written */
		migf->state = NVMEVF_MIGF_DISABLED;
	}
	ret = nvmevf_set_state(nvmevf, migf->rd.state, migf->rd.state_len,
			       migf->rd.csvi, migf->rd.csuuidi);
	nvmevf_phase_done(nvmevf, NVMEVF_PH_LOAD, start);
	return ret;
}

static struct file *nvmevf_step_locked(struct nvmevf_pci_core_device *nvmevf,
				       enum vfio_device_mig_state new)
{
	enum vfio_device_mig_state cur = nvmevf->mig_state;
	int ret;

	if (test_bit(NVMEVF_LM_PF_EVENT, &nvmevf->lm_flags))
		return ERR_PTR(-ENODEV);

	if ((cur == VFIO_DEVICE_STATE_RUNNING &&
	     new == VFIO_DEVICE_STATE_RUNNING_P2P) ||
	    (cur == VFIO_DEVICE_STATE_PRE_COPY &&
	     new == VFIO_DEVICE_STATE_PRE_COPY_P2P)) {
		ret = nvmevf_suspend(nvmevf);
		return ret ? ERR_PTR(ret) : NULL;
	}

	if ((cur == VFIO_DEVICE_STATE_RUNNING_P2P &&
	     new == VFIO_DEVICE_STATE_RUNNING) ||
	    (cur == VFIO_DEVICE_STATE_PRE_COPY_P2P &&
	     new == VFIO_DEVICE_STATE_PRE_COPY)) {
		ret = nvmevf_resume(nvmevf);
		return ret ? ERR_PTR(ret) : NULL;
	}

	if ((cur == VFIO_DEVICE_STATE_RUNNING_P2P &&
	     new == VFIO_DEVICE_STATE_STOP) ||
	    (cur == VFIO_DEVICE_STATE_STOP &&
	     new == VFIO_DEVICE_STATE_RUNNING_P2P))
		return NULL;

	if ((cur == VFIO_DEVICE_STATE_RUNNING &&
	     new == VFIO_DEVICE_STATE_PRE_COPY) ||
	    (cur == VFIO_DEVICE_STATE_RUNNING_P2P &&
	     new == VFIO_DEVICE_STATE_PRE_COPY_P2P))
		return nvmevf_save_start(nvmevf, true);

	if ((cur == VFIO_DEVICE_STATE_PRE_COPY &&
	     new == VFIO_DEVICE_STATE_RUNNING) ||
	    (cur == VFIO_DEVICE_STATE_PRE_COPY_P2P &&
	     new == VFIO_DEVICE_STATE_RUNNING_P2P) ||
	    (cur == VFIO_DEVICE_STATE_STOP_COPY &&
	     new == VFIO_DEVICE_STATE_STOP)) {
		nvmevf_migf_put(&nvmevf->saving);
		return NULL;
	}

	if (cur == VFIO_DEVICE_STATE_STOP && new == VFIO_DEVICE_STATE_STOP_COPY)
		return nvmevf_save_start(nvmevf, false);

	if (cur == VFIO_DEVICE_STATE_PRE_COPY_P2P &&
	    new == VFIO_DEVICE_STATE_STOP_COPY) {
		ret = nvmevf_save_finish(nvmevf);
		return ret ? ERR_PTR(ret) : NULL;
	}

	if (cur == VFIO_DEVICE_STATE_STOP && new == VFIO_DEVICE_STATE_RESUMING)
		return nvmevf_resume_start(nvmevf);

	if (cur == VFIO_DEVICE_STATE_RESUMING && new == VFIO_DEVICE_STATE_STOP) {
		ret = nvmevf_load(nvmevf);
		if (ret)
			return ERR_PTR(ret);
		nvmevf_migf_put(&nvmevf->resuming);
		return NULL;
	}

	/* vfio_mig_get_next_state() only hands out the arcs above */
	WARN_ON(true);
	return ERR_PTR(-EINVAL);
}

static struct nvmevf_pci_core_device *nvmevf_of(struct vfio_device *vdev)
{
	return container_of(vdev, struct nvmevf_pci_core_device,
			    core_device.vdev);
}

static struct file *nvmevf_set_mig_state(struct vfio_device *vdev,
					 enum vfio_device_mig_state new)
{
	struct nvmevf_pci_core_device *nvmevf = nvmevf_of(vdev);
	enum vfio_device_mig_state next;
	struct file *res = NULL;
	int ret;

	guard(mutex)(&nvmevf->state_mutex);
	/* only a reset leaves ERROR (the core WARNs on an arc from it) */
	if (nvmevf->mig_state == VFIO_DEVICE_STATE_ERROR)
		return ERR_PTR(-EINVAL);
	while (new != nvmevf->mig_state) {
		ret = vfio_mig_get_next_state(vdev, nvmevf->mig_state, new,
					      &next);
		if (ret)
			return ERR_PTR(ret);
		res = nvmevf_step_locked(nvmevf, next);
		if (IS_ERR(res)) {
			pci_dbg(nvmevf->core_device.pdev,
				"migration arc %d -> %d failed: %ld\n",
				nvmevf->mig_state, next, PTR_ERR(res));
			nvmevf_fail_locked(nvmevf, PTR_ERR(res));
			return res;
		}
		nvmevf->mig_state = next;
		if (WARN_ON(res && new != next)) {
			fput(res);
			nvmevf_fail_locked(nvmevf, -EINVAL);
			return ERR_PTR(-EINVAL);
		}
	}
	return res;
}

static int nvmevf_get_mig_state(struct vfio_device *vdev,
				enum vfio_device_mig_state *state)
{
	struct nvmevf_pci_core_device *nvmevf = nvmevf_of(vdev);

	guard(mutex)(&nvmevf->state_mutex);
	*state = nvmevf->mig_state;
	return 0;
}

/*
 * Bytes still to come in STOP_COPY: the device's current state size (the
 * Controller State header, read even while running) plus the records
 * around it and whatever of the initial data is unread.
 */
static int nvmevf_get_data_size(struct vfio_device *vdev,
				unsigned long *stop_copy_length)
{
	struct nvmevf_pci_core_device *nvmevf = nvmevf_of(vdev);
	struct nvme_lm_state_hdr *hdr __free(kfree) =
		kmalloc(sizeof(*hdr), GFP_KERNEL);
	struct nvmevf_migf *migf;
	u64 start = ktime_get_ns();
	u64 total, extra;
	unsigned int i;
	int ret;

	if (!hdr)
		return -ENOMEM;

	guard(mutex)(&nvmevf->state_mutex);
	if (test_bit(NVMEVF_LM_PF_EVENT, &nvmevf->lm_flags))
		return -ENODEV;
	migf = nvmevf->saving;
	if (migf) {
		guard(mutex)(&migf->lock);
		if (migf->state == NVMEVF_MIGF_COMPLETE) {
			for (i = 0, total = 0; i < migf->nseg; i++)
				total += migf->seg[i].len;
			*stop_copy_length = total - migf->pos;
			return 0;
		}
	}

	ret = nvmevf_state_hdr(nvmevf, hdr, false, &total);
	if (ret)
		return ret;
	extra = 2 * sizeof(struct nvmevf_rec_hdr);
	if (migf) {
		guard(mutex)(&migf->lock);
		if (migf->seg[0].len > migf->pos)
			extra += migf->seg[0].len - migf->pos;
	} else {
		extra += sizeof(struct nvmevf_stream_hdr) +
			 sizeof(struct nvmevf_rec_hdr) + NVMEVF_COMPAT_MAX;
	}
	*stop_copy_length = total + extra;
	nvmevf_phase_done(nvmevf, NVMEVF_PH_DATA_SIZE, start);
	return 0;
}

static const struct vfio_migration_ops nvmevf_mig_ops = {
	.migration_set_state = nvmevf_set_mig_state,
	.migration_get_state = nvmevf_get_mig_state,
	.migration_get_data_size = nvmevf_get_data_size,
};

/* ---- Hooks for main.c ---- */

/*
 * A PF reset or removal during a migration (any state but RUNNING): fail
 * the files and report ERROR until the device is reset.  A device that is
 * just RUNNING has no migration to fail and keeps its state: the driver
 * does not change state by itself.  Runs from a work item since the
 * notifier may not block on state_mutex (an arc holds it across PF
 * commands the reset cancels).
 */
static void nvmevf_pf_work(struct work_struct *work)
{
	struct nvmevf_pci_core_device *nvmevf =
		container_of(work, struct nvmevf_pci_core_device, pf_work);

	guard(mutex)(&nvmevf->state_mutex);
	if (!test_bit(NVMEVF_LM_PF_EVENT, &nvmevf->lm_flags))
		return;
	if (nvmevf->is_open &&
	    nvmevf->mig_state != VFIO_DEVICE_STATE_RUNNING) {
		pci_warn(nvmevf->core_device.pdev,
			 "PF reset or removed: migration in ERROR until the device is reset\n");
		nvmevf_put_files_locked(nvmevf);
		nvmevf->mig_state = VFIO_DEVICE_STATE_ERROR;
	}
	clear_bit(NVMEVF_LM_PF_EVENT, &nvmevf->lm_flags);
}

/**
 * nvmevf_lm_pf_event() - a PF event, from the PF notifier
 * @nvmevf: the device
 * @event: enum nvme_lm_pf_event
 *
 * Context: the PF's reset worker or remove path: must not issue or wait
 * for PF commands, so it only flags the event (open files fail at once)
 * and queues the work that applies it.
 */
void nvmevf_lm_pf_event(struct nvmevf_pci_core_device *nvmevf,
			unsigned long event)
{
	if (!nvmevf->migratable || event == NVME_LM_PF_LIVE)
		return;
	set_bit(NVMEVF_LM_PF_EVENT, &nvmevf->lm_flags);
	schedule_work(&nvmevf->pf_work);
}

/**
 * nvmevf_lm_init_dev() - initialise the migration part of a device
 * @nvmevf: the device, from vfio_device_ops.init
 */
void nvmevf_lm_init_dev(struct nvmevf_pci_core_device *nvmevf)
{
	mutex_init(&nvmevf->state_mutex);
	INIT_WORK(&nvmevf->pf_work, nvmevf_pf_work);
	nvmevf->mig_state = VFIO_DEVICE_STATE_RUNNING;
}

/**
 * nvmevf_lm_release_dev() - tear down what nvmevf_lm_init_dev() set up
 * @nvmevf: the device, from vfio_device_ops.release
 */
void nvmevf_lm_release_dev(struct nvmevf_pci_core_device *nvmevf)
{
	mutex_destroy(&nvmevf->state_mutex);
}

static int nvmevf_lm_probe_pf(struct nvmevf_pci_core_device *nvmevf,
			      const char **why)
{
	u8 *buf __free(kfree) = kzalloc(NVME_IDENTIFY_DATA_SIZE, GFP_KERNEL);
	struct nvme_command c;
	int ret;

	guard(mutex)(&nvmevf->state_mutex);
	*why = "no controller ID for the VF";
	if (!nvmevf->has_scid)
		return -ENOENT;
	if (!buf)
		return -ENOMEM;

	*why = "Identify Controller of the PF failed";
	nvmevf_cmd_identify(&c, NVME_ID_CNS_CTRL, 0);
	ret = nvmevf_lm_cmd(nvmevf, &c, buf, NVME_IDENTIFY_DATA_SIZE, NULL);
	if (ret)
		return ret;
	*why = "the PF is not a migration management controller (OACS.HMLMS)";
	if (!(get_unaligned_le16(buf + NVME_LM_ID_CTRL_OACS_OFFSET) &
	      NVME_LM_OACS_HMLMS))
		return -EOPNOTSUPP;

	*why = "Identify Supported Controller State Formats failed";
	nvmevf_cmd_identify(&c, NVME_LM_ID_CNS_CTRL_STATE_FMTS, 0);
	ret = nvmevf_lm_cmd(nvmevf, &c, buf, NVME_IDENTIFY_DATA_SIZE, NULL);
	if (ret)
		return ret;
	*why = "the PF offers no vendor specific controller state format";
	ret = nvmevf_csf_uuid(buf, NVME_IDENTIFY_DATA_SIZE, 1,
			      &nvmevf->vs_uuid);
	if (ret)
		return -EOPNOTSUPP;
	*why = "the PF does not offer NVMe controller state version 0";
	nvmevf_parse_csf(buf, NVME_IDENTIFY_DATA_SIZE,
			 NVMEVF_NVME_STATE_VERSION, &nvmevf->vs_uuid,
			 &nvmevf->csvi, &nvmevf->csuuidi);
	if (!nvmevf->csvi || !nvmevf->csuuidi)
		return -EOPNOTSUPP;
	return 0;
}

/**
 * nvmevf_lm_probe() - decide whether the VF can be migrated
 * @nvmevf: the device, before vfio_pci_core_register_device()
 *
 * The VF is migratable when its SCID is known, its PF is a Migration
 * Management Controller (Identify Controller OACS.HMLMS) and the PF's
 * Identify CNS 20h offers NVMe controller state version 0 and at least one
 * vendor specific state format (the first is used).  Otherwise the device
 * is registered without migration and behaves as vfio-pci: probe never
 * fails for this.
 */
void nvmevf_lm_probe(struct nvmevf_pci_core_device *nvmevf)
{
	struct vfio_device *vdev = &nvmevf->core_device.vdev;
	const char *why;
	int ret;

	ret = nvmevf_lm_probe_pf(nvmevf, &why);
	if (ret) {
		pci_info(nvmevf->core_device.pdev,
			 "live migration not supported: %s (%d)\n", why, ret);
		return;
	}
	nvmevf->migratable = true;
	vdev->migration_flags = VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P |
				VFIO_MIGRATION_PRE_COPY;
	vdev->mig_ops = &nvmevf_mig_ops;
}

/**
 * nvmevf_lm_remove() - wait for the PF event work
 * @nvmevf: the device, after the PF notifier is unregistered
 */
void nvmevf_lm_remove(struct nvmevf_pci_core_device *nvmevf)
{
	cancel_work_sync(&nvmevf->pf_work);
}

/**
 * nvmevf_lm_open() - the vfio device is being opened
 * @nvmevf: the device, after vfio_pci_core_enable() (which reset the VF)
 */
void nvmevf_lm_open(struct nvmevf_pci_core_device *nvmevf)
{
	if (!nvmevf->migratable)
		return;
	guard(mutex)(&nvmevf->state_mutex);
	nvmevf_reset_locked(nvmevf);
	nvmevf->is_open = true;
}

/**
 * nvmevf_lm_close() - the vfio device is being closed
 * @nvmevf: the device, before vfio_pci_core_close_device()
 *
 * Disables the migration files (their read/write fail with -ENODEV) and
 * returns the FSM to RUNNING; the core's close resets the VF.
 */
void nvmevf_lm_close(struct nvmevf_pci_core_device *nvmevf)
{
	if (!nvmevf->migratable)
		return;
	guard(mutex)(&nvmevf->state_mutex);
	nvmevf_reset_locked(nvmevf);
	nvmevf->is_open = false;
}

/**
 * nvmevf_lm_reset_done() - the VF was reset (VFIO_DEVICE_RESET, FLR)
 * @nvmevf: the device
 *
 * Context: pci_error_handlers.reset_done, with the core's memory_lock held
 * for VFIO_DEVICE_RESET: state_mutex never nests a user copy or
 * memory_lock, so taking it here cannot deadlock.
 */
void nvmevf_lm_reset_done(struct nvmevf_pci_core_device *nvmevf)
{
	struct nvme_command c;

	if (!nvmevf->migratable)
		return;
	guard(mutex)(&nvmevf->state_mutex);
	nvmevf_reset_locked(nvmevf);
	/*
	 * RUNNING must mean running.  A reset only clears the suspended state
	 * of the controller if no Suspend was still draining: the PF may
	 * complete that Suspend after the reset.  Resume, best effort and
	 * outside the statistics: "not suspended" (3Ah) is the usual answer,
	 * and a PF that is resetting resumes its VFs itself.
	 */
	nvmevf_cmd_resume(&c, nvmevf->scid);
	nvmevf_submit(nvmevf->core_device.pdev, &c, NULL, 0, NULL, NULL);
}

#ifdef CONFIG_VFIO_DEBUGFS
static const char * const nvmevf_phase_names[NVMEVF_PH_NUM] = {
	[NVMEVF_PH_SUSPEND] = "suspend",
	[NVMEVF_PH_RESUME] = "resume",
	[NVMEVF_PH_PRECOPY] = "precopy",
	[NVMEVF_PH_STOP_COPY] = "stop_copy",
	[NVMEVF_PH_RESUMING] = "resuming",
	[NVMEVF_PH_LOAD] = "load",
	[NVMEVF_PH_DATA_SIZE] = "data_size",
};

static int nvmevf_lm_stats_show(struct seq_file *m, void *unused)
{
	struct nvmevf_pci_core_device *nvmevf = m->private;
	struct nvmevf_lm_stats *st = &nvmevf->stats;
	unsigned int i;

	guard(mutex)(&nvmevf->state_mutex);
	seq_printf(m, "csvi: %u\ncsuuidi: %u\nvendor_state: %pUb\n",
		   nvmevf->csvi, nvmevf->csuuidi, &nvmevf->vs_uuid);
	seq_printf(m, "commands: %llu\ncommand_errors: %llu\n",
		   st->cmd.commands, st->cmd.errors);
	if (st->cmd.last_status < 0)
		seq_printf(m, "last_status: %d\n", st->cmd.last_status);
	else
		seq_printf(m, "last_status: 0x%x\n", st->cmd.last_status);
	seq_printf(m, "failed_arcs: %llu\nlast_error: %d\n",
		   st->failed_arcs, st->last_error);
	seq_printf(m, "bytes_saved: %lld\nbytes_loaded: %lld\n",
		   atomic64_read(&st->bytes_saved),
		   atomic64_read(&st->bytes_loaded));
	for (i = 0; i < NVMEVF_PH_NUM; i++)
		seq_printf(m, "%s_us: %llu\n", nvmevf_phase_names[i],
			   div_u64(st->duration_ns[i], NSEC_PER_USEC));
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(nvmevf_lm_stats);

/**
 * nvmevf_lm_debugfs_init() - <debugfs>/vfio/<VF>/migration/nvme
 * @nvmevf: the device, after registration (the core made migration/)
 */
void nvmevf_lm_debugfs_init(struct nvmevf_pci_core_device *nvmevf)
{
	struct dentry *root = nvmevf->core_device.vdev.debug_root, *mig;

	if (!nvmevf->migratable || IS_ERR_OR_NULL(root))
		return;
	mig = debugfs_lookup("migration", root);
	if (IS_ERR_OR_NULL(mig))
		return;
	debugfs_create_file("nvme", 0400, mig, nvmevf, &nvmevf_lm_stats_fops);
	dput(mig);
}
#else
void nvmevf_lm_debugfs_init(struct nvmevf_pci_core_device *nvmevf)
{
}
#endif
