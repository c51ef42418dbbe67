// SPDX-License-Identifier: GPL-2.0-only
/*
 * vfio-nvme dirty tracking tests: VFIO_DEVICE_FEATURE_DMA_LOGGING_START,
 * REPORT and STOP on nvme-vfio-pci, backed by TP4159 Track Memory Changes
 * in the device model.  The VF writes into known pages of its DMA arena
 * (Identify data, Read payloads, completion queue entries) and the reports
 * must name exactly those pages.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <linux/vfio.h>

#include "kselftest_harness.h"
#include "lib/vnl.h"

#define DRIVER		"nvme_vfio_pci"
#define IOVA_A		0x10000000ull
#define ARENA_SIZE	0x100000
#define SZ_64K		0x10000ull
#define SZ_1G		0x40000000ull

/* one bit per page of the arena, whatever the page size */
#define MAX_BITS	(ARENA_SIZE / VNL_PAGE)

FIXTURE(dirty) {
	struct vnl_rig rig;
	struct vnl_dev dev;
	struct vnl_ctrl ctrl;
	void *data[4];
	uint64_t iova[4];
	bool logging;
};

FIXTURE_SETUP(dirty)
{
	struct vnl_ctrl *c = &self->ctrl;
	uint64_t filler;
	int i;

	self->dev.device_fd = -1;
	ASSERT_EQ(0, vnl_rig_open(&self->rig, DRIVER)) TH_LOG("%s", vnl_err);
	ASSERT_EQ(0, vnl_dev_open(&self->dev, self->rig.bdf[0], VNL_IOMMUFD,
				  IOVA_A, ARENA_SIZE)) TH_LOG("%s", vnl_err);
	ASSERT_EQ(0, vnl_ctrl_enable(c, &self->dev, 16)) TH_LOG("%s", vnl_err);
	ASSERT_EQ(0, vnl_create_ioq(c, 1, 16, false, 0)) TH_LOG("%s", vnl_err);
	/* data pages 0 and 1 low in the arena, 2 and 3 in its upper half */
	for (i = 0; i < 4; i++) {
		if (i == 2)
			ASSERT_NE(NULL, vnl_dma_alloc(&self->dev, ARENA_SIZE / 2, &filler));
		self->data[i] = vnl_dma_alloc(&self->dev, VNL_PAGE, &self->iova[i]);
		ASSERT_NE(NULL, self->data[i]);
	}
	ASSERT_GE(self->iova[2], IOVA_A + ARENA_SIZE / 2);
}

FIXTURE_TEARDOWN(dirty)
{
	vnl_lm_fault("nvme0", "none", 0, 6);
	if (self->dev.device_fd >= 0) {
		if (self->logging)
			vnl_dma_log_stop(&self->dev);
		vnl_mig_set_state(&self->dev, S_RUNNING, NULL);
		vnl_dev_close(&self->dev);
	}
	vnl_rig_close(&self->rig);
}

/* a Read of one page into data page @i: the payload and a CQE are written */
static int dev_read(struct vnl_ctrl *c, uint64_t iova, uint64_t slba)
{
	return vnl_rw(c, NVME_CMD_READ, 1, slba, VNL_PAGE / c->lba_size, iova);
}

static bool bit(const uint64_t *map, uint64_t n)
{
	return map[n / 64] >> (n % 64) & 1;
}

/* the pages set in @map (of @npages pages of @ps bytes from @base) */
static int count_bits(const uint64_t *map, uint64_t npages)
{
	uint64_t i;
	int n = 0;

	for (i = 0; i < npages; i++)
		n += bit(map, i);
	return n;
}

/* report [IOVA_A, +ARENA_SIZE) at @ps into @map */
static int report_arena(struct vnl_dev *d, uint64_t ps, uint64_t *map)
{
	return vnl_dma_log_report(d, IOVA_A, ARENA_SIZE, ps, map);
}

static void set_page(uint64_t *map, uint64_t iova, uint64_t ps)
{
	uint64_t n = (iova - IOVA_A) / ps;

	map[n / 64] |= 1ull << (n % 64);
}

/*
 * At page size @ps: after a clearing report, an Identify and two Reads;
 * the report names exactly the Identify data page, the two payload pages
 * and the admin and I/O CQ pages; a second report is empty.
 */
static void exact_pages(struct __test_metadata *_metadata, struct vnl_ctrl *c,
			const uint64_t *iova, bool *logging, uint64_t ps)
{
	struct vnl_dev *d = c->dev;
	struct vnl_range r = { IOVA_A, ARENA_SIZE };
	uint64_t map[MAX_BITS / 64], want[MAX_BITS / 64] = {};
	uint64_t got = ps, npages = ARENA_SIZE / ps, i;

	ASSERT_EQ(0, vnl_dma_log_start(d, &got, &r, 1));
	*logging = true;
	EXPECT_EQ(ps, got);
	ASSERT_EQ(0, report_arena(d, ps, map));

	ASSERT_EQ(0, vnl_identify(c, 0x01, 0, 0, NULL));
	ASSERT_EQ(0, dev_read(c, iova[0], 10));
	ASSERT_EQ(0, dev_read(c, iova[2], 11));
	set_page(want, c->buf_iova, ps);
	set_page(want, c->aq.cq_iova, ps);
	set_page(want, c->ioq.cq_iova, ps);
	set_page(want, iova[0], ps);
	set_page(want, iova[2], ps);

	ASSERT_EQ(0, report_arena(d, ps, map));
	for (i = 0; i < npages; i++) {
		EXPECT_EQ(bit(want, i), bit(map, i))
			TH_LOG("page %#llx at %llu bytes: expected %d",
			       (unsigned long long)(IOVA_A + i * ps),
			       (unsigned long long)ps, (int)bit(want, i));
	}
	ASSERT_EQ(0, report_arena(d, ps, map));
	EXPECT_EQ(0, count_bits(map, npages));
	EXPECT_EQ(0, vnl_dma_log_stop(d));
	*logging = false;
}

TEST_F(dirty, reports_exactly_written_pages_4k)
{
	exact_pages(_metadata, &self->ctrl, self->iova, &self->logging, VNL_PAGE);
}

TEST_F(dirty, reports_exactly_written_pages_64k)
{
	exact_pages(_metadata, &self->ctrl, self->iova, &self->logging, SZ_64K);
}

/*
 * More ranges than the PF tracks (the rig's CMMRTD is 2): the driver
 * merges them and every written page is still reported, range by range as
 * QEMU asks.
 */
TEST_F(dirty, more_ranges_than_cmmrtd)
{
	struct vnl_range r[4];
	uint64_t map[1], ps = VNL_PAGE;
	int i;

	for (i = 0; i < 4; i++) {
		r[i].addr = self->iova[i];
		r[i].len = VNL_PAGE;
	}
	ASSERT_EQ(0, vnl_dma_log_start(&self->dev, &ps, r, 4));
	self->logging = true;
	EXPECT_LE(vnl_debugfs_stat(self->rig.bdf[0], "dirty_ranges"), 2);
	for (i = 0; i < 4; i++)
		ASSERT_EQ(0, dev_read(&self->ctrl, self->iova[i], 20 + i));
	for (i = 0; i < 4; i++) {
		ASSERT_EQ(0, vnl_dma_log_report(&self->dev, r[i].addr, r[i].len,
						VNL_PAGE, map));
		EXPECT_EQ(1, map[0] & 1) TH_LOG("page %d not reported", i);
	}
}

/* A page written outside every tracked range is not reported. */
TEST_F(dirty, write_outside_ranges_not_reported)
{
	struct vnl_range r[2] = {
		{ self->iova[0], VNL_PAGE }, { self->iova[2], VNL_PAGE },
	};
	uint64_t map[MAX_BITS / 64], ps = VNL_PAGE;

	ASSERT_EQ(0, vnl_dma_log_start(&self->dev, &ps, r, 2));
	self->logging = true;
	ASSERT_EQ(0, dev_read(&self->ctrl, self->iova[1], 30));
	ASSERT_EQ(0, dev_read(&self->ctrl, self->iova[3], 31));
	ASSERT_EQ(0, dev_read(&self->ctrl, self->iova[0], 32));
	ASSERT_EQ(0, report_arena(&self->dev, ps, map));
	EXPECT_EQ(1, count_bits(map, MAX_BITS));
	EXPECT_TRUE(bit(map, (self->iova[0] - IOVA_A) / VNL_PAGE));
}

/*
 * QEMU's three ranges: RAM below 4 GiB, RAM above 4 GiB, the 64-bit PCI
 * hole; reported per range, the arena's writes are in the first.
 */
TEST_F(dirty, qemu_range_layout)
{
	struct vnl_range r[3] = {
		{ 0, 3 * SZ_1G }, { 4 * SZ_1G, 2 * SZ_1G },
		{ 512 * SZ_1G, SZ_1G },
	};
	uint64_t *map, ps = VNL_PAGE, n;
	int i;

	map = calloc(3 * SZ_1G / VNL_PAGE / 64, 8);
	ASSERT_NE(NULL, map);
	ASSERT_EQ(0, vnl_dma_log_start(&self->dev, &ps, r, 3));
	self->logging = true;
	EXPECT_EQ(VNL_PAGE, ps);
	ASSERT_EQ(0, dev_read(&self->ctrl, self->iova[1], 40));
	ASSERT_EQ(0, vnl_dma_log_report(&self->dev, r[0].addr, r[0].len, ps, map));
	n = self->iova[1] / VNL_PAGE;
	EXPECT_TRUE(bit(map, n));
	EXPECT_TRUE(bit(map, self->ctrl.ioq.cq_iova / VNL_PAGE));
	EXPECT_EQ(2, count_bits(map, 3 * SZ_1G / VNL_PAGE));
	for (i = 1; i < 3; i++) {
		ASSERT_EQ(0, vnl_dma_log_report(&self->dev, r[i].addr, r[i].len,
						ps, map));
		EXPECT_EQ(0, count_bits(map, r[i].len / VNL_PAGE));
	}
	free(map);
}

/*
 * Track Receive drains the whole VF; a report for one window keeps the
 * other windows' pages for their own reports.
 */
TEST_F(dirty, window_keeps_other_windows)
{
	struct vnl_range r = { IOVA_A, ARENA_SIZE };
	const uint64_t half = ARENA_SIZE / 2;
	uint64_t map[MAX_BITS / 64], ps = VNL_PAGE;

	ASSERT_EQ(0, vnl_dma_log_start(&self->dev, &ps, &r, 1));
	self->logging = true;
	ASSERT_EQ(0, report_arena(&self->dev, ps, map));
	ASSERT_EQ(0, dev_read(&self->ctrl, self->iova[0], 50));
	ASSERT_EQ(0, dev_read(&self->ctrl, self->iova[3], 51));
	/* the lower half: payload 0 and the I/O CQ, not payload 3 */
	ASSERT_EQ(0, vnl_dma_log_report(&self->dev, IOVA_A, half, ps, map));
	EXPECT_TRUE(bit(map, (self->iova[0] - IOVA_A) / VNL_PAGE));
	EXPECT_EQ(2, count_bits(map, half / VNL_PAGE));
	/* the upper half: payload 3, kept since the first report */
	EXPECT_GT(vnl_debugfs_stat(self->rig.bdf[0], "dirty_pending_chunks"), 0);
	ASSERT_EQ(0, vnl_dma_log_report(&self->dev, IOVA_A + half, half, ps, map));
	EXPECT_TRUE(bit(map, (self->iova[3] - IOVA_A - half) / VNL_PAGE));
	EXPECT_EQ(1, count_bits(map, half / VNL_PAGE));
	EXPECT_EQ(0, vnl_debugfs_stat(self->rig.bdf[0], "dirty_pending_chunks"));
	ASSERT_EQ(0, report_arena(&self->dev, ps, map));
	EXPECT_EQ(0, count_bits(map, MAX_BITS));
}

/* The uAPI's errors, and a tracking fault of the device. */
TEST_F(dirty, errors)
{
	struct vnl_range r = { IOVA_A, ARENA_SIZE };
	uint64_t map[MAX_BITS / 64], ps = VNL_PAGE;

	/* REPORT without START */
	EXPECT_EQ(-EINVAL, report_arena(&self->dev, VNL_PAGE, map));
	/* a page size that is not a power of two, an unaligned IOVA */
	ps = 3 * VNL_PAGE;
	r.len = 3 * VNL_PAGE;
	EXPECT_EQ(-EINVAL, vnl_dma_log_start(&self->dev, &ps, &r, 1));
	ps = VNL_PAGE;
	r.addr = IOVA_A + 512;
	EXPECT_EQ(-EINVAL, vnl_dma_log_start(&self->dev, &ps, &r, 1));
	r.addr = IOVA_A;
	r.len = ARENA_SIZE;
	/* a device refusing the start: an errno, nothing left active */
	ASSERT_EQ(0, vnl_lm_fault("nvme0", "track-send", 1, 0x6)) TH_LOG("%s", vnl_err);
	EXPECT_EQ(-EIO, vnl_dma_log_start(&self->dev, &ps, &r, 1));
	EXPECT_EQ(-EINVAL, report_arena(&self->dev, VNL_PAGE, map));
	/* START twice */
	ASSERT_EQ(0, vnl_dma_log_start(&self->dev, &ps, &r, 1));
	self->logging = true;
	EXPECT_EQ(-EBUSY, vnl_dma_log_start(&self->dev, &ps, &r, 1));
	/* a tracking fault: -EIO */
	ASSERT_EQ(0, vnl_lm_fault("nvme0", "track-recv", 1, 0x6));
	EXPECT_EQ(-EIO, report_arena(&self->dev, VNL_PAGE, map));
	EXPECT_EQ(0, vnl_dma_log_stop(&self->dev));
	self->logging = false;
	EXPECT_EQ(-EINVAL, report_arena(&self->dev, VNL_PAGE, map));
	/* and logging works again */
	ASSERT_EQ(0, vnl_dma_log_start(&self->dev, &ps, &r, 1));
	self->logging = true;
	EXPECT_EQ(0, report_arena(&self->dev, VNL_PAGE, map));
}

/*
 * QEMU stops logging after the migration completed, with the source VF in
 * STOP: TP4159 refuses that (39h), the driver keeps the stop pending and
 * sends it on Resume.  More starts than the subsystem's NMMRTD (4 in the
 * rig) prove no descriptor budget leaks.  A report while suspended works.
 */
TEST_F(dirty, stop_while_suspended_keeps_budget)
{
	struct vnl_range r = { IOVA_A, ARENA_SIZE };
	uint64_t map[MAX_BITS / 64], ps = VNL_PAGE;
	int i;

	for (i = 0; i < 6; i++) {
		ASSERT_EQ(0, vnl_dma_log_start(&self->dev, &ps, &r, 1))
			TH_LOG("start %d", i);
		self->logging = true;
		ASSERT_EQ(0, dev_read(&self->ctrl, self->iova[0], 60));
		ASSERT_EQ(0, vnl_mig_set_state(&self->dev, S_STOP, NULL));
		ASSERT_EQ(0, report_arena(&self->dev, ps, map));
		EXPECT_TRUE(bit(map, (self->iova[0] - IOVA_A) / VNL_PAGE));
		EXPECT_EQ(0, vnl_dma_log_stop(&self->dev));
		self->logging = false;
		EXPECT_EQ(1, vnl_debugfs_stat(self->rig.bdf[0], "dirty_stop_pending"));
		ASSERT_EQ(0, vnl_mig_set_state(&self->dev, S_RUNNING, NULL));
		EXPECT_EQ(0, vnl_debugfs_stat(self->rig.bdf[0], "dirty_stop_pending"));
	}
}

/*
 * A VMM's migration with logging: every page the device wrote between
 * START and the final report (taken with the VF stopped) is in the union
 * of the reports.
 */
TEST_F(dirty, migration_with_logging_misses_nothing)
{
	struct vnl_range r = { IOVA_A, ARENA_SIZE };
	uint64_t map[MAX_BITS / 64], seen[MAX_BITS / 64] = {};
	uint64_t want[MAX_BITS / 64] = {}, ps = VNL_PAGE, i;
	struct vnl_ctrl *c = &self->ctrl;
	struct vnl_sqe rd;
	uint8_t *stream = NULL;
	size_t len = 0;
	int fd, k, missed = 0;

	ASSERT_EQ(0, vnl_dma_log_start(&self->dev, &ps, &r, 1));
	self->logging = true;
	set_page(want, c->ioq.cq_iova, ps);
	set_page(want, c->aq.cq_iova, ps);
	set_page(want, c->buf_iova, ps);
	ASSERT_EQ(0, dev_read(c, self->iova[0], 70));
	ASSERT_EQ(0, vnl_mig_set_state(&self->dev, S_PRE_COPY, &fd));
	for (k = 0; k < 3; k++) {
		ASSERT_EQ(0, report_arena(&self->dev, ps, map));
		for (i = 0; i < MAX_BITS / 64; i++)
			seen[i] |= map[i];
		ASSERT_EQ(0, dev_read(c, self->iova[1 + k], 71 + k));
		ASSERT_EQ(0, vnl_identify(c, 0x01, 0, 0, NULL));
	}
	for (k = 0; k < 4; k++)
		set_page(want, self->iova[k], ps);
	ASSERT_EQ(0, vnl_mig_set_state(&self->dev, S_PRE_COPY_P2P, NULL));
	/* a Read submitted now runs on the destination, not here */
	rd = (struct vnl_sqe){ .opc = NVME_CMD_READ, .nsid = 1,
			       .prp1 = self->iova[3], .cdw10 = 80 };
	vnl_submit(c, &c->ioq, &rd);
	ASSERT_EQ(0, vnl_mig_set_state(&self->dev, S_STOP_COPY, NULL));
	EXPECT_EQ(0, vnl_mig_read(fd, &stream, &len, 4096));
	close(fd);
	/* the final sync, with the VF stopped */
	ASSERT_EQ(0, report_arena(&self->dev, ps, map));
	for (i = 0; i < MAX_BITS / 64; i++)
		seen[i] |= map[i];
	for (i = 0; i < MAX_BITS; i++)
		if (bit(want, i) && !bit(seen, i))
			missed++;
	EXPECT_EQ(0, missed);
	ASSERT_EQ(0, vnl_mig_set_state(&self->dev, S_STOP, NULL));
	EXPECT_EQ(0, vnl_dma_log_stop(&self->dev));
	self->logging = false;
	free(stream);
}

/*
 * Tracking ends with VFIO_DEVICE_RESET and with close: the device's
 * tracking is stopped too (a new start would otherwise be refused: the PF
 * tracks a controller once).
 */
TEST_F(dirty, reset_and_close_end_tracking)
{
	struct vnl_range r = { IOVA_A, ARENA_SIZE };
	uint64_t map[MAX_BITS / 64], ps = VNL_PAGE;

	ASSERT_EQ(0, vnl_dma_log_start(&self->dev, &ps, &r, 1));
	self->logging = true;
	ASSERT_EQ(0, vnl_dev_reset(&self->dev));
	/* the post-reset work is done once the state can be read */
	EXPECT_EQ(S_RUNNING, vnl_mig_get_state(&self->dev));
	EXPECT_EQ(0, vnl_debugfs_stat(self->rig.bdf[0], "dirty_stop_pending"));
	EXPECT_EQ(-EINVAL, report_arena(&self->dev, ps, map));
	ASSERT_EQ(0, vnl_dma_log_start(&self->dev, &ps, &r, 1)) TH_LOG("start after reset");

	vnl_dev_close(&self->dev);
	self->logging = false;
	ASSERT_EQ(0, vnl_dev_open(&self->dev, self->rig.bdf[0], VNL_IOMMUFD,
				  IOVA_A, ARENA_SIZE)) TH_LOG("%s", vnl_err);
	EXPECT_EQ(0, vnl_dma_log_start(&self->dev, &ps, &r, 1)) TH_LOG("start after close");
	self->logging = true;
}

/*
 * A PF controller reset while tracking (it stops the MMC's tracking):
 * reports fail with -EIO until logging is stopped; afterwards, with the
 * VFs online again, logging starts again.
 */
TEST_F(dirty, pf_reset_while_tracking)
{
	struct vnl_range r = { IOVA_A, ARENA_SIZE };
	uint64_t map[MAX_BITS / 64], ps = VNL_PAGE;
	int i, tries, ret = 0;

	ASSERT_EQ(0, vnl_dma_log_start(&self->dev, &ps, &r, 1));
	self->logging = true;
	ASSERT_EQ(0, vnl_pf_reset(self->rig.pf)) TH_LOG("%s", vnl_err);
	for (tries = 0; tries < 50; tries++) {
		ret = report_arena(&self->dev, ps, map);
		if (ret)
			break;
		usleep(100000);
	}
	EXPECT_EQ(-EIO, ret);
	EXPECT_EQ(0, vnl_dma_log_stop(&self->dev));
	self->logging = false;
	for (i = 0; i < 2; i++) {
		ASSERT_EQ(0, vnl_pf_vf_online(self->rig.pffd, self->rig.pf, i, 4, 2,
					      NULL)) TH_LOG("%s", vnl_err);
	}
	ASSERT_EQ(0, vnl_dev_reset(&self->dev));
	EXPECT_EQ(0, vnl_dma_log_start(&self->dev, &ps, &r, 1));
	self->logging = true;
}

/*
 * More than the PF can track at the page size asked for (2 TiB at 4 KiB is
 * above the model's 2^28 granules): Not Enough Resources names a coarser
 * granularity, the driver retries with it and reports the page size used.
 */
TEST_F(dirty, not_enough_resources_goes_coarser)
{
	struct vnl_range r = { 0, 2048 * SZ_1G };
	uint64_t map[MAX_BITS / 64], ps = VNL_PAGE;

	ASSERT_EQ(0, vnl_dma_log_start(&self->dev, &ps, &r, 1));
	self->logging = true;
	EXPECT_GT(ps, VNL_PAGE);
	EXPECT_EQ(0, ps & (ps - 1));
	ASSERT_EQ(0, dev_read(&self->ctrl, self->iova[0], 90));
	ASSERT_EQ(0, vnl_dma_log_report(&self->dev, IOVA_A, ARENA_SIZE, ps, map));
	EXPECT_TRUE(bit(map, (self->iova[0] - IOVA_A) / ps));
}

/*
 * Report windows smaller than the tracking granule (64 KiB granules,
 * reports of 32 KiB at 4 KiB pages): a granule that straddles two windows
 * is reported in both, clipped to each.
 */
TEST_F(dirty, windows_smaller_than_granule)
{
	struct vnl_range r = { IOVA_A, ARENA_SIZE };
	uint64_t map[MAX_BITS / 64], ps = SZ_64K;
	uint64_t g = self->iova[0] & ~(SZ_64K - 1);

	ASSERT_EQ(0, vnl_dma_log_start(&self->dev, &ps, &r, 1));
	self->logging = true;
	ASSERT_EQ(SZ_64K, ps);
	ASSERT_EQ(0, report_arena(&self->dev, ps, map));
	ASSERT_EQ(0, dev_read(&self->ctrl, self->iova[0], 95));
	/* the second half of the granule first, then the first half */
	ASSERT_EQ(0, vnl_dma_log_report(&self->dev, g + SZ_64K / 2, SZ_64K / 2,
					VNL_PAGE, map));
	EXPECT_EQ(8, count_bits(map, 8));
	ASSERT_EQ(0, vnl_dma_log_report(&self->dev, g, SZ_64K / 2, VNL_PAGE, map));
	EXPECT_EQ(8, count_bits(map, 8));
}

VNL_HARNESS_MAIN
