// SPDX-License-Identifier: GPL-2.0-only
/*
 * vfio-nvme fault matrix: every PF command of every migration arc and of
 * every DMA logging operation fails once, at each of its steps, through the
 * device model's fault injection (lm-fault-cmd, lm-fault-skip).  Each case
 * must end as Documentation/migration.rst says: the arc's errno, the device
 * in the state the arc started from, or ERROR where the controller's state
 * is unknown; VFIO_DEVICE_RESET recovers it, no file descriptor is left
 * blocking, and the VF then does Identify and a Read of data written before
 * the matrix started.  kmemleak (make check-debug) proves nothing leaked.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <linux/vfio.h>

#include "kselftest_harness.h"
#include "lib/vnl.h"

#define DRIVER		"nvme_vfio_pci"
#define ARENA_SIZE	0x100000
#define DATA_LBA	500
#define PATTERN		0xfa017u
#define ST_INTERNAL	0x6		/* Internal Error: -EIO */
#define NVME_PARAMS	"/sys/module/nvme/parameters/"

/* the model's fault kinds (qemu/hw/nvme/lm.c), corrupt-state aside */
static const char *const kinds[] = {
	"suspend", "resume", "get-state", "set-state", "track-send",
	"track-recv", "identify", "identify-csf",
};

#define NKINDS	ARRAY_SIZE(kinds)

FIXTURE(fault) {
	struct vnl_rig rig;
	struct vnl_dev dev[2];
	struct vnl_ctrl ctrl[2];
	size_t arena_used[2];
	uint8_t *good;		/* a stream of VF1, loaded into VF2 */
	size_t good_len;
	int fd;			/* the data fd of the case */
	bool logging;
};

/* the source and destination VFs as the matrix leaves them between cases */
static int bring_up(struct vnl_dev *d, struct vnl_ctrl *c, size_t arena_used,
		    bool ioq)
{
	int ret;

	/* the controller was reset: its old queues are free memory */
	d->dma_used = arena_used;
	ret = vnl_ctrl_enable(c, d, 16);
	if (!ret && ioq)
		ret = vnl_create_ioq(c, 1, 16, false, 0);
	return ret;
}

FIXTURE_SETUP(fault)
{
	uint8_t *buf;
	uint64_t iova;
	int i, fd;

	self->fd = -1;
	for (i = 0; i < 2; i++)
		self->dev[i].device_fd = -1;
	ASSERT_EQ(0, vnl_rig_open(&self->rig, DRIVER)) TH_LOG("%s", vnl_err);
	ASSERT_EQ(0, vnl_rig_open_vfs(&self->rig, self->dev, 2, ARENA_SIZE))
		TH_LOG("%s", vnl_err);
	for (i = 0; i < 2; i++)
		self->arena_used[i] = self->dev[i].dma_used;
	/* VF1 wrote a block before the matrix: every recovery reads it back */
	ASSERT_EQ(0, bring_up(&self->dev[0], &self->ctrl[0],
			      self->arena_used[0], true))
		TH_LOG("%s", vnl_err);
	buf = vnl_dma_alloc(&self->dev[0], VNL_PAGE, &iova);
	ASSERT_NE(NULL, buf);
	vnl_fill_pattern(buf, VNL_PAGE, PATTERN);
	ASSERT_EQ(0, vnl_rw(&self->ctrl[0], NVME_CMD_WRITE, 1, DATA_LBA,
			    VNL_PAGE / self->ctrl[0].lba_size, iova));
	self->arena_used[0] = self->dev[0].dma_used;
	ASSERT_EQ(0, vnl_dev_reset(&self->dev[0])) TH_LOG("%s", vnl_err);

	/* VF1's stream (controller disabled: loads into any VF) */
	ASSERT_EQ(0, vnl_mig_set_state(&self->dev[0], S_STOP, NULL));
	ASSERT_EQ(0, vnl_mig_set_state(&self->dev[0], S_STOP_COPY, &fd));
	ASSERT_EQ(0, vnl_mig_read(fd, &self->good, &self->good_len, 4096));
	close(fd);
	ASSERT_EQ(0, vnl_mig_set_state(&self->dev[0], S_RUNNING, NULL));
	/* VF1 with an I/O queue, VF2 with its admin queue */
	for (i = 0; i < 2; i++)
		ASSERT_EQ(0, bring_up(&self->dev[i], &self->ctrl[i],
				      self->arena_used[i], !i))
			TH_LOG("%s", vnl_err);
}

FIXTURE_TEARDOWN(fault)
{
	int i;

	vnl_lm_fault("nvme0", "none", 0, ST_INTERNAL);
	vnl_qom_set("nvme0", "lm-suspend-delay", "0");
	vnl_write_file(NVME_PARAMS "lm_suspend_timeout_ms", "5000");
	if (self->fd >= 0)
		close(self->fd);
	if (self->logging)
		vnl_dma_log_stop(&self->dev[0]);
	for (i = 0; i < 2; i++)
		if (self->dev[i].device_fd >= 0)
			vnl_dev_close(&self->dev[i]);
	free(self->good);
	vnl_rig_close(&self->rig);
}

struct fault_ctx {
	struct _test_data_fault *self;
	struct vnl_dev *d;		/* the device of the case */
};

struct scen {
	const char *name;
	int dev;			/* 0: VF1 (source), 1: VF2 */
	/* brings the device to the case's start, no fault armed */
	int (*setup)(struct fault_ctx *f);
	/* what the case does; returns 0 or the first negative errno */
	int (*action)(struct fault_ctx *f);
	/* the state a failed action leaves when the controller is known */
	uint32_t stays;
	/*
	 * Track Send from this one on (1-based) ends tracking best effort: a
	 * fault there does not fail the action, the stop is sent again later
	 * (0: none does)
	 */
	unsigned int best_effort_from;
	/* a reset: whatever fails in it, it succeeds and the VF runs */
	bool reset;
};

static struct vnl_range arena_range(struct vnl_dev *d)
{
	return (struct vnl_range){ d->dma_iova, ARENA_SIZE };
}

static int go(struct fault_ctx *f, uint32_t state)
{
	int fd = -1, ret;

	ret = vnl_mig_set_state(f->d, state, &fd);
	if (!ret && fd >= 0) {
		if (f->self->fd >= 0)
			close(f->self->fd);
		f->self->fd = fd;
	}
	return ret;
}

/* read the data fd to its end (-ENOMSG ends precopy data) */
static int drain(struct fault_ctx *f, bool precopy)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int ret;

	ret = vnl_mig_read(f->self->fd, &buf, &len, 4096);
	free(buf);
	if (precopy && ret == -ENOMSG)
		return 0;
	return ret;
}

static int su_running(struct fault_ctx *f) { return 0; }
static int su_p2p(struct fault_ctx *f) { return go(f, S_RUNNING_P2P); }
static int su_stop(struct fault_ctx *f) { return go(f, S_STOP); }
static int su_pre_copy(struct fault_ctx *f) { return go(f, S_PRE_COPY); }

static int su_pre_copy_p2p(struct fault_ctx *f)
{
	return go(f, S_PRE_COPY) ?: go(f, S_PRE_COPY_P2P);
}

static int su_resuming(struct fault_ctx *f)
{
	return go(f, S_STOP) ?: go(f, S_RESUMING);
}

static int su_logging(struct fault_ctx *f)
{
	struct vnl_range r = arena_range(f->d);
	uint64_t ps = VNL_PAGE;
	int ret;

	ret = vnl_dma_log_start(f->d, &ps, &r, 1);
	if (!ret)
		f->self->logging = true;
	return ret;
}

static int su_logging_stopped(struct fault_ctx *f)
{
	return su_logging(f) ?: go(f, S_STOP);
}

static int ac_p2p(struct fault_ctx *f) { return go(f, S_RUNNING_P2P); }
static int ac_running(struct fault_ctx *f) { return go(f, S_RUNNING); }
static int ac_resuming(struct fault_ctx *f) { return go(f, S_RESUMING); }

static int ac_pre_copy(struct fault_ctx *f)
{
	uint64_t initial, dirty;
	uint32_t flags;

	return go(f, S_PRE_COPY) ?:
	       vnl_mig_precopy_info(f->self->fd, &initial, &dirty, &flags) ?:
	       drain(f, true);
}

static int ac_pre_copy_p2p(struct fault_ctx *f)
{
	return go(f, S_PRE_COPY_P2P);
}

static int ac_stop_copy(struct fault_ctx *f)
{
	return go(f, S_STOP_COPY) ?: drain(f, false);
}

static int ac_data_size(struct fault_ctx *f)
{
	uint64_t size;

	return vnl_mig_data_size(f->d, &size);
}

static int ac_load(struct fault_ctx *f)
{
	int ret;

	ret = vnl_mig_write(f->self->fd, f->self->good, f->self->good_len,
			    4096);
	return go(f, S_STOP) ?: ret;
}

static int ac_log_start(struct fault_ctx *f) { return su_logging(f); }

static int ac_log_report(struct fault_ctx *f)
{
	static uint64_t map[ARENA_SIZE / VNL_PAGE / 64];

	return vnl_dma_log_report(f->d, f->d->dma_iova, ARENA_SIZE, VNL_PAGE,
				  map);
}

static int ac_log_stop(struct fault_ctx *f)
{
	int ret = vnl_dma_log_stop(f->d);

	f->self->logging = false;
	return ret;
}

/* stopped while suspended: the stop is sent by the Resume */
static int ac_log_stop_resume(struct fault_ctx *f)
{
	return ac_log_stop(f) ?: go(f, S_RUNNING_P2P) ?: go(f, S_RUNNING);
}

static int ac_reset(struct fault_ctx *f)
{
	int ret = vnl_dev_reset(f->d);

	f->self->logging = false;
	return ret;
}

#define SCEN(n, i, su, ac, st, ...) \
	{ .name = n, .dev = i, .setup = su, .action = ac, .stays = st, \
	  __VA_ARGS__ }

static const struct scen scens[] = {
	SCEN("RUNNING->RUNNING_P2P", 0, su_running, ac_p2p, S_RUNNING),
	SCEN("RUNNING_P2P->RUNNING", 0, su_p2p, ac_running, S_RUNNING_P2P),
	SCEN("RUNNING->PRE_COPY+read", 0, su_running, ac_pre_copy, S_RUNNING),
	SCEN("PRE_COPY->PRE_COPY_P2P", 0, su_pre_copy, ac_pre_copy_p2p,
	     S_PRE_COPY),
	SCEN("PRE_COPY_P2P->STOP_COPY+read", 0, su_pre_copy_p2p, ac_stop_copy,
	     S_PRE_COPY_P2P),
	SCEN("STOP->STOP_COPY+read", 0, su_stop, ac_stop_copy, S_STOP),
	SCEN("MIG_DATA_SIZE in RUNNING", 0, su_running, ac_data_size,
	     S_RUNNING),
	SCEN("MIG_DATA_SIZE in STOP", 0, su_stop, ac_data_size, S_STOP),
	SCEN("STOP->RESUMING", 1, su_stop, ac_resuming, S_STOP),
	SCEN("RESUMING write+->STOP", 1, su_resuming, ac_load, S_RESUMING),
	SCEN("DMA_LOGGING_START", 0, su_running, ac_log_start, S_RUNNING),
	SCEN("DMA_LOGGING_REPORT", 0, su_logging, ac_log_report, S_RUNNING),
	SCEN("DMA_LOGGING_REPORT in STOP", 0, su_logging_stopped,
	     ac_log_report, S_STOP),
	SCEN("DMA_LOGGING_STOP", 0, su_logging, ac_log_stop, S_RUNNING),
	/* the stop refused while suspended (39h), sent again by the Resume */
	SCEN("DMA_LOGGING_STOP in STOP, then Resume", 0, su_logging_stopped,
	     ac_log_stop_resume, S_STOP, .best_effort_from = 2),
	/*
	 * the stop is sent by the reset's work, as is the Resume that makes
	 * sure the VF runs after it (both best effort: the FLR itself cleared
	 * the suspended state, the stop is sent again later)
	 */
	SCEN("VFIO_DEVICE_RESET while logging", 0, su_logging, ac_reset,
	     S_RUNNING, .reset = true),
};

/*
 * The state a failed case must leave (Documentation/migration.rst, error
 * policy): a Suspend or Resume that reached the controller and failed, and
 * a Set Controller State failing after its first piece was taken, leave
 * ERROR; every other failure leaves the state the arc started from.
 */
static uint32_t expected_state(const struct scen *s, const char *kind,
			       unsigned int skip)
{
	if (!strcmp(kind, "suspend") || !strcmp(kind, "resume"))
		return S_ERROR;
	if (!strcmp(kind, "set-state") && skip)
		return S_ERROR;
	return s->stays;
}

/* the data fd of a case, after the device reset: an error, never a wait */
static int fd_not_stuck(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN | POLLOUT };
	uint8_t byte = 0;
	int flags;

	if (poll(&pfd, 1, 0) < 0)
		return -errno;
	flags = fcntl(fd, F_GETFL);
	if ((flags & O_ACCMODE) == O_RDONLY)
		return read(fd, &byte, 1) > 0 ? -EPROTO : 0;
	return write(fd, &byte, 1) >= 0 ? -EPROTO : 0;
}

/* VFIO_DEVICE_RESET, then Identify and the block written at setup */
static int recover(struct __test_metadata *_metadata,
		   struct _test_data_fault *self, int i)
{
	struct vnl_dev *d = &self->dev[i];
	struct vnl_ctrl *c = &self->ctrl[i];
	uint8_t *buf, *expect;
	uint64_t iova;
	int ret;

	if (self->fd >= 0) {
		ret = vnl_dev_reset(d);
		if (!ret)
			ret = fd_not_stuck(self->fd);
		close(self->fd);
		self->fd = -1;
		if (ret) {
			TH_LOG("the data fd after the reset: %s", strerror(-ret));
			return ret;
		}
	}
	if (self->logging) {
		vnl_dma_log_stop(d);
		self->logging = false;
	}
	ret = vnl_dev_reset(d);
	if (ret) {
		TH_LOG("VFIO_DEVICE_RESET: %s", vnl_err);
		return ret;
	}
	if (vnl_mig_get_state(d) != S_RUNNING) {
		TH_LOG("state %d after the reset", vnl_mig_get_state(d));
		return -EPROTO;
	}
	ret = bring_up(d, c, self->arena_used[i], !i);
	if (ret) {
		TH_LOG("the VF after the reset: %s", vnl_err);
		return ret;
	}
	if (i)
		return 0;
	buf = vnl_dma_alloc(d, VNL_PAGE, &iova);
	expect = malloc(VNL_PAGE);
	if (!buf || !expect) {
		free(expect);
		return -ENOMEM;
	}
	vnl_fill_pattern(expect, VNL_PAGE, PATTERN);
	ret = vnl_rw(c, NVME_CMD_READ, 1, DATA_LBA, VNL_PAGE / c->lba_size,
		     iova);
	if (!ret && memcmp(buf, expect, VNL_PAGE))
		ret = -EILSEQ;
	free(expect);
	if (ret)
		TH_LOG("reading back the block written at setup: %s",
		       strerror(-ret));
	return ret;
}

static int seen_all(unsigned long seen[NKINDS])
{
	unsigned int k;
	int ret;

	for (k = 0; k < NKINDS; k++) {
		ret = vnl_lm_cmds_seen("nvme0", kinds[k], &seen[k]);
		if (ret)
			return ret;
	}
	return 0;
}

/*
 * Which of @n commands of a kind fail: all of them with FAULT_MATRIX_FULL=1
 * (make fuzz), else all of a short sequence, and of a long one (the
 * Identify commands of the namespace scan: one per NSID not attached to the
 * VF, three per attached one) the first HEAD and the last TAIL.  In the
 * rig's layout (namespace 1 attached, 2..66 detached) the first eight are
 * the VF's own Identify commands, the NSID list and namespace 1's three:
 * every kind of Identify the driver sends is among them.
 */
#define HEAD	8
#define TAIL	4

static unsigned int next_step(unsigned int skip, unsigned long n)
{
	static int full = -1;

	if (full < 0)
		full = getenv("FAULT_MATRIX_FULL") &&
		       !strcmp(getenv("FAULT_MATRIX_FULL"), "1");
	skip++;
	if (!full && n > HEAD + TAIL && skip == HEAD)
		skip = n - TAIL;
	return skip;
}

/*
 * For each scenario: a run without faults counts the commands of each kind
 * it sends (lm-cmds-seen); then each of those commands fails once, the
 * first, the second, ... (lm-fault-skip).
 */
TEST_F_TIMEOUT(fault, matrix, 3600)
{
	unsigned long before[NKINDS], after[NKINDS], left, hits[NKINDS] = {};
	struct fault_ctx f = { .self = self };
	unsigned int si, k, skip, cases = 0, clean = 0;
	struct timespec t0, t1;
	int ret;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (si = 0; si < ARRAY_SIZE(scens); si++) {
		const struct scen *s = &scens[si];

		f.d = &self->dev[s->dev];
		ASSERT_EQ(0, s->setup(&f)) TH_LOG("%s: setup", s->name);
		ASSERT_EQ(0, seen_all(before)) TH_LOG("%s", vnl_err);
		ASSERT_EQ(0, s->action(&f)) TH_LOG("%s: without a fault", s->name);
		ASSERT_EQ(0, seen_all(after)) TH_LOG("%s", vnl_err);
		ASSERT_EQ(0, recover(_metadata, self, s->dev)) TH_LOG("%s", s->name);
		clean++;

		for (k = 0; k < NKINDS; k++) {
			unsigned long n = after[k] - before[k];

			for (skip = 0; skip < n; skip = next_step(skip, n)) {
				const char *kind = kinds[k];
				uint32_t want = expected_state(s, kind, skip);
				bool best_effort = s->reset ||
						   (s->best_effort_from &&
						    skip + 1 >= s->best_effort_from &&
						    !strcmp(kind, "track-send"));
				int state;

				ASSERT_EQ(0, s->setup(&f))
					TH_LOG("%s: setup", s->name);
				ASSERT_EQ(0, vnl_lm_fault_at("nvme0", kind, skip, 1,
							     ST_INTERNAL))
					TH_LOG("%s", vnl_err);
				ret = s->action(&f);
				ASSERT_EQ(0, vnl_qom_get_uint("nvme0", "lm-fault-count",
							      &left));
				vnl_lm_fault("nvme0", "none", 0, ST_INTERNAL);
				state = vnl_mig_get_state(f.d);
				cases++;
				hits[k] += !left;
				TH_LOG("%s, %s #%u: %s, state %d", s->name, kind,
				       skip + 1, ret ? strerror(-ret) : "ok", state);
				/* the same command sequence as the clean run */
				EXPECT_EQ(0, left)
					TH_LOG("%s: %s #%u not sent", s->name, kind,
					       skip + 1);
				if (best_effort) {
					EXPECT_EQ(0, ret);
					EXPECT_EQ(S_RUNNING, state);
				} else {
					EXPECT_EQ(-EIO, ret);
					EXPECT_EQ((int)want, state);
				}
				ASSERT_EQ(0, recover(_metadata, self, s->dev))
					TH_LOG("%s, %s #%u", s->name, kind, skip + 1);
				/* tracking starts again: no budget leaked */
				if (s->dev == 0 && !strncmp(kind, "track", 5)) {
					ASSERT_EQ(0, su_logging(&f))
						TH_LOG("%s, %s #%u: logging again",
						       s->name, kind, skip + 1);
					ASSERT_EQ(0, ac_log_stop(&f));
				}
			}
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	TH_LOG("fault matrix: %zu scenarios, %u clean runs, %u faulted cases in %ld s",
	       ARRAY_SIZE(scens), clean, cases,
	       (long)(t1.tv_sec - t0.tv_sec));
	for (k = 0; k < NKINDS; k++)
		TH_LOG("  %-12s %lu faults injected", kinds[k], hits[k]);
	EXPECT_GT(cases, 20);
}

/*
 * The timeout path: a Suspend the device holds past lm_suspend_timeout_ms
 * fails with -ETIMEDOUT and ERROR; VFIO_DEVICE_RESET recovers the VF.
 */
TEST_F(fault, suspend_timeout_recovers)
{
	struct fault_ctx f = { .self = self, .d = &self->dev[0] };

	ASSERT_EQ(0, vnl_write_file(NVME_PARAMS "lm_suspend_timeout_ms", "1000"));
	/* held far longer than the timeout and the Abort that ends it */
	ASSERT_EQ(0, vnl_qom_set("nvme0", "lm-suspend-delay", "20000"))
		TH_LOG("%s", vnl_err);
	EXPECT_EQ(-ETIMEDOUT, ac_p2p(&f));
	EXPECT_EQ(S_ERROR, vnl_mig_get_state(f.d));
	ASSERT_EQ(0, vnl_qom_set("nvme0", "lm-suspend-delay", "0"));
	ASSERT_EQ(0, vnl_write_file(NVME_PARAMS "lm_suspend_timeout_ms", "5000"));
	ASSERT_EQ(0, recover(_metadata, self, 0));
	/* and a whole save works */
	ASSERT_EQ(0, su_stop(&f));
	ASSERT_EQ(0, ac_stop_copy(&f));
	ASSERT_EQ(0, recover(_metadata, self, 0));
}

VNL_HARNESS_MAIN
