// SPDX-License-Identifier: GPL-2.0-only
/*
 * nvme-vfio-pci: device DMA logging (VFIO_DEVICE_FEATURE_DMA_LOGGING_*)
 * over TP4159 Track Memory Changes: Track Send (SEL 1) starts and stops
 * tracking the VF's writes to host memory, Track Receive reads and clears
 * what the VF wrote.  Documentation/dirty-tracking.rst has the design.
 *
 * Everything runs under the device's state_mutex: the log ops issue PF
 * commands and share the VF's suspended state with the migration FSM.
 */
#include <linux/bitmap.h>
#include <linux/cleanup.h>
#include <linux/interval_tree.h>
#include <linux/iova_bitmap.h>
#include <linux/ktime.h>
#include <linux/log2.h>
#include <linux/module.h>
#include <linux/nvme.h>
#include <linux/pci.h>
#include <linux/slab.h>
#include <linux/sort.h>
#include <linux/vfio.h>
#include <linux/xarray.h>
#include <kunit/visibility.h>

#include "nvme-vfio-pci.h"

MODULE_IMPORT_NS("IOMMUFD");

/* Granules per chunk of the pending set: one 64-byte bitmap */
#define NVMEVF_CHUNK_BITS	512

/* Largest Track Receive buffer: 1023 descriptors after the header */
#define NVMEVF_RECV_MAX		SZ_16K

/* Tries of Track Send after Not Enough Resources */
#define NVMEVF_START_TRIES	8

static u64 nvmevf_gran(const struct nvmevf_dirty *d)
{
	return SZ_4K << d->rmrtg;
}

/* ---- Runs to report: collected under state_mutex, set after it ---- */

/*
 * iova_bitmap_set() may pin the next part of the user's bitmap
 * (pin_user_pages, mmap_lock), and a fault on the VF's BAR mmap takes the
 * core's memory_lock under mmap_lock, which reset_done holds while it takes
 * state_mutex: the bits are therefore set after state_mutex is dropped.
 */
struct nvmevf_runs {
	struct nvme_lm_range *r;
	u32 n;
	u32 cap;
};

static int nvmevf_runs_add(struct nvmevf_runs *runs, u64 start, u64 end)
{
	if (start >= end)
		return 0;
	if (runs->n && runs->r[runs->n - 1].start + runs->r[runs->n - 1].len == start) {
		runs->r[runs->n - 1].len += end - start;
		return 0;
	}
	if (runs->n == runs->cap) {
		u32 cap = runs->cap ? 2 * runs->cap : 64;
		struct nvme_lm_range *r = krealloc_array(runs->r, cap, sizeof(*r),
							GFP_KERNEL);

		if (!r)
			return -ENOMEM;
		runs->r = r;
		runs->cap = cap;
	}
	runs->r[runs->n].start = start;
	runs->r[runs->n].len = end - start;
	runs->n++;
	return 0;
}

/**
 * struct nvmevf_window - the report window, in bytes and granules
 * @start: first byte
 * @end: byte after the last
 * @first: first granule touching the window
 * @last: last granule touching the window
 * @full_first: first granule entirely inside the window
 * @full_end: the granule after the last one entirely inside the window;
 *	none is when @full_end <= @full_first
 */
struct nvmevf_window {
	u64 start, end;
	u64 first, last;
	u64 full_first, full_end;
};

/* granules [g, e]: their bytes inside the window, clipped, become a run */
static int nvmevf_window_set(struct nvmevf_runs *runs,
			     const struct nvmevf_window *w, u64 g, u64 e,
			     u64 gran)
{
	return nvmevf_runs_add(runs, max(g * gran, w->start),
			       min((e + 1) * gran, w->end));
}

/* ---- The pending set: reported granules not yet handed to VFIO ---- */

/*
 * Track Receive drains the whole controller while VFIO reads one window of
 * the IOVA space at a time: what belongs to other windows waits here, in
 * 512-granule chunks keyed by chunk index.  Memory and time are
 * proportional to the dirty granules, not to the tracked ranges.
 */
static int nvmevf_pending_add(struct nvmevf_dirty *d, u64 gidx, u64 n)
{
	while (n) {
		unsigned long cidx = gidx / NVMEVF_CHUNK_BITS;
		unsigned int bit = gidx % NVMEVF_CHUNK_BITS;
		unsigned int cnt = min_t(u64, n, NVMEVF_CHUNK_BITS - bit);
		unsigned long *bits = xa_load(&d->pending, cidx);

		if (!bits) {
			bits = bitmap_zalloc(NVMEVF_CHUNK_BITS, GFP_KERNEL);
			if (!bits)
				return -ENOMEM;
			if (xa_err(xa_store(&d->pending, cidx, bits,
					    GFP_KERNEL))) {
				bitmap_free(bits);
				return -ENOMEM;
			}
			d->pending_chunks++;
		}
		bitmap_set(bits, bit, cnt);
		gidx += cnt;
		n -= cnt;
	}
	return 0;
}

/*
 * The pending granules touching the window become runs; those entirely
 * inside it leave the set (a granule the window only partly covers stays
 * for the neighbouring window).
 */
static int nvmevf_pending_drain(struct nvmevf_dirty *d,
				const struct nvmevf_window *w,
				struct nvmevf_runs *runs)
{
	unsigned long cidx = w->first / NVMEVF_CHUNK_BITS;
	unsigned long *bits;
	u64 gran = nvmevf_gran(d);
	int ret;

	xa_for_each_range(&d->pending, cidx, bits, w->first / NVMEVF_CHUNK_BITS,
			  w->last / NVMEVF_CHUNK_BITS) {
		u64 base = (u64)cidx * NVMEVF_CHUNK_BITS;
		unsigned int lo = w->first > base ? w->first - base : 0;
		unsigned int hi = min_t(u64, w->last - base + 1, NVMEVF_CHUNK_BITS);
		unsigned int s = lo, e, clo, chi;

		for_each_set_bitrange_from(s, e, bits, hi) {
			ret = nvmevf_window_set(runs, w, base + s, base + e - 1,
						gran);
			if (ret)
				return ret;
			d->reported += e - s;
		}
		/* clear what lies entirely inside the window */
		clo = max(w->full_first, base) - base;
		chi = min_t(u64, w->full_end, base + NVMEVF_CHUNK_BITS) - base;
		if (w->full_end > base && chi > clo)
			bitmap_clear(bits, clo, chi - clo);
		if (bitmap_empty(bits, NVMEVF_CHUNK_BITS)) {
			xa_erase(&d->pending, cidx);
			bitmap_free(bits);
			d->pending_chunks--;
		}
	}
	return 0;
}

static void nvmevf_pending_free(struct nvmevf_dirty *d)
{
	unsigned long cidx;
	unsigned long *bits;

	xa_for_each(&d->pending, cidx, bits)
		bitmap_free(bits);
	xa_destroy(&d->pending);
	d->pending_chunks = 0;
}

/* ---- Ranges ---- */

static int nvmevf_range_cmp(const void *a, const void *b)
{
	const struct nvme_lm_range *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

/*
 * Align @r[0..n) to the granule (and, for MRTLL, to power-of-two lengths),
 * sort them and merge those that now touch; then merge the closest
 * neighbours until at most @max remain.  Returns the count.
 */
VISIBLE_IF_KUNIT u32 nvmevf_ranges_fit(struct nvme_lm_range *r, u32 n,
				       u64 gran, bool pow2, u32 max)
{
	u32 i, j;

	for (i = 0; i < n; i++) {
		u64 start = round_down(r[i].start, gran);
		u64 end = round_up(r[i].start + r[i].len, gran);

		r[i].start = start;
		r[i].len = end - start;
	}
	sort(r, n, sizeof(*r), nvmevf_range_cmp, NULL);
	for (;;) {
		u32 merged;

		if (pow2)
			for (i = 0; i < n; i++)
				r[i].len = roundup_pow_of_two(r[i].len);
		/* merge overlapping or touching ranges */
		for (i = 0, j = 1; j < n; j++) {
			if (r[j].start <= r[i].start + r[i].len) {
				u64 end = max(r[i].start + r[i].len,
					      r[j].start + r[j].len);

				r[i].len = end - r[i].start;
			} else {
				r[++i] = r[j];
			}
		}
		merged = n ? i + 1 : 0;
		/* a merged length is rounded up again */
		if (pow2 && merged < n) {
			n = merged;
			continue;
		}
		n = merged;
		if (n <= max)
			return n;
		/* merge the two neighbours with the smallest gap */
		for (i = 1, j = 1; i < n - 1; i++)
			if (r[i + 1].start - (r[i].start + r[i].len) <
			    r[j].start - (r[j - 1].start + r[j - 1].len))
				j = i + 1;
		r[j - 1].len = r[j].start + r[j].len - r[j - 1].start;
		memmove(&r[j], &r[j + 1], (n - j - 1) * sizeof(*r));
		n--;
	}
}
EXPORT_SYMBOL_IF_KUNIT(nvmevf_ranges_fit);

static bool nvmevf_in_ranges(const struct nvmevf_dirty *d, u64 start, u64 len)
{
	u32 i;

	for (i = 0; i < d->nranges; i++)
		if (start >= d->ranges[i].start &&
		    start - d->ranges[i].start <= d->ranges[i].len &&
		    len <= d->ranges[i].len - (start - d->ranges[i].start))
			return true;
	return false;
}

/* ---- Track Send ---- */

/* Track Send, start or stop; returns what nvme-pci returned */
static int nvmevf_track_send(struct nvmevf_pci_core_device *nvmevf,
			     bool start, u8 rmrtg,
			     const struct nvme_lm_range *r, u32 n,
			     struct nvme_lm_track_limits *lim)
{
	struct pci_dev *pdev = nvmevf->core_device.pdev;
	int status;

	if (start)
		status = nvme_pci_vf_track_mem_start(pdev, rmrtg, r, n, lim);
	else
		status = nvme_pci_vf_track_mem_stop(pdev);
	return nvmevf_account(&nvmevf->stats.cmd, NVMEVF_CK_TRACK_SEND, status);
}

/*
 * Stop tracking on the device.  TP4159 refuses Track Send on a suspended
 * controller (39h): the stop is then kept pending and sent by
 * nvmevf_dirty_flush_stop_locked() once the VF runs again (Resume, reset,
 * close) - the subsystem's NMMRTD budget must not leak.  A stop that
 * failed otherwise is kept pending too: the device may still be tracking,
 * and would refuse the next start (1Fh).  The next flush point or start
 * sends it again; a stop of an untracked controller succeeds.
 */
static int nvmevf_dirty_stop_locked(struct nvmevf_pci_core_device *nvmevf)
{
	struct nvmevf_dirty *d = &nvmevf->dirty;
	int status;

	lockdep_assert_held(&nvmevf->state_mutex);
	status = nvmevf_track_send(nvmevf, false, 0, NULL, 0, NULL);
	d->stop_pending = status != 0;
	if (status > 0 &&
	    (status & NVME_SCT_SC_MASK) == NVME_SC_CTRL_SUSPENDED)
		return 0;
	return nvmevf_status_to_errno(status);
}

/**
 * nvmevf_dirty_resumed_locked() - the VF runs again
 * @nvmevf: the device, with state_mutex held, after a successful Resume
 *
 * Sends a stop left pending; what the VF writes from now on must be
 * drained again.
 */
void nvmevf_dirty_resumed_locked(struct nvmevf_pci_core_device *nvmevf)
{
	nvmevf->dirty.drained_suspended = false;
	nvmevf_dirty_flush_stop_locked(nvmevf);
}

/**
 * nvmevf_dirty_flush_stop_locked() - send a stop left pending
 * @nvmevf: the device, with state_mutex held; the VF no longer suspended
 *
 * Called after a Resume, from the post-reset work, at close and on a PF
 * event.  Best effort: a failure is logged and the stop stays pending.
 */
void nvmevf_dirty_flush_stop_locked(struct nvmevf_pci_core_device *nvmevf)
{
	if (!nvmevf->dirty.stop_pending)
		return;
	if (nvmevf_dirty_stop_locked(nvmevf))
		pci_warn(nvmevf->core_device.pdev,
			 "stopping memory tracking failed\n");
}

/* VFIO's view of tracking ends: the ranges, the buffer, the pending set. */
static void nvmevf_dirty_forget(struct nvmevf_dirty *d)
{
	d->active = false;
	kfree(d->ranges);
	d->ranges = NULL;
	d->nranges = 0;
	kvfree(d->rxbuf);
	d->rxbuf = NULL;
	nvmevf_pending_free(d);
}

/* Tracking ends: stop on the device (now or pending) and forget the log. */
static int nvmevf_dirty_end_locked(struct nvmevf_pci_core_device *nvmevf)
{
	int ret;

	if (!nvmevf->dirty.active)
		return 0;
	ret = nvmevf_dirty_stop_locked(nvmevf);
	nvmevf_dirty_forget(&nvmevf->dirty);
	return ret;
}

/**
 * nvmevf_dirty_reset_locked() - tracking ends with the device's use
 * @nvmevf: the device, with state_mutex held
 * @send: the VF runs: send the stop now; otherwise (reset_done, under the
 *	core's memory_lock) only mark it pending for the post-reset work
 *
 * VFIO_DEVICE_RESET, close and PF loss stop tracking.
 */
void nvmevf_dirty_reset_locked(struct nvmevf_pci_core_device *nvmevf,
			       bool send)
{
	struct nvmevf_dirty *d = &nvmevf->dirty;

	if (!send) {
		if (d->active)
			d->stop_pending = true;
		nvmevf_dirty_forget(d);
		return;
	}
	nvmevf_dirty_end_locked(nvmevf);
	nvmevf_dirty_flush_stop_locked(nvmevf);
}

/**
 * nvmevf_dirty_pf_lost_locked() - the PF was reset or removed
 * @nvmevf: the device, with state_mutex held
 *
 * A reset of the MMC stops all its tracking (TP4159): nothing is sent.
 */
void nvmevf_dirty_pf_lost_locked(struct nvmevf_pci_core_device *nvmevf)
{
	struct nvmevf_dirty *d = &nvmevf->dirty;

	d->stop_pending = false;
	if (!d->active)
		return;
	d->lost = true;
	nvmevf_dirty_forget(d);
}

/* ---- vfio_log_ops ---- */

static int nvmevf_log_start_locked(struct nvmevf_pci_core_device *nvmevf,
				   struct rb_root_cached *ranges, u32 nnodes,
				   u64 *page_size)
{
	struct nvmevf_dirty *d = &nvmevf->dirty;
	const struct nvmevf_track_caps *caps = &d->caps;
	struct nvme_lm_range *r __free(kfree) = NULL;
	struct interval_tree_node *node;
	u32 n, max = caps->cmmrtd, i;
	struct nvme_lm_track_limits lim;
	u8 rmrtg;
	int status = 0, try;

	if (test_bit(NVMEVF_LM_PF_EVENT, &nvmevf->lm_flags))
		return -ENODEV;
	if (d->active)
		return -EBUSY;
	/* a stop still pending from the last session: the VF is suspended */
	nvmevf_dirty_flush_stop_locked(nvmevf);
	if (d->stop_pending)
		return -EBUSY;
	if (!nnodes || *page_size < SZ_4K || !is_power_of_2(*page_size))
		return -EINVAL;

	/* the granularity nearest the page size, within the PF's limits */
	rmrtg = clamp_t(u32, ilog2(*page_size) - ilog2(SZ_4K), caps->minmrtg,
			caps->maxmrtg);

	if (nnodes > max)
		vfio_combine_iova_ranges(ranges, nnodes, max);
	r = kcalloc(nnodes, sizeof(*r), GFP_KERNEL);
	if (!r)
		return -ENOMEM;
	n = 0;
	for (node = interval_tree_iter_first(ranges, 0, ULONG_MAX); node && n < nnodes;
	     node = interval_tree_iter_next(node, 0, ULONG_MAX)) {
		r[n].start = node->start;
		r[n].len = node->last - node->start + 1;
		n++;
	}

	for (try = 0; try < NVMEVF_START_TRIES; try++) {
		n = nvmevf_ranges_fit(r, n, SZ_4K << rmrtg,
				      caps->trattr & NVME_LM_TRATTR_MRTLL, max);
		memset(&lim, 0, sizeof(lim));
		status = nvmevf_track_send(nvmevf, true, rmrtg, r, n, &lim);
		if (status <= 0 ||
		    (status & NVME_SCT_SC_MASK) != NVME_SC_NOT_ENOUGH_RESOURCES)
			break;
		/* 38h: the finest granularity it can do, and how many */
		if (lim.mrtg > caps->maxmrtg ||
		    (lim.mrtg <= rmrtg && (!lim.nmrtd || lim.nmrtd >= n)))
			return -ENOSPC;
		if (lim.mrtg > rmrtg)
			rmrtg = lim.mrtg;
		if (lim.nmrtd && lim.nmrtd < n)
			max = lim.nmrtd;
	}
	if (status) {
		pci_dbg(nvmevf->core_device.pdev,
			"Track Send (start) failed: %#x\n", status);
		if ((status & NVME_SCT_SC_MASK) == NVME_SC_NOT_ENOUGH_RESOURCES)
			return -ENOSPC;
		return status < 0 ? status : nvmevf_status_to_errno(status);
	}

	d->rxbuf = kvzalloc(d->rxlen, GFP_KERNEL);
	if (!d->rxbuf) {
		nvmevf_dirty_stop_locked(nvmevf);
		return -ENOMEM;
	}
	for (i = 0; i < n; i++)
		d->tracked_bytes += r[i].len;
	d->ranges = no_free_ptr(r);
	d->nranges = n;
	d->rmrtg = rmrtg;
	d->active = true;
	d->lost = false;
	d->drained_suspended = false;
	d->starts++;
	*page_size = nvmevf_gran(d);
	return 0;
}

static int nvmevf_log_start(struct vfio_device *vdev,
			    struct rb_root_cached *ranges, u32 nnodes,
			    u64 *page_size)
{
	struct nvmevf_pci_core_device *nvmevf = nvmevf_of(vdev);
	int ret;

	if (mutex_lock_killable(&nvmevf->state_mutex))
		return -EINTR;
	if (nvmevf->resetting)
		ret = -EBUSY;
	else
		ret = nvmevf_log_start_locked(nvmevf, ranges, nnodes, page_size);
	mutex_unlock(&nvmevf->state_mutex);
	return ret;
}

static int nvmevf_log_stop(struct vfio_device *vdev)
{
	struct nvmevf_pci_core_device *nvmevf = nvmevf_of(vdev);
	int ret;

	if (mutex_lock_killable(&nvmevf->state_mutex))
		return -EINTR;
	/* in FLR: the stop goes to the PF from the post-reset work */
	if (nvmevf->resetting) {
		nvmevf_dirty_reset_locked(nvmevf, false);
		ret = 0;
	} else {
		ret = nvmevf_dirty_end_locked(nvmevf);
	}
	nvmevf->dirty.lost = false;
	mutex_unlock(&nvmevf->state_mutex);
	return ret;
}

/*
 * One Track Receive: validate what the PF returned, put what is inside
 * [@first, @last] (granule indexes) into @dirty and the rest into the
 * pending set.  Returns 1 when more is to come, 0 when done, or -EIO.
 */
static int nvmevf_track_recv_once(struct nvmevf_pci_core_device *nvmevf,
				  const struct nvmevf_window *w,
				  struct nvmevf_runs *runs)
{
	struct nvmevf_dirty *d = &nvmevf->dirty;
	struct nvme_lm_tracked_mem *t = d->rxbuf;
	u64 gran = nvmevf_gran(d);
	u32 ntmcd, i;
	u64 start;
	int status;

	start = ktime_get_ns();
	status = nvme_pci_vf_track_mem_recv(nvmevf->core_device.pdev, t,
					    d->rxlen);
	d->recv_ns += ktime_get_ns() - start;
	nvmevf_account(&nvmevf->stats.cmd, NVMEVF_CK_TRACK_RECV, status);
	d->receives++;
	if (status)
		return -EIO;
	ntmcd = le32_to_cpu(t->ntmcd);
	if (t->ver || le16_to_cpu(t->cntlid) != nvmevf->scid ||
	    le16_to_cpu(t->rpmpg) != d->rmrtg ||
	    ntmcd > (d->rxlen - sizeof(*t)) / sizeof(t->desc[0]) ||
	    (!ntmcd && (t->attrb & NVME_LM_TMC_MTR)))
		return -EIO;

	for (i = 0; i < ntmcd; i++) {
		u64 saddr = le64_to_cpu(t->desc[i].saddr);
		u64 n = le32_to_cpu(t->desc[i].len);
		u64 g = saddr / gran, e = g + n - 1, bytes;

		if (!n || saddr & (gran - 1) ||
		    check_mul_overflow(n, gran, &bytes) ||
		    !nvmevf_in_ranges(d, saddr, bytes))
			return -EIO;
		d->granules += n;
		/*
		 * The bytes inside the window now; every granule not entirely
		 * inside it also waits for the neighbouring windows.
		 */
		if (w->full_end <= w->full_first) {
			if (nvmevf_pending_add(d, g, n))
				return -ENOMEM;
		} else {
			if (g < w->full_first &&
			    nvmevf_pending_add(d, g, min(e + 1, w->full_first) - g))
				return -ENOMEM;
			if (e + 1 > w->full_end) {
				u64 p = max(g, w->full_end);

				if (nvmevf_pending_add(d, p, e + 1 - p))
					return -ENOMEM;
			}
		}
		if (g <= w->last && e >= w->first) {
			if (nvmevf_window_set(runs, w, max(g, w->first),
					      min(e, w->last), gran))
				return -ENOMEM;
			d->reported += min(e, w->last) - max(g, w->first) + 1;
		}
	}
	if (!(t->attrb & NVME_LM_TMC_MTR)) {
		/* suspended and drained: nothing new until it resumes */
		if (t->attrb & NVME_LM_TMC_SUSP)
			d->drained_suspended = true;
		return 0;
	}
	return 1;
}

/*
 * Read the device for one report: the pending granules of the window, then
 * Track Receive until MTR = 0.  Once the stopped VF was drained with
 * SUSP = 1 and MTR = 0, TP4159 promises nothing new until it resumes: later
 * reports take the pending set only.  A failure after the device returned
 * (and cleared) changes leaves the log incomplete: every later report fails
 * too, until logging is stopped.
 */
static int nvmevf_log_read_locked(struct nvmevf_pci_core_device *nvmevf,
				  const struct nvmevf_window *w,
				  struct nvmevf_runs *runs)
{
	struct nvmevf_dirty *d = &nvmevf->dirty;
	int ret, i;

	if (d->lost || test_bit(NVMEVF_LM_PF_EVENT, &nvmevf->lm_flags))
		return -EIO;
	if (!d->active)
		return -EINVAL;
	ret = nvmevf_pending_drain(d, w, runs);
	if (ret)
		goto lost;
	if (d->drained_suspended) {
		d->skipped++;
		return 0;
	}
	/* bounded: every command clears what it returns */
	for (i = 0; i < 1 << 20; i++) {
		ret = nvmevf_track_recv_once(nvmevf, w, runs);
		if (!ret)
			return 0;
		if (ret < 0)
			goto lost;
	}
	ret = -EIO;
lost:
	d->lost = true;
	return ret;
}

static int nvmevf_log_read_and_clear(struct vfio_device *vdev,
				     unsigned long iova, unsigned long length,
				     struct iova_bitmap *dirty)
{
	struct nvmevf_pci_core_device *nvmevf = nvmevf_of(vdev);
	struct nvmevf_runs runs = {};
	struct nvmevf_window w;
	u64 start = ktime_get_ns(), gran;
	int ret;
	u32 i;

	if (!length || iova + length - 1 < iova)
		return -EINVAL;
	if (mutex_lock_killable(&nvmevf->state_mutex))
		return -EINTR;
	if (nvmevf->resetting) {
		mutex_unlock(&nvmevf->state_mutex);
		return -EBUSY;
	}
	gran = nvmevf_gran(&nvmevf->dirty);
	w.start = iova;
	w.end = (u64)iova + length;
	w.first = iova / gran;
	w.last = (w.end - 1) / gran;
	w.full_first = DIV_ROUND_UP(w.start, gran);
	w.full_end = w.end / gran;
	ret = nvmevf_log_read_locked(nvmevf, &w, &runs);
	if (ret)
		pci_dbg(nvmevf->core_device.pdev,
			"DMA logging report failed: %d\n", ret);
	nvmevf->dirty.read_ns += ktime_get_ns() - start;
	nvmevf->dirty.reads++;
	mutex_unlock(&nvmevf->state_mutex);

	/* may pin the user's bitmap: not under state_mutex */
	for (i = 0; !ret && i < runs.n; i++)
		iova_bitmap_set(dirty, runs.r[i].start, runs.r[i].len);
	kfree(runs.r);
	return ret;
}

static const struct vfio_log_ops nvmevf_log_ops = {
	.log_start = nvmevf_log_start,
	.log_stop = nvmevf_log_stop,
	.log_read_and_clear = nvmevf_log_read_and_clear,
};

/**
 * nvmevf_dirty_probe() - offer DMA logging if the PF tracks host memory
 * @nvmevf: the device, before registration, with its probe results
 * @id: the PF's Identify Controller data
 * @max_transfer: the PF's largest transfer of one command
 *
 * DMA logging is advertised only when TRATTR.THMCS is set and the limits
 * are usable (CMMRTD >= 1, MINMRTG <= MAXMRTG).
 */
void nvmevf_dirty_probe(struct nvmevf_pci_core_device *nvmevf,
			const struct nvme_id_ctrl *id, u32 max_transfer)
{
	struct nvmevf_dirty *d = &nvmevf->dirty;

	d->caps.cmmrtd = le16_to_cpu(id->cmmrtd);
	d->caps.nmmrtd = le16_to_cpu(id->nmmrtd);
	d->caps.minmrtg = id->minmrtg;
	d->caps.maxmrtg = id->maxmrtg;
	d->caps.trattr = id->trattr;
	if (!(id->trattr & NVME_LM_TRATTR_THMCS) || !d->caps.cmmrtd ||
	    d->caps.minmrtg > d->caps.maxmrtg || d->caps.maxmrtg > 51) {
		pci_info(nvmevf->core_device.pdev,
			 "no DMA logging: the PF does not track host memory changes\n");
		return;
	}
	d->rxlen = rounddown_pow_of_two(min_t(u32, max_transfer,
					      NVMEVF_RECV_MAX));
	if (d->rxlen < sizeof(struct nvme_lm_tracked_mem) +
		       sizeof(struct nvme_lm_tmcd))
		return;
	nvmevf->core_device.vdev.log_ops = &nvmevf_log_ops;
}

/**
 * nvmevf_dirty_init() - initialise the tracking part of a device
 * @nvmevf: the device
 */
void nvmevf_dirty_init(struct nvmevf_pci_core_device *nvmevf)
{
	xa_init(&nvmevf->dirty.pending);
}
