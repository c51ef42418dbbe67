// SPDX-License-Identifier: GPL-2.0-only
/*
 * vfio-nvme migration tests: the VFIO migration uAPI v2 of nvme-vfio-pci,
 * driven on the rig's two VFs like a VMM would (QEMU's sequence of states),
 * with the guest's queues and buffers in userspace DMA memory.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdarg.h>
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
#define IOVA_B		0x20000000ull
#define ARENA_SIZE	0x100000
#define VF_NVQ		4
#define VF_NVI		2

/* stream layout (Documentation/stream.rst) */
#define HDR_LEN		16
#define REC_LEN		16
#define COMPAT_NVQ	8
#define COMPAT_NS	32
#define NS_NSZE		8
#define NS_NGUID	16
#define NS_UUID		40

static uint16_t le16(const uint8_t *p)
{
	return p[0] | p[1] << 8;
}

static void put_le32(uint8_t *p, uint32_t v)
{
	p[0] = v;
	p[1] = v >> 8;
	p[2] = v >> 16;
	p[3] = v >> 24;
}

static void put_le64(uint8_t *p, uint64_t v)
{
	put_le32(p, (uint32_t)v);
	put_le32(p + 4, (uint32_t)(v >> 32));
}

#define PARAM_DIR	"/sys/module/nvme_vfio_pci/parameters/"

static int write_param(const char *name, const char *val)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), PARAM_DIR "%s", name);
	return vnl_write_file(path, val);
}

FIXTURE(mig) {
	struct vnl_rig rig;
	struct vnl_dev dev[2];
	struct vnl_ctrl ctrl[2];
	int fd[2];
};

FIXTURE_SETUP(mig)
{
	int i;

	for (i = 0; i < 2; i++) {
		self->dev[i].device_fd = -1;
		self->fd[i] = -1;
	}
	ASSERT_EQ(0, vnl_rig_open(&self->rig, DRIVER)) TH_LOG("%s", vnl_err);
	ASSERT_EQ(0, vnl_rig_open_vfs(&self->rig, self->dev, 2, ARENA_SIZE))
		TH_LOG("%s", vnl_err);
}

FIXTURE_TEARDOWN(mig)
{
	int i;

	vnl_lm_fault("nvme0", "none", 0, 6);
	vnl_qom_set("nvme0", "lm-suspend-delay", "0");
	vnl_qom_set("nvme0", "lm-abort-suspend", "1");
	vnl_write_file("/sys/module/nvme/parameters/lm_suspend_timeout_ms", "5000");
	vnl_write_file("/sys/module/nvme/parameters/lm_cmd_timeout_ms", "10000");
	write_param("ns_identity", "Y");
	for (i = 0; i < 2; i++) {
		if (self->fd[i] >= 0)
			close(self->fd[i]);
		if (self->dev[i].device_fd >= 0)
			vnl_dev_close(&self->dev[i]);
	}
	vnl_rig_close(&self->rig);
}

#define SET(i, state) vnl_mig_set_state(&self->dev[i], state, NULL)

/* go to @state and check the device reports it */
static int set_state(struct __test_metadata *_metadata, struct vnl_dev *d,
		     uint32_t state, int *fd)
{
	int ret = vnl_mig_set_state(d, state, fd);

	if (ret) {
		TH_LOG("%s: -> state %u: %s", d->bdf, state, strerror(-ret));
		return ret;
	}
	if (vnl_mig_get_state(d) != (int)state) {
		TH_LOG("%s: state %d after setting %u", d->bdf,
		       vnl_mig_get_state(d), state);
		return -EPROTO;
	}
	return 0;
}

/* STOP -> STOP_COPY -> read to EOF -> STOP: the whole stream of a VF */
static int save(struct __test_metadata *_metadata, struct vnl_dev *d,
		uint8_t **buf, size_t *len)
{
	int fd, ret;

	*buf = NULL;
	*len = 0;
	ret = set_state(_metadata, d, S_STOP_COPY, &fd);
	if (ret)
		return ret;
	ret = vnl_mig_read(fd, buf, len, 4096);
	close(fd);
	if (ret) {
		TH_LOG("%s: reading the data fd: %s", d->bdf, strerror(-ret));
		return ret;
	}
	return set_state(_metadata, d, S_STOP, NULL);
}

/*
 * STOP -> RESUMING -> write in @piece bytes -> STOP, the arc tried even
 * after a refused write: the negative errno of the first failing write, or
 * of the RESUMING -> STOP arc, else 0.
 */
static int load(struct vnl_dev *d, const uint8_t *buf, size_t len, size_t piece)
{
	int fd, ret, arc;

	ret = vnl_mig_set_state(d, S_RESUMING, &fd);
	if (ret)
		return ret;
	ret = vnl_mig_write(fd, buf, len, piece);
	close(fd);
	arc = vnl_mig_set_state(d, S_STOP, NULL);
	return ret ? ret : arc;
}

/* a failed arc left ERROR; VFIO_DEVICE_RESET brings RUNNING back */
static void expect_error_then_reset(struct __test_metadata *_metadata,
				    struct vnl_dev *d)
{
	EXPECT_EQ(S_ERROR, vnl_mig_get_state(d));
	ASSERT_EQ(0, vnl_dev_reset(d)) TH_LOG("%s", vnl_err);
	EXPECT_EQ(S_RUNNING, vnl_mig_get_state(d));
}

TEST_F(mig, capabilities)
{
	uint64_t flags, size;
	int i;

	for (i = 0; i < 2; i++) {
		ASSERT_EQ(0, vnl_mig_flags(&self->dev[i], &flags));
		EXPECT_EQ(VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P |
			  VFIO_MIGRATION_PRE_COPY, flags);
		EXPECT_EQ(S_RUNNING, vnl_mig_get_state(&self->dev[i]));
		ASSERT_EQ(0, vnl_mig_data_size(&self->dev[i], &size));
		EXPECT_GT(size, HDR_LEN + 3 * REC_LEN + 48);
	}
}

/* Every arc the driver implements, both P2P states, and precopy abort. */
TEST_F(mig, legal_arcs)
{
	struct vnl_dev *d = &self->dev[0];
	int fd = -1;

	ASSERT_EQ(0, vnl_ctrl_enable(&self->ctrl[0], d, 16)) TH_LOG("%s", vnl_err);
	ASSERT_EQ(0, set_state(_metadata, d, S_RUNNING_P2P, NULL));
	ASSERT_EQ(0, set_state(_metadata, d, S_STOP, NULL));
	ASSERT_EQ(0, set_state(_metadata, d, S_RUNNING_P2P, NULL));
	ASSERT_EQ(0, set_state(_metadata, d, S_RUNNING, NULL));
	/* the controller runs again */
	ASSERT_EQ(0, vnl_identify(&self->ctrl[0], 0x01, 0, 0, NULL));

	/* precopy, both P2P variants, abort back to RUNNING */
	ASSERT_EQ(0, set_state(_metadata, d, S_PRE_COPY, &fd));
	EXPECT_LE(0, fd);
	close(fd);
	ASSERT_EQ(0, set_state(_metadata, d, S_PRE_COPY_P2P, NULL));
	ASSERT_EQ(0, set_state(_metadata, d, S_PRE_COPY, NULL));
	ASSERT_EQ(0, set_state(_metadata, d, S_RUNNING, NULL));
	ASSERT_EQ(0, vnl_identify(&self->ctrl[0], 0x01, 0, 0, NULL));
	ASSERT_EQ(0, set_state(_metadata, d, S_PRE_COPY, &fd));
	close(fd);
	ASSERT_EQ(0, set_state(_metadata, d, S_PRE_COPY_P2P, NULL));
	ASSERT_EQ(0, set_state(_metadata, d, S_RUNNING_P2P, NULL));
	ASSERT_EQ(0, set_state(_metadata, d, S_RUNNING, NULL));

	/* precopy to stop-copy, then STOP and back */
	ASSERT_EQ(0, set_state(_metadata, d, S_PRE_COPY, &fd));
	close(fd);
	ASSERT_EQ(0, set_state(_metadata, d, S_PRE_COPY_P2P, NULL));
	ASSERT_EQ(0, set_state(_metadata, d, S_STOP_COPY, NULL));
	ASSERT_EQ(0, set_state(_metadata, d, S_STOP, NULL));
	/* STOP -> STOP_COPY -> STOP, STOP -> RESUMING is covered below */
	ASSERT_EQ(0, set_state(_metadata, d, S_STOP_COPY, &fd));
	close(fd);
	ASSERT_EQ(0, set_state(_metadata, d, S_STOP, NULL));
	/* multi-arc requests: the core walks them one arc at a time */
	ASSERT_EQ(0, set_state(_metadata, d, S_RUNNING, NULL));
	ASSERT_EQ(0, set_state(_metadata, d, S_STOP, NULL));
	ASSERT_EQ(0, set_state(_metadata, d, S_RUNNING, NULL));
	ASSERT_EQ(0, vnl_identify(&self->ctrl[0], 0x01, 0, 0, NULL));
}

/* Arcs the uAPI forbids are refused; ERROR is left by VFIO_DEVICE_RESET. */
TEST_F(mig, illegal_arcs_and_error_recovery)
{
	struct vnl_dev *d = &self->dev[1];
	uint8_t junk[64];
	int fd;

	EXPECT_EQ(-EINVAL, SET(1, S_ERROR));
	EXPECT_EQ(-EINVAL, SET(1, 8));
	EXPECT_EQ(S_RUNNING, vnl_mig_get_state(d));
	ASSERT_EQ(0, set_state(_metadata, d, S_STOP_COPY, &fd));
	close(fd);
	EXPECT_EQ(-EINVAL, SET(1, S_PRE_COPY));
	EXPECT_EQ(-EINVAL, SET(1, S_PRE_COPY_P2P));
	EXPECT_EQ(S_STOP_COPY, vnl_mig_get_state(d));
	ASSERT_EQ(0, set_state(_metadata, d, S_STOP, NULL));

	/*
	 * A garbage stream: RESUMING -> STOP fails, the device (untouched)
	 * stays in RESUMING; a reset brings RUNNING back.
	 */
	memset(junk, 0xa5, sizeof(junk));
	EXPECT_EQ(-EINVAL, load(d, junk, sizeof(junk), 64));
	EXPECT_EQ(S_RESUMING, vnl_mig_get_state(d));
	EXPECT_NE(0, SET(1, S_RUNNING));
	ASSERT_EQ(0, vnl_dev_reset(d)) TH_LOG("%s", vnl_err);
	EXPECT_EQ(S_RUNNING, vnl_mig_get_state(d));

	/* ERROR: a Suspend that reached the device and failed */
	ASSERT_EQ(0, vnl_lm_fault("nvme0", "suspend", 1, 0x6)) TH_LOG("%s", vnl_err);
	EXPECT_EQ(-EIO, SET(1, S_RUNNING_P2P));
	EXPECT_EQ(S_ERROR, vnl_mig_get_state(d));
	EXPECT_EQ(-EINVAL, SET(1, S_RUNNING));
	ASSERT_EQ(0, vnl_dev_reset(d)) TH_LOG("%s", vnl_err);
	EXPECT_EQ(S_RUNNING, vnl_mig_get_state(d));
	ASSERT_EQ(0, vnl_ctrl_enable(&self->ctrl[1], d, 16)) TH_LOG("%s", vnl_err);
}

/*
 * Live migration VF1 -> VF2 with I/O in flight, as QEMU does it: precopy
 * (compat data), PRE_COPY_P2P (a Read submitted now must not run on VF1),
 * STOP_COPY, and on VF2 RESUMING -> STOP -> RUNNING_P2P -> RUNNING.  The
 * guest's queues and buffers stay in the same memory (VF2 maps VF1's arena
 * at the same IOVAs).  Pieces of 7 bytes mimic arbitrary split points.
 */
TEST_F(mig, live_migration_vf1_to_vf2)
{
	struct vnl_ctrl *c = &self->ctrl[0];
	uint8_t *data, *expect, *stream = NULL;
	uint64_t iova, initial, dirty, size;
	struct vnl_sqe rd, aer, sf;
	bool seen_aer = false;
	struct vnl_cqe cqe;
	size_t len = 0;
	uint32_t flags;
	uint16_t nlb;
	int fd, i;

	ASSERT_EQ(0, vnl_ctrl_enable(c, &self->dev[0], 16)) TH_LOG("%s", vnl_err);
	ASSERT_EQ(0, vnl_msix_enable(&self->dev[0], 1));
	ASSERT_EQ(0, vnl_create_ioq(c, 1, 16, true, 0)) TH_LOG("%s", vnl_err);
	nlb = VNL_PAGE / c->lba_size;
	data = vnl_dma_alloc(&self->dev[0], VNL_PAGE, &iova);
	expect = malloc(VNL_PAGE);
	ASSERT_NE(NULL, data);
	ASSERT_NE(NULL, expect);
	ASSERT_EQ(0, vnl_dev_map_arena_of(&self->dev[1], &self->dev[0]));
	ASSERT_EQ(0, vnl_msix_enable(&self->dev[1], 1));

	/* an AER outstanding across the migration */
	sf = (struct vnl_sqe){ .opc = NVME_ADM_SET_FEATURES, .cdw10 = 0x0b,
			       .cdw11 = 0xff };
	ASSERT_EQ(0, vnl_cmd(c, &c->aq, &sf, NULL));
	aer = (struct vnl_sqe){ .opc = 0x0c };
	vnl_submit(c, &c->aq, &aer);
	vnl_fill_pattern(expect, VNL_PAGE, 0xa11ce);
	memcpy(data, expect, VNL_PAGE);
	ASSERT_EQ(0, vnl_rw(c, NVME_CMD_WRITE, 1, 300, nlb, iova));

	/* destination waits in RESUMING, like QEMU's -incoming */
	ASSERT_EQ(0, set_state(_metadata, &self->dev[1], S_STOP, NULL));
	ASSERT_EQ(0, set_state(_metadata, &self->dev[1], S_RESUMING, &self->fd[1]));

	/* source precopy: the compat data, then -ENOMSG */
	ASSERT_EQ(0, vnl_mig_data_size(&self->dev[0], &size));
	ASSERT_EQ(0, set_state(_metadata, &self->dev[0], S_PRE_COPY, &fd));
	self->fd[0] = fd;
	ASSERT_EQ(0, vnl_mig_precopy_info(fd, &initial, &dirty, &flags));
	EXPECT_GT(initial, 0);
	EXPECT_EQ(-ENOMSG, vnl_mig_read(fd, &stream, &len, 7));
	EXPECT_EQ(initial, len);
	ASSERT_EQ(0, vnl_mig_write(self->fd[1], stream, len, 7))
		TH_LOG("the destination refused the compat data");

	/* source P2P: suspended; a Read submitted now stays in the SQ */
	ASSERT_EQ(0, set_state(_metadata, &self->dev[0], S_PRE_COPY_P2P, NULL));
	memset(data, 0, VNL_PAGE);
	rd = (struct vnl_sqe){ .opc = NVME_CMD_READ, .nsid = 1, .prp1 = iova,
			       .cdw10 = 300, .cdw12 = nlb - 1 };
	vnl_submit(c, &c->ioq, &rd);
	ASSERT_EQ(0, set_state(_metadata, &self->dev[0], S_STOP_COPY, NULL));
	EXPECT_EQ(0, vnl_mig_read(fd, &stream, &len, 7));
	EXPECT_LE(len, size + initial) TH_LOG("MIG_DATA_SIZE %llu, %zu bytes read",
					      (unsigned long long)size, len);
	ASSERT_EQ(0, set_state(_metadata, &self->dev[0], S_STOP, NULL));

	/* destination: the rest of the stream, then run */
	ASSERT_EQ(0, vnl_mig_write(self->fd[1], stream + initial, len - initial, 7));
	ASSERT_EQ(0, set_state(_metadata, &self->dev[1], S_STOP, NULL));
	close(self->fd[1]);
	self->fd[1] = -1;
	vnl_irq_count(&self->dev[1], 0, 0);
	ASSERT_EQ(0, set_state(_metadata, &self->dev[1], S_RUNNING_P2P, NULL));
	ASSERT_EQ(0, set_state(_metadata, &self->dev[1], S_RUNNING, NULL));

	/* the Read submitted on VF1 completes on VF2, with an interrupt */
	c->dev = &self->dev[1];
	ASSERT_EQ(0, vnl_wait(c, &c->ioq, &cqe)) TH_LOG("%s", vnl_err);
	EXPECT_EQ(rd.cid, cqe.cid);
	EXPECT_EQ(0, cqe.status >> 1);
	EXPECT_EQ(0, memcmp(data, expect, VNL_PAGE));
	EXPECT_GT(vnl_irq_count(&self->dev[1], 0, 10000), 0);

	/* I/O and admin go on */
	vnl_fill_pattern(expect, VNL_PAGE, 0xb0b);
	memcpy(data, expect, VNL_PAGE);
	ASSERT_EQ(0, vnl_rw(c, NVME_CMD_WRITE, 1, 400, nlb, iova));
	memset(data, 0, VNL_PAGE);
	ASSERT_EQ(0, vnl_rw(c, NVME_CMD_READ, 1, 400, nlb, iova));
	EXPECT_EQ(0, memcmp(data, expect, VNL_PAGE));
	ASSERT_EQ(0, vnl_identify(c, 0x01, 0, 0, NULL));
	EXPECT_EQ(self->rig.scid[1], le16((uint8_t *)c->buf + 78));

	/* the AER from VF1 completes on VF2 when an event is raised */
	sf = (struct vnl_sqe){ .opc = NVME_ADM_SET_FEATURES, .cdw10 = 0x04 };
	vnl_submit(c, &c->aq, &sf);
	for (i = 0; i < 2; i++) {
		ASSERT_EQ(0, vnl_wait(c, &c->aq, &cqe)) TH_LOG("%s", vnl_err);
		if (cqe.cid == aer.cid)
			seen_aer = true;
	}
	EXPECT_TRUE(seen_aer);
	free(stream);
	free(expect);
}

/* PRECOPY_INFO, -ENOMSG, EOF, -ENODEV; MIG_DATA_SIZE >= what is read. */
TEST_F(mig, data_fd_semantics)
{
	struct vnl_dev *d = &self->dev[0];
	uint64_t initial, dirty, initial2, size;
	uint8_t *buf = NULL, byte;
	size_t len = 0;
	uint32_t flags;
	struct pollfd pfd;
	int fd;

	ASSERT_EQ(0, vnl_ctrl_enable(&self->ctrl[0], d, 16));
	ASSERT_EQ(0, vnl_mig_data_size(d, &size));
	ASSERT_EQ(0, set_state(_metadata, d, S_PRE_COPY, &fd));
	self->fd[0] = fd;
	ASSERT_EQ(0, vnl_mig_precopy_info(fd, &initial, &dirty, &flags));
	EXPECT_GT(initial, HDR_LEN + REC_LEN);
	EXPECT_EQ(0, dirty);
	EXPECT_EQ(0, flags);
	/* a stream: no offsets */
	EXPECT_EQ(-1, pread(fd, &byte, 1, 0));
	EXPECT_EQ(ESPIPE, errno);
	/* initial_bytes shrinks as it is read */
	ASSERT_EQ(1, read(fd, &byte, 1));
	EXPECT_EQ('N', byte);
	ASSERT_EQ(0, vnl_mig_precopy_info(fd, &initial2, &dirty, &flags));
	EXPECT_EQ(initial - 1, initial2);
	len = 1;
	buf = malloc(1);
	buf[0] = byte;
	EXPECT_EQ(-ENOMSG, vnl_mig_read(fd, &buf, &len, 5));
	EXPECT_EQ(initial, len);
	ASSERT_EQ(0, vnl_mig_precopy_info(fd, &initial2, &dirty, &flags));
	EXPECT_EQ(0, initial2);
	/* poll: no event at the end of the precopy data */
	pfd = (struct pollfd){ .fd = fd, .events = POLLIN };
	EXPECT_EQ(0, poll(&pfd, 1, 200));
	/* non-blocking: nothing more now */
	fcntl(fd, F_SETFL, O_NONBLOCK);
	EXPECT_EQ(-1, read(fd, &byte, 1));
	EXPECT_TRUE(errno == ENOMSG || errno == EAGAIN);

	ASSERT_EQ(0, set_state(_metadata, d, S_PRE_COPY_P2P, NULL));
	ASSERT_EQ(0, vnl_mig_precopy_info(fd, &initial2, &dirty, &flags));
	ASSERT_EQ(0, set_state(_metadata, d, S_STOP_COPY, NULL));
	/* PRECOPY_INFO only in the precopy states */
	EXPECT_EQ(-EINVAL, vnl_mig_precopy_info(fd, &initial2, &dirty, &flags));
	pfd = (struct pollfd){ .fd = fd, .events = POLLIN };
	EXPECT_EQ(1, poll(&pfd, 1, 1000));
	fcntl(fd, F_SETFL, 0);
	EXPECT_EQ(0, vnl_mig_read(fd, &buf, &len, 4096));
	EXPECT_LE(len - initial, size)
		TH_LOG("MIG_DATA_SIZE %llu < %zu bytes of stop-copy data",
		       (unsigned long long)size, len - initial);
	/* EOF stays EOF */
	EXPECT_EQ(0, read(fd, &byte, 1));
	ASSERT_EQ(0, set_state(_metadata, d, S_STOP, NULL));
	/* the file is disabled once the device left the saving states */
	EXPECT_EQ(-1, read(fd, &byte, 1));
	EXPECT_EQ(ENODEV, errno);
	ASSERT_EQ(0, set_state(_metadata, d, S_RUNNING, NULL));
	free(buf);
}

/* a mutation of a good stream and the errno it must be refused with */
struct bad_stream {
	const char *name;
	int err;
	void (*mutate)(uint8_t **buf, size_t *len);
};

static void m_truncate(uint8_t **b, size_t *len)
{
	*len -= 10;
}

static void m_magic(uint8_t **b, size_t *len)
{
	(*b)[0] ^= 0xff;
}

static void m_version(uint8_t **b, size_t *len)
{
	put_le32(*b + 8, 3);
}

/* insert a record after the stream header */
static void insert_record(uint8_t **b, size_t *len, uint32_t tag,
			  uint32_t flags, size_t size)
{
	uint8_t *n = malloc(*len + REC_LEN + size);

	memcpy(n, *b, HDR_LEN);
	put_le32(n + HDR_LEN, tag);
	put_le32(n + HDR_LEN + 4, flags);
	put_le64(n + HDR_LEN + 8, size);
	memset(n + HDR_LEN + REC_LEN, 0x3c, size);
	memcpy(n + HDR_LEN + REC_LEN + size, *b + HDR_LEN, *len - HDR_LEN);
	free(*b);
	*b = n;
	*len += REC_LEN + size;
}

static void m_mandatory_tag(uint8_t **b, size_t *len)
{
	insert_record(b, len, 0x7777, 0, 24);
}

static void m_oversize(uint8_t **b, size_t *len)
{
	put_le64(*b + HDR_LEN + 8, 1ull << 40);		/* COMPAT size */
}

static void m_queues(uint8_t **b, size_t *len)
{
	(*b)[HDR_LEN + REC_LEN + COMPAT_NVQ] = 64;	/* NVQ */
}

static void m_namespace(uint8_t **b, size_t *len)
{
	(*b)[HDR_LEN + REC_LEN + COMPAT_NS + NS_NGUID] ^= 0x01;
}

static const struct bad_stream bad_streams[] = {
	{ "truncated", -EINVAL, m_truncate },
	{ "bad magic", -EINVAL, m_magic },
	{ "newer version", -EPROTONOSUPPORT, m_version },
	{ "unknown mandatory tag", -EOPNOTSUPP, m_mandatory_tag },
	{ "oversize record", -E2BIG, m_oversize },
	{ "queues beyond the destination", -ENOSPC, m_queues },
	{ "other namespace", -EREMOTEIO, m_namespace },
};

/*
 * Each bad stream is refused with its documented errno; the destination
 * is untouched and stays in RESUMING: after VFIO_DEVICE_RESET it takes a
 * good stream and works.
 */
TEST_F(mig, negative_streams)
{
	struct vnl_dev *src = &self->dev[0], *dst = &self->dev[1];
	uint8_t *good, *bad;
	size_t len, blen;
	unsigned int i;
	int ret, fd;

	ASSERT_EQ(0, vnl_ctrl_enable(&self->ctrl[0], src, 16));
	ASSERT_EQ(0, vnl_create_ioq(&self->ctrl[0], 1, 8, false, 0));
	ASSERT_EQ(0, set_state(_metadata, src, S_STOP, NULL));
	ASSERT_EQ(0, save(_metadata, src, &good, &len));
	/* the compat record names at least the shared namespace */
	ASSERT_GE(le16(good + HDR_LEN + REC_LEN + 14), 1);

	for (i = 0; i < ARRAY_SIZE(bad_streams); i++) {
		bad = malloc(len);
		ASSERT_NE(NULL, bad);
		memcpy(bad, good, len);
		blen = len;
		bad_streams[i].mutate(&bad, &blen);
		ASSERT_EQ(0, set_state(_metadata, dst, S_STOP, NULL));
		ret = load(dst, bad, blen, 13);
		EXPECT_EQ(bad_streams[i].err, ret)
			TH_LOG("%s: %s", bad_streams[i].name, strerror(-ret));
		EXPECT_EQ(S_RESUMING, vnl_mig_get_state(dst))
			TH_LOG("%s: not left in RESUMING", bad_streams[i].name);
		free(bad);
		/* recover whatever state the failure left */
		ASSERT_EQ(0, vnl_dev_reset(dst));
		EXPECT_EQ(S_RUNNING, vnl_mig_get_state(dst));
	}

	/* an unknown optional record is skipped */
	bad = malloc(len);
	memcpy(bad, good, len);
	blen = len;
	insert_record(&bad, &blen, 0x8888, 1, 40);
	ASSERT_EQ(0, set_state(_metadata, dst, S_STOP, NULL));
	EXPECT_EQ(0, load(dst, bad, blen, 4096));
	free(bad);
	ASSERT_EQ(0, vnl_dev_reset(dst));

	/*
	 * bytes after the end record, in a write of their own after the one
	 * that committed the stream: that write fails, the error sticks and
	 * RESUMING -> STOP fails with it (found by mig.stream_fuzz)
	 */
	ASSERT_EQ(0, set_state(_metadata, dst, S_STOP, NULL));
	ASSERT_EQ(0, vnl_mig_set_state(dst, S_RESUMING, &fd));
	EXPECT_EQ(0, vnl_mig_write(fd, good, len, len));
	EXPECT_EQ(-1, write(fd, good, 4));
	EXPECT_EQ(EINVAL, errno);
	close(fd);
	EXPECT_EQ(-EINVAL, vnl_mig_set_state(dst, S_STOP, NULL));
	EXPECT_EQ(S_RESUMING, vnl_mig_get_state(dst));
	ASSERT_EQ(0, vnl_dev_reset(dst));

	/* the destination is still usable */
	ASSERT_EQ(0, vnl_ctrl_enable(&self->ctrl[1], dst, 16)) TH_LOG("%s", vnl_err);
	ASSERT_EQ(0, vnl_create_ioq(&self->ctrl[1], 1, 8, false, 0));
	ASSERT_EQ(0, set_state(_metadata, src, S_RUNNING, NULL));
	free(good);
}

/*
 * Stream fuzzer: mutations of a real stream (bit flips, fields at boundary
 * values, record SIZE fields, truncation, growth, duplicated and swapped
 * records, unknown optional and mandatory records) and random streams,
 * each written into RESUMING in random pieces and ended with STOP.  Every
 * case ends in 0 with the device in STOP, or a documented errno with the
 * device still in RESUMING (Documentation/stream.rst); VFIO_DEVICE_RESET
 * then brings RUNNING back, and every 32nd case (and the last) the VF is
 * enabled and does Identify and a Read.  STREAM_FUZZ_CASES (default 300)
 * and STREAM_FUZZ_SEED set the run; STREAM_FUZZ_WORKERS (1 or 2, default
 * 2) fuzzes that many VFs at once, each from its own thread with the other
 * VF's stream, as two migrations into one host.  A worker's streams follow
 * from the seed alone (worker N draws from seed + N).
 */
static __thread uint64_t fz_state;

/*
 * A worker's first xorshift state: its seed through a 64-bit finaliser
 * (SplitMix64's), so that neighbouring seeds (worker N draws from seed +
 * N) start far apart and never at 0, where xorshift stays.
 */
static uint64_t fz_first_state(uint64_t seed)
{
	uint64_t z = seed + 0x9e3779b97f4a7c15ULL;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	z ^= z >> 31;
	return z ? z : 1;
}

static uint32_t fz_rand(void)
{
	fz_state ^= fz_state << 13;
	fz_state ^= fz_state >> 7;
	fz_state ^= fz_state << 17;
	return (uint32_t)(fz_state >> 16);
}

static size_t fz_min(size_t a, size_t b)
{
	return a < b ? a : b;
}

static uint32_t fz_below(uint32_t n)
{
	return n ? fz_rand() % n : 0;
}

static const uint64_t fz_bounds[] = {
	0, 1, 2, 4, 16, 31, 32, 48, 56, 64, 65, 0x7f, 0x80, 0xff, 0x100,
	0xffff, 0x10000, 0x3fffff0, 0x4000000, 0x4100000, 0x7fffffff,
	0x80000000, 0xffffffff, 0x100000000ull, 1ull << 40, ~0ull,
};

/* offsets of the record headers of a stream, up to @max */
static int fz_records(const uint8_t *b, size_t len, size_t *off, int max)
{
	size_t o = HDR_LEN;
	uint64_t size;
	int n = 0;

	while (n < max && o + REC_LEN <= len) {
		off[n++] = o;
		memcpy(&size, b + o + 8, 8);
		if (size > len - o - REC_LEN)
			break;
		o += REC_LEN + size;
	}
	return n;
}

/* one mutation of @b (@len bytes, room for @cap); returns the new length */
static size_t fz_mutate(uint8_t *b, size_t len, size_t cap)
{
	size_t off[8], a, c, n;
	int nrec = fz_records(b, len, off, 8), r;
	uint64_t v = fz_bounds[fz_below(ARRAY_SIZE(fz_bounds))];
	uint8_t *tmp;

	switch (fz_below(10)) {
	case 0:				/* bit flips */
		for (n = 1 + fz_below(8); n; n--)
			b[fz_below(len)] ^= 1 << fz_below(8);
		break;
	case 1:				/* a dword at a boundary value */
		a = fz_below(len / 4) * 4;
		put_le32(b + a, (uint32_t)v);
		break;
	case 2:				/* a record's SIZE */
		if (nrec)
			put_le64(b + off[fz_below(nrec)] + 8, v);
		break;
	case 3:				/* a byte-sized count (NVQ, NVI, NNS...) */
		if (nrec)
			b[fz_min(len - 1, off[0] + REC_LEN + fz_below(32))] = (uint8_t)v;
		break;
	case 4:				/* truncation */
		len = fz_below(len);
		break;
	case 5:				/* growth: random bytes or the stream again */
		n = fz_min(cap - len, 1 + fz_below(256));
		if (fz_below(2) && len <= cap - len) {
			memcpy(b + len, b, len);
			len *= 2;
			break;
		}
		for (a = 0; a < n; a++)
			b[len + a] = fz_rand();
		len += n;
		break;
	case 6:				/* a record duplicated in place */
		if (!nrec)
			break;
		r = fz_below(nrec);
		c = (r + 1 < nrec ? off[r + 1] : len) - off[r];
		if (len + c > cap)
			break;
		memmove(b + off[r] + c, b + off[r], len - off[r]);
		len += c;
		break;
	case 7:				/* the first two records swapped */
		if (nrec < 3)
			break;
		a = off[1] - off[0];
		c = off[2] - off[1];
		tmp = malloc(a);
		if (!tmp)
			break;
		memcpy(tmp, b + off[0], a);
		memmove(b + off[0], b + off[1], c);
		memcpy(b + off[0] + c, tmp, a);
		free(tmp);
		break;
	case 8:				/* an unknown record at a record boundary */
		a = nrec ? off[fz_below(nrec)] : HDR_LEN;
		c = 4 * fz_below(16);
		if (a > len || len + REC_LEN + c > cap)
			break;
		memmove(b + a + REC_LEN + c, b + a, len - a);
		put_le32(b + a, 0x100 + fz_below(0x100));
		put_le32(b + a + 4, fz_below(2));
		put_le64(b + a + 8, c);
		memset(b + a + REC_LEN, fz_rand(), c);
		len += REC_LEN + c;
		break;
	default:			/* a random run */
		a = fz_below(len);
		for (n = fz_min(len, a + 1 + fz_below(32)); a < n; a++)
			b[a] = fz_rand();
		break;
	}
	return len;
}

static bool fz_errno_documented(int err)
{
	static const int ok[] = {
		EINVAL, EPROTONOSUPPORT, EOPNOTSUPP, E2BIG, ENOMEM, EXDEV,
		ENOEXEC, ENOSPC, EREMOTEIO, EIO, EPROTO, EBUSY, ENXIO,
		ECANCELED,
	};
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(ok); i++)
		if (err == -ok[i])
			return true;
	return false;
}

/* one stream fuzz worker: a destination VF and what it saw */
struct fz_worker {
	struct __test_metadata *meta;
	struct vnl_dev *dst;
	struct vnl_ctrl *ctrl;
	int pffd;
	const uint8_t *good;	/* the other VF's stream */
	size_t len;
	uint8_t *b;		/* the case's stream, @cap bytes */
	size_t cap;
	size_t arena;		/* the usability checks' queues from here */
	uint64_t iova;		/* and their read buffer */
	unsigned int cases, done, accepted, checks;
	unsigned int by_errno[160];
	uint64_t seed, t_stop, t_load, t_reset;
	char why[320];		/* the first failure; empty if none */
};

/*
 * Held shared by each case from its load to its Error Recovery fixup, and
 * exclusively by a usability check: an accepted state may set namespace 1's
 * DULBE, which would fail the other VF's Read of an unwritten block.
 */
static pthread_rwlock_t fz_ns_lock = PTHREAD_RWLOCK_INITIALIZER;
static atomic_bool fz_stop;

/* note the first failure of a worker and stop both; returns -1 */
static int __printf(2, 3)
fz_fail(struct fz_worker *w, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(w->why, sizeof(w->why), fmt, ap);
	va_end(ap);
	atomic_store(&fz_stop, true);
	return -1;
}

/* the usability check: enable, Identify, an I/O queue, a Read; reset */
static int fz_check(struct fz_worker *w)
{
	int ret;

	/*
	 * the reset freed the last check's queues: without this the arena
	 * ran out at the 52nd check (case 1663)
	 */
	w->dst->dma_used = w->arena;
	ret = vnl_ctrl_enable(w->ctrl, w->dst, 16);
	if (!ret)
		ret = vnl_identify(w->ctrl, 0x01, 0, 0, NULL);
	if (!ret)
		ret = vnl_create_ioq(w->ctrl, 1, 8, false, 0);
	if (!ret)
		ret = vnl_rw(w->ctrl, NVME_CMD_READ, 1, 0, 1, w->iova);
	if (!ret)
		ret = vnl_dev_reset(w->dst);
	return ret;
}

/* case @i: a stream from the RNG into RESUMING, the outcome, the reset */
static int fz_case(struct fz_worker *w, unsigned int i)
{
	const uint32_t err_rec_off[6] = { 0x05, 0 };
	size_t blen = w->len;
	uint8_t *b = w->b;
	int ret, st, e = 0;
	uint64_t t;

	memcpy(b, w->good, w->len);
	if (!fz_below(32)) {
		blen = 1 + fz_below(w->cap);
		for (size_t j = 0; j < blen; j++)
			b[j] = fz_rand();
	} else {
		for (e = 1 + fz_below(3); e; e--)
			blen = fz_mutate(b, blen, w->cap);
	}
	t = vnl_now_ms();
	ret = vnl_mig_set_state(w->dst, S_STOP, NULL);
	if (ret)
		return fz_fail(w, "case %u: -> STOP: %s", i, strerror(-ret));
	w->t_stop += vnl_now_ms() - t;
	pthread_rwlock_rdlock(&fz_ns_lock);
	t = vnl_now_ms();
	ret = load(w->dst, b, blen, 1 + fz_below(blen + 1));
	w->t_load += vnl_now_ms() - t;
	st = vnl_mig_get_state(w->dst);
	/*
	 * An accepted state may set namespace 1's Error Recovery (DULBE),
	 * which QEMU keeps per namespace, shared by every controller: reads
	 * of unwritten blocks would fail for the tests after this one.  Set
	 * it back.
	 */
	if (!ret)
		e = vnl_pf_cmd(w->pffd, NVME_ADM_SET_FEATURES, 1, err_rec_off,
			       NULL, 0, NULL);
	pthread_rwlock_unlock(&fz_ns_lock);
	if (!ret) {
		w->accepted++;
		if (st != S_STOP)
			return fz_fail(w, "case %u: accepted, state %d", i, st);
		if (e > 0)
			return fz_fail(w, "case %u: Set Features: status %#x",
				       i, e);
		if (e)
			return fz_fail(w, "case %u: Set Features: %s", i, vnl_err);
	} else {
		if (!fz_errno_documented(ret))
			return fz_fail(w, "case %u: undocumented errno %d", i, ret);
		if (st != S_RESUMING)
			return fz_fail(w, "case %u: %s, state %d", i,
				       strerror(-ret), st);
		if (-ret < (int)ARRAY_SIZE(w->by_errno))
			w->by_errno[-ret]++;
	}
	t = vnl_now_ms();
	if (vnl_dev_reset(w->dst))
		return fz_fail(w, "case %u: reset: %s", i, vnl_err);
	w->t_reset += vnl_now_ms() - t;
	st = vnl_mig_get_state(w->dst);
	if (st != S_RUNNING)
		return fz_fail(w, "case %u: state %d after reset", i, st);
	return 0;
}

static void *fz_run(void *arg)
{
	struct fz_worker *w = arg;
	struct __test_metadata *_metadata = w->meta;
	unsigned int i;
	int ret;

	fz_state = fz_first_state(w->seed);
	w->cap = 4 * w->len + 4096;
	w->b = malloc(w->cap);
	if (!w->b) {
		fz_fail(w, "no memory");
		return NULL;
	}
	if (!vnl_dma_alloc(w->dst, VNL_PAGE, &w->iova)) {
		fz_fail(w, "DMA buffer: %s", vnl_err);
		free(w->b);
		w->b = NULL;
		return NULL;
	}
	w->arena = w->dst->dma_used;
	for (i = 0; i < w->cases && !atomic_load(&fz_stop); i++) {
		if (fz_case(w, i))
			break;
		if (i % 32 == 31 || i == w->cases - 1) {
			pthread_rwlock_wrlock(&fz_ns_lock);
			ret = fz_check(w);
			pthread_rwlock_unlock(&fz_ns_lock);
			if (ret) {
				fz_fail(w, "case %u: usability check: %s", i,
					vnl_err);
				break;
			}
			w->checks++;
		}
		w->done = i + 1;
		if (i % 1000 == 999)
			TH_LOG("stream fuzz: %s: %u cases done, %u accepted",
			       w->dst->bdf, i + 1, w->accepted);
	}
	free(w->b);
	w->b = NULL;
	return NULL;
}

static void fz_free_streams(uint8_t *(*good)[2])
{
	free((*good)[0]);
	free((*good)[1]);
}

/*
 * make fuzz runs 100000 cases on the debug kernel: no harness timeout that
 * would cut it short (the rig's RIG_TIMEOUT and stall watchdog bound it)
 */
TEST_F_TIMEOUT(mig, stream_fuzz, 86400)
{
	const char *env = getenv("STREAM_FUZZ_CASES");
	const char *seed_env = getenv("STREAM_FUZZ_SEED");
	const char *nw_env = getenv("STREAM_FUZZ_WORKERS");
	unsigned int cases = 300, nw = 2, k, done = 0, accepted = 0, checks = 0;
	uint64_t seed = time(NULL), t0, ms, t_stop = 0, t_load = 0, t_reset = 0;
	struct fz_worker w[2] = {};
	pthread_t tid[2];
	/* freed however the test ends, an ASSERT included */
	uint8_t *good[2] __attribute__((cleanup(fz_free_streams))) = {};
	size_t len[2];
	int e, started;

	if (env)
		cases = strtoul(env, NULL, 0);
	if (seed_env)
		seed = strtoull(seed_env, NULL, 0);
	if (nw_env)
		nw = strtoul(nw_env, NULL, 0);
	ASSERT_TRUE(nw == 1 || nw == 2) TH_LOG("STREAM_FUZZ_WORKERS: 1 or 2");
	TH_LOG("stream fuzz: %u cases, %u workers, STREAM_FUZZ_SEED=%llu",
	       cases, nw, (unsigned long long)seed);
	/*
	 * each worker's source VF's stream, with an I/O queue; the other VF
	 * loads it (one worker: only VF0's, which VF1 loads)
	 */
	for (k = 0; k < nw; k++) {
		ASSERT_EQ(0, vnl_ctrl_enable(&self->ctrl[k], &self->dev[k], 16))
			TH_LOG("%s", vnl_err);
		ASSERT_EQ(0, vnl_create_ioq(&self->ctrl[k], 1, 8, false, 0));
		ASSERT_EQ(0, set_state(_metadata, &self->dev[k], S_STOP, NULL));
		ASSERT_EQ(0, save(_metadata, &self->dev[k], &good[k], &len[k]));
		ASSERT_EQ(0, vnl_dev_reset(&self->dev[k])) TH_LOG("%s", vnl_err);
	}

	atomic_store(&fz_stop, false);
	/* one worker: VF1 loads VF0's stream, as before there were two */
	for (k = 0; k < nw; k++) {
		w[k].meta = _metadata;
		w[k].dst = &self->dev[1 - k];
		w[k].ctrl = &self->ctrl[1 - k];
		w[k].pffd = self->rig.pffd;
		w[k].good = good[k];
		w[k].len = len[k];
		w[k].cases = cases / nw + (k < cases % nw);
		w[k].seed = seed + k;
	}
	t0 = vnl_now_ms();
	for (e = 0, started = 0; started < (int)nw; started++) {
		e = pthread_create(&tid[started], NULL, fz_run, &w[started]);
		if (e) {
			atomic_store(&fz_stop, true);
			break;
		}
	}
	/* a worker that did start is joined before any ASSERT returns */
	for (k = 0; k < (unsigned int)started; k++)
		pthread_join(tid[k], NULL);
	ASSERT_EQ(0, e) TH_LOG("pthread_create: %s", strerror(e));
	ms = vnl_now_ms() - t0;
	for (k = 0; k < nw; k++) {
		EXPECT_STREQ("", w[k].why) TH_LOG("%s", w[k].dst->bdf);
		done += w[k].done;
		accepted += w[k].accepted;
		checks += w[k].checks;
		t_stop += w[k].t_stop;
		t_load += w[k].t_load;
		t_reset += w[k].t_reset;
	}
	TH_LOG("stream fuzz: %u cases, %u accepted, %u usability checks, %llu s (%llu ms a case)",
	       done, accepted, checks, (unsigned long long)ms / 1000,
	       (unsigned long long)(done ? ms / done : 0));
	/*
	 * where a case's time goes, in each worker: RUNNING -> STOP, the load
	 * (RESUMING, the writes, RESUMING -> STOP) and VFIO_DEVICE_RESET
	 */
	if (done)
		TH_LOG("  per case and worker: -> STOP %llu ms, load %llu ms, reset %llu ms",
		       (unsigned long long)t_stop / done,
		       (unsigned long long)t_load / done,
		       (unsigned long long)t_reset / done);
	for (e = 1; e < (int)ARRAY_SIZE(w[0].by_errno); e++)
		if (w[0].by_errno[e] + w[1].by_errno[e])
			TH_LOG("  %-16s %u", strerror(e),
			       w[0].by_errno[e] + w[1].by_errno[e]);
	EXPECT_EQ(cases, done);

	/* after all of it each destination still takes the real stream */
	for (k = 0; k < nw; k++) {
		struct vnl_dev *d = w[k].dst;

		ASSERT_EQ(0, set_state(_metadata, d, S_STOP, NULL));
		EXPECT_EQ(0, load(d, good[k], len[k], 4096));
		ASSERT_EQ(0, vnl_dev_reset(d));
		EXPECT_EQ(S_RUNNING, vnl_mig_get_state(d));
	}
}

/* Reset during STOP_COPY and during RESUMING; close with an open data fd. */
TEST_F(mig, reset_and_close_with_open_fd)
{
	struct vnl_dev *d = &self->dev[0];
	uint8_t byte = 0;
	int fd;

	ASSERT_EQ(0, set_state(_metadata, d, S_STOP_COPY, &fd));
	ASSERT_EQ(0, vnl_dev_reset(d));
	EXPECT_EQ(S_RUNNING, vnl_mig_get_state(d));
	EXPECT_EQ(-1, read(fd, &byte, 1));
	EXPECT_EQ(ENODEV, errno);
	close(fd);

	ASSERT_EQ(0, set_state(_metadata, d, S_STOP, NULL));
	ASSERT_EQ(0, set_state(_metadata, d, S_RESUMING, &fd));
	ASSERT_EQ(1, write(fd, "N", 1));
	ASSERT_EQ(0, vnl_dev_reset(d));
	EXPECT_EQ(S_RUNNING, vnl_mig_get_state(d));
	EXPECT_EQ(-1, write(fd, "V", 1));
	EXPECT_EQ(ENODEV, errno);
	close(fd);

	/* close the device, keep the data fd: it is dead, nothing leaks */
	ASSERT_EQ(0, set_state(_metadata, d, S_STOP_COPY, &fd));
	vnl_dev_close(d);
	EXPECT_EQ(-1, read(fd, &byte, 1));
	EXPECT_EQ(ENODEV, errno);
	close(fd);
	ASSERT_EQ(0, vnl_dev_open(d, self->rig.bdf[0], VNL_IOMMUFD, IOVA_A, ARENA_SIZE));
	EXPECT_EQ(S_RUNNING, vnl_mig_get_state(d));
	ASSERT_EQ(0, vnl_ctrl_enable(&self->ctrl[0], d, 16)) TH_LOG("%s", vnl_err);
}

/*
 * VFIO_DEVICE_RESET is not serialised with the migration ioctls.  Between
 * the driver's reset_prepare and reset_done the VF is in FLR and its files
 * are gone: an arc then fails with EBUSY, whatever state it starts from,
 * and sends nothing to the PF; after reset_done it starts from RUNNING.
 * Each round loads VF1's stream into VF2, then has another thread reset
 * VF2 and asks for RESUMING -> STOP a little later, 0 to 6 ms over the
 * rounds: the arc returns 0 (before the reset or after it) or EBUSY (in
 * it), a write 0 or ENODEV.  Entering RESUMING is retried while a reset
 * holds the core's memory_lock (EBUSY too).  Then VF2 must still work.
 */
struct reset_kick {
	struct vnl_dev *d;
	sem_t go;
	atomic_bool stop;
	atomic_uint resets;
	int err;
};

static void *reset_kick_fn(void *arg)
{
	struct reset_kick *r = arg;
	int ret;

	for (;;) {
		while (sem_wait(&r->go) && errno == EINTR)
			;
		if (atomic_load(&r->stop))
			return NULL;
		ret = vnl_dev_reset(r->d);
		if (ret && !r->err)
			r->err = ret;
		atomic_fetch_add(&r->resets, 1);
	}
}

/* STOP (from wherever a reset left VF2) -> RESUMING, retried on EBUSY */
static int enter_resuming(struct vnl_dev *d, int *fd)
{
	uint64_t end = vnl_now_ms() + 10000;
	int ret;

	do {
		ret = vnl_mig_set_state(d, S_RESUMING, fd);
		if (ret != -EBUSY)
			return ret;
		usleep(1000);
	} while (vnl_now_ms() < end);
	return ret;
}

TEST_F(mig, arcs_racing_reset)
{
	struct reset_kick r = { .d = &self->dev[1] };
	unsigned int i, stopped = 0, busy = 0, gone = 0;
	const unsigned int rounds = 30;
	const char *what = "";
	uint8_t *good;
	size_t len;
	pthread_t tid;
	int fd, ret = 0;

	ASSERT_EQ(0, set_state(_metadata, &self->dev[0], S_STOP, NULL));
	ASSERT_EQ(0, save(_metadata, &self->dev[0], &good, &len));
	ASSERT_EQ(0, sem_init(&r.go, 0, 0));
	ASSERT_EQ(0, pthread_create(&tid, NULL, reset_kick_fn, &r));
	for (i = 0; i < rounds; i++) {
		unsigned int resets = atomic_load(&r.resets);

		what = "-> RESUMING";
		ret = enter_resuming(r.d, &fd);
		if (ret)
			break;
		what = "write";
		ret = vnl_mig_write(fd, good, len, len);
		close(fd);
		if (ret && ret != -ENODEV)
			break;
		gone += ret == -ENODEV;
		sem_post(&r.go);
		usleep(i * 200);
		what = "RESUMING -> STOP";
		ret = vnl_mig_set_state(r.d, S_STOP, NULL);
		if (ret && ret != -EBUSY)
			break;
		busy += ret == -EBUSY;
		stopped += !ret;
		/* the round's reset ends before the next one begins */
		while (atomic_load(&r.resets) == resets)
			usleep(1000);
	}
	atomic_store(&r.stop, true);
	sem_post(&r.go);
	pthread_join(tid, NULL);
	sem_destroy(&r.go);
	free(good);
	TH_LOG("%u rounds: RESUMING -> STOP in a reset (EBUSY) %u, 0 %u; writes after a reset %u",
	       i, busy, stopped, gone);
	EXPECT_EQ(rounds, i) TH_LOG("round %u: %s: %s", i, what, strerror(-ret));
	EXPECT_EQ(0, r.err) TH_LOG("VFIO_DEVICE_RESET: %s", strerror(-r.err));

	ASSERT_EQ(0, vnl_dev_reset(r.d)) TH_LOG("%s", vnl_err);
	EXPECT_EQ(S_RUNNING, vnl_mig_get_state(r.d));
	ASSERT_EQ(0, vnl_ctrl_enable(&self->ctrl[1], r.d, 16)) TH_LOG("%s", vnl_err);
	EXPECT_EQ(0, vnl_identify(&self->ctrl[1], 0x01, 0, 0, NULL))
		TH_LOG("%s", vnl_err);
}

/*
 * A fault at each migration command (from the device model) fails its arc
 * with the status's errno (Internal Error: -EIO).  Suspend and Resume
 * reached the controller: ERROR, left by VFIO_DEVICE_RESET.  Get and Set
 * Controller State did not change it: the device stays where it was.
 */
TEST_F(mig, device_faults)
{
	struct vnl_dev *src = &self->dev[0], *dst = &self->dev[1];
	uint8_t *good;
	size_t len;
	int fd;

	ASSERT_EQ(0, set_state(_metadata, src, S_STOP, NULL));
	ASSERT_EQ(0, save(_metadata, src, &good, &len));
	ASSERT_EQ(0, set_state(_metadata, src, S_RUNNING, NULL));

	/* Suspend: RUNNING -> RUNNING_P2P */
	ASSERT_EQ(0, vnl_lm_fault("nvme0", "suspend", 1, 0x6)) TH_LOG("%s", vnl_err);
	EXPECT_EQ(-EIO, SET(0, S_RUNNING_P2P));
	expect_error_then_reset(_metadata, src);

	/* Get Controller State: STOP -> STOP_COPY, the device stays in STOP */
	ASSERT_EQ(0, set_state(_metadata, src, S_STOP, NULL));
	ASSERT_EQ(0, vnl_lm_fault("nvme0", "get-state", 1, 0x6));
	EXPECT_EQ(-EIO, vnl_mig_set_state(src, S_STOP_COPY, &fd));
	EXPECT_EQ(S_STOP, vnl_mig_get_state(src));
	ASSERT_EQ(0, set_state(_metadata, src, S_RUNNING, NULL));

	/* Resume: RUNNING_P2P -> RUNNING */
	ASSERT_EQ(0, set_state(_metadata, src, S_RUNNING_P2P, NULL));
	ASSERT_EQ(0, vnl_lm_fault("nvme0", "resume", 1, 0x6));
	EXPECT_EQ(-EIO, SET(0, S_RUNNING));
	expect_error_then_reset(_metadata, src);

	/* Set Controller State: RESUMING, a good stream; the write fails */
	ASSERT_EQ(0, set_state(_metadata, dst, S_STOP, NULL));
	ASSERT_EQ(0, vnl_lm_fault("nvme0", "set-state", 1, 0x6));
	EXPECT_EQ(-EIO, load(dst, good, len, 4096));
	EXPECT_EQ(S_RESUMING, vnl_mig_get_state(dst));
	ASSERT_EQ(0, vnl_dev_reset(dst));
	/* and without the fault the same stream loads */
	ASSERT_EQ(0, set_state(_metadata, dst, S_STOP, NULL));
	EXPECT_EQ(0, load(dst, good, len, 4096));
	ASSERT_EQ(0, vnl_dev_reset(dst));
	free(good);
}

/*
 * A PF controller reset during STOP_COPY fails the data fd and leaves
 * ERROR; after VFIO_DEVICE_RESET (and the VFs back online: a PF reset takes
 * secondary controllers offline) the device works.
 */
TEST_F(mig, pf_reset_during_stop_copy)
{
	struct vnl_dev *d = &self->dev[0];
	uint8_t *buf = NULL;
	size_t len = 0;
	int fd, i, tries;

	ASSERT_EQ(0, set_state(_metadata, d, S_STOP_COPY, &fd));
	self->fd[0] = fd;
	ASSERT_EQ(0, vnl_pf_reset(self->rig.pf)) TH_LOG("%s", vnl_err);
	/* the save fd failed, the device is in ERROR */
	EXPECT_EQ(-ENODEV, vnl_mig_read(fd, &buf, &len, 4096));
	for (tries = 0; tries < 50 && vnl_mig_get_state(d) != S_ERROR; tries++)
		usleep(100000);
	EXPECT_EQ(S_ERROR, vnl_mig_get_state(d));
	/* VF2, open but not migrating, keeps its state */
	EXPECT_EQ(S_RUNNING, vnl_mig_get_state(&self->dev[1]));

	/* recover: VFs online again, reset the device */
	for (i = 0; i < 2; i++) {
		ASSERT_EQ(0, vnl_pf_vf_online(self->rig.pffd, self->rig.pf, i, VF_NVQ,
					      VF_NVI, NULL)) TH_LOG("%s", vnl_err);
	}
	ASSERT_EQ(0, vnl_dev_reset(d));
	EXPECT_EQ(S_RUNNING, vnl_mig_get_state(d));
	ASSERT_EQ(0, vnl_ctrl_enable(&self->ctrl[0], d, 16)) TH_LOG("%s", vnl_err);
	ASSERT_EQ(0, set_state(_metadata, d, S_STOP, NULL));
	ASSERT_EQ(0, save(_metadata, d, &buf, &len));
	ASSERT_EQ(0, set_state(_metadata, d, S_RUNNING, NULL));
	free(buf);
}

static bool kmsg_has(const char *a, const char *b);

#define NVME_PARAMS	"/sys/module/nvme/parameters/"
#define HOLD_MS		20000

/* Reads on the other VF, in a thread, for as long as a Suspend is held. */
struct io_loop {
	struct vnl_ctrl *c;
	uint64_t iova;
	atomic_int stop;
	long ok, bad;
	pthread_t thread;
};

static void *io_loop_fn(void *arg)
{
	struct io_loop *io = arg;

	while (!atomic_load(&io->stop)) {
		if (vnl_rw(io->c, NVME_CMD_READ, 1, 0, 1, io->iova))
			io->bad++;
		else
			io->ok++;
	}
	return NULL;
}

static unsigned long pf_resets(struct __test_metadata *_metadata)
{
	unsigned long n = 0;

	EXPECT_EQ(0, vnl_qom_get_uint("nvme0", "lm-ctrl-resets", &n))
		TH_LOG("%s", vnl_err);
	return n;
}

/*
 * Bounded time: the device holds VF1's Suspend (lm-suspend-delay, 20 s)
 * and nvme-pci's lm_suspend_timeout_ms is 1 s.  With @abort the model
 * honours the Abort nvme-pci sends when the timeout expires; without, the
 * Suspend is left to the controller and the caller gives up at twice the
 * timeout.  Either way the arc fails with -ETIMEDOUT long before the hold
 * ends and the device is in ERROR (its state is unknown), VF2 does I/O all
 * along, and the PF is not reset.  A reset of VF1 recovers it (and ends a
 * Suspend still held).
 */
static void suspend_timeout(struct __test_metadata *_metadata,
			    struct _test_data_mig *self, bool abort)
{
	struct vnl_dev *d = &self->dev[0];
	struct io_loop io = { .c = &self->ctrl[1] };
	unsigned long resets;
	long t0, took;
	int ret;

	ASSERT_EQ(0, vnl_ctrl_enable(&self->ctrl[1], &self->dev[1], 16)) TH_LOG("%s", vnl_err);
	ASSERT_EQ(0, vnl_create_ioq(&self->ctrl[1], 1, 8, false, 0)) TH_LOG("%s", vnl_err);
	ASSERT_NE(NULL, vnl_dma_alloc(&self->dev[1], VNL_PAGE, &io.iova));
	resets = pf_resets(_metadata);

	ASSERT_EQ(0, vnl_write_file(NVME_PARAMS "lm_suspend_timeout_ms", "1000"));
	ASSERT_EQ(0, vnl_qom_set("nvme0", "lm-abort-suspend", abort ? "1" : "0"))
		TH_LOG("%s", vnl_err);
	ASSERT_EQ(0, vnl_qom_set("nvme0", "lm-suspend-delay", "20000")) TH_LOG("%s", vnl_err);
	ASSERT_EQ(0, pthread_create(&io.thread, NULL, io_loop_fn, &io));

	t0 = vnl_now_ms();
	ret = SET(0, S_RUNNING_P2P);
	took = vnl_now_ms() - t0;
	usleep(300000);
	atomic_store(&io.stop, 1);
	pthread_join(io.thread, NULL);
	vnl_qom_set("nvme0", "lm-suspend-delay", "0");

	TH_LOG("Suspend with lm_suspend_timeout_ms 1000, %s: %s after %ld ms;",
	       abort ? "aborted" : "not aborted", strerror(-ret), took);
	TH_LOG("VF2 meanwhile: %ld reads ok, %ld failed", io.ok, io.bad);
	EXPECT_EQ(-ETIMEDOUT, ret);
	EXPECT_EQ(S_ERROR, vnl_mig_get_state(d));
	EXPECT_GE(took, 1000);
	EXPECT_LT(took, HOLD_MS / 2) TH_LOG("the arc waited for the held Suspend");
	EXPECT_LT(0, io.ok) TH_LOG("VF2 did no I/O while VF1's Suspend was held");
	EXPECT_EQ(0, io.bad);
	EXPECT_EQ(resets, pf_resets(_metadata)) TH_LOG("the PF was reset");
	EXPECT_TRUE(vnl_pf_live(self->rig.pf));
	EXPECT_EQ(S_RUNNING, vnl_mig_get_state(&self->dev[1]));
	/* nvme-pci aborted it, and left it to the controller only if needed */
	EXPECT_TRUE(kmsg_has("VF live migration command", "timeout, aborting"));
	EXPECT_EQ(!abort, kmsg_has("VF live migration command",
				   "left to the controller"));
	EXPECT_FALSE(kmsg_has("timeout", "reset controller"));

	/*
	 * The Suspend left to the controller (held for the rest of HOLD_MS)
	 * still owns VF1's controller: nvme-pci sends no other migration
	 * command for it, here the Track Send of a DMA logging start, which
	 * waits lm_cmd_timeout_ms for it and fails with -EBUSY.
	 */
	if (!abort) {
		struct vnl_range r = { d->dma_iova, VNL_PAGE };
		uint64_t ps = VNL_PAGE;

		ASSERT_EQ(0, vnl_write_file(NVME_PARAMS "lm_cmd_timeout_ms", "1000"));
		t0 = vnl_now_ms();
		ret = vnl_dma_log_start(d, &ps, &r, 1);
		took = vnl_now_ms() - t0;
		ASSERT_EQ(0, vnl_write_file(NVME_PARAMS "lm_cmd_timeout_ms", "10000"));
		TH_LOG("DMA logging start, the Suspend in flight: %s after %ld ms",
		       strerror(-ret), took);
		EXPECT_EQ(-EBUSY, ret);
		/*
		 * It waited the timeout, not sent at once (2 ms): a wait
		 * counted in jiffies can end up to a tick early (994 ms
		 * measured on the debug kernel), hence 900.
		 */
		EXPECT_GE(took, 900);
		EXPECT_LT(took, HOLD_MS / 2);
	}

	/*
	 * A reset of VF1 leaves ERROR.  With the Abort honoured it ends the
	 * Suspend still held.  Without, the model keeps holding it past the
	 * reset (lm-hold-over-reset): the driver's Resume after the reset
	 * waits lm_cmd_timeout_ms for it and nvme-pci refuses it; when the
	 * hold ends the Suspend completes, suspending VF1 again, and the
	 * driver sends the Resume once more on the PF event that reports the
	 * end of the command left to the controller.  The Identify of
	 * vnl_ctrl_enable() (30 s) only completes once VF1 runs.
	 */
	if (!abort) {
		ASSERT_EQ(0, vnl_qom_set("nvme0", "lm-hold-over-reset", "1"))
			TH_LOG("%s", vnl_err);
		ASSERT_EQ(0, vnl_write_file(NVME_PARAMS "lm_cmd_timeout_ms", "1000"));
	}
	ASSERT_EQ(0, vnl_dev_reset(d)) TH_LOG("%s", vnl_err);
	EXPECT_EQ(S_RUNNING, vnl_mig_get_state(d));
	ASSERT_EQ(0, vnl_write_file(NVME_PARAMS "lm_suspend_timeout_ms", "5000"));
	t0 = vnl_now_ms();
	ASSERT_EQ(0, vnl_ctrl_enable(&self->ctrl[0], d, 16)) TH_LOG("%s", vnl_err);
	took = vnl_now_ms() - t0;
	if (!abort) {
		TH_LOG("VF1 answered %ld ms after its reset, the Suspend held over it",
		       took);
		vnl_qom_set("nvme0", "lm-hold-over-reset", "0");
		ASSERT_EQ(0, vnl_write_file(NVME_PARAMS "lm_cmd_timeout_ms", "10000"));
		EXPECT_TRUE(kmsg_has("Resume after reset deferred", "still with the controller"))
			TH_LOG("the Resume after the reset was not refused: nothing tested");
	}
	EXPECT_EQ(0, set_state(_metadata, d, S_STOP, NULL));
	EXPECT_EQ(0, set_state(_metadata, d, S_RUNNING, NULL));
	EXPECT_EQ(0, vnl_rw(&self->ctrl[1], NVME_CMD_READ, 1, 0, 1, io.iova));
	EXPECT_EQ(resets, pf_resets(_metadata));
}

TEST_F(mig, suspend_timeout_aborted_without_pf_reset)
{
	suspend_timeout(_metadata, self, true);
}

TEST_F_TIMEOUT(mig, suspend_timeout_not_aborted_left_to_controller, 90)
{
	suspend_timeout(_metadata, self, false);
}

/*
 * A VF whose PF is not an MMC the driver can reach (here: its PF is bound
 * to vfio-pci, not nvme) binds to nvme-vfio-pci and works as with
 * vfio-pci, without migration.
 */
TEST(vf_without_mmc_binds_without_migration)
{
	static const uint8_t token[16] = { 0x4e, 0x56, 0x4d, 0x65 };
	struct vnl_range range = { IOVA_B, VNL_PAGE };
	struct vnl_dev d;
	char vf[32], pf[32], drv[PATH_MAX], path[PATH_MAX];
	int vfn;
	uint64_t flags;
	uint8_t cfg[4];
	ssize_t n;

	ASSERT_EQ(0, vnl_vf_of_vfio_pf(vf, sizeof(vf)))
		TH_LOG("no VF of an NVMe PF on vfio-pci (the rig's second PF)");
	vnl_sysfs_write(vf, "driver/unbind", vf);
	ASSERT_EQ(0, vnl_sysfs_write(vf, "driver_override", DRIVER));
	ASSERT_EQ(0, vnl_probe_driver(vf));
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/driver", vf);
	n = readlink(path, drv, sizeof(drv) - 1);
	ASSERT_LT(0, n) TH_LOG("%s: not bound: probe failed", vf);
	drv[n] = 0;
	EXPECT_NE(NULL, strstr(drv, DRIVER));

	/* a VF of a PF on vfio-pci opens with the PF's VF token */
	ASSERT_EQ(0, vnl_pf_of_vf(vf, pf, sizeof(pf), &vfn)) TH_LOG("%s", vnl_err);
	ASSERT_EQ(0, vnl_set_vf_token(pf, token)) TH_LOG("%s", vnl_err);
	ASSERT_EQ(0, vnl_dev_open_token(&d, vf, VNL_CONTAINER, token, IOVA_B,
					ARENA_SIZE))
		TH_LOG("%s", vnl_err);
	ASSERT_EQ(0, vnl_cfg_read(&d, 0, cfg, sizeof(cfg)));
	EXPECT_EQ(0x1b36, cfg[0] | cfg[1] << 8);
	EXPECT_EQ(-ENOTTY, vnl_mig_flags(&d, &flags));
	/* and no DMA logging either */
	flags = VNL_PAGE;
	EXPECT_EQ(-ENOTTY, vnl_dma_log_start(&d, &flags, &range, 1));
	vnl_dev_close(&d);
	vnl_sysfs_write(vf, "driver/unbind", vf);
	vnl_sysfs_write(vf, "driver_override", "\n");
}

/* 1 if the PF reports VF @i suspended (Get Controller State CSUP), else 0 */
static int vf_suspended(struct vnl_rig *r, int i)
{
	uint8_t hdr[48];
	uint32_t dw0 = 0;
	int ret;

	ret = vnl_lm_get_state(r->pffd, r->scid[i], 1, 1, 0, hdr, sizeof(hdr),
			       &dw0);
	if (ret)
		return ret < 0 ? ret : -EIO;
	return dw0 & 1;
}

/* write @pattern at @slba through @c and read it back */
static int io_roundtrip(struct vnl_ctrl *c, void *data, uint64_t iova,
			uint64_t slba, uint32_t seed)
{
	uint16_t nlb = VNL_PAGE / c->lba_size;
	uint8_t expect[VNL_PAGE];
	int ret;

	vnl_fill_pattern(expect, VNL_PAGE, seed);
	memcpy(data, expect, VNL_PAGE);
	ret = vnl_rw(c, NVME_CMD_WRITE, 1, slba, nlb, iova);
	if (ret)
		return ret;
	memset(data, 0, VNL_PAGE);
	ret = vnl_rw(c, NVME_CMD_READ, 1, slba, nlb, iova);
	if (ret)
		return ret;
	return memcmp(data, expect, VNL_PAGE) ? -EILSEQ : 0;
}

/* VF @d: controller enabled, one I/O queue pair, one data page */
static int io_setup(struct vnl_ctrl *c, struct vnl_dev *d, void **data,
		    uint64_t *iova)
{
	int ret = vnl_ctrl_enable(c, d, 16);

	if (!ret)
		ret = vnl_create_ioq(c, 1, 16, false, 0);
	if (ret)
		return ret;
	*data = vnl_dma_alloc(d, VNL_PAGE, iova);
	return *data ? 0 : -ENOMEM;
}

/*
 * Error policy: a Get Controller State that fails at STOP -> STOP_COPY
 * leaves STOP (not ERROR), and STOP -> RUNNING then works without a reset:
 * the controller keeps its queues and does I/O.
 */
TEST_F(mig, failed_get_state_keeps_stop)
{
	struct vnl_ctrl *c = &self->ctrl[0];
	uint64_t iova;
	void *data;
	int fd = -1;

	ASSERT_EQ(0, io_setup(c, &self->dev[0], &data, &iova)) TH_LOG("%s", vnl_err);
	ASSERT_EQ(0, io_roundtrip(c, data, iova, 500, 1));

	ASSERT_EQ(0, set_state(_metadata, &self->dev[0], S_STOP, NULL));
	ASSERT_EQ(0, vnl_lm_fault("nvme0", "get-state", 1, 0x6)) TH_LOG("%s", vnl_err);
	EXPECT_EQ(-EIO, vnl_mig_set_state(&self->dev[0], S_STOP_COPY, &fd));
	EXPECT_EQ(S_STOP, vnl_mig_get_state(&self->dev[0]));
	ASSERT_EQ(0, set_state(_metadata, &self->dev[0], S_RUNNING, NULL));
	EXPECT_EQ(0, io_roundtrip(c, data, iova, 501, 2));

	/* PRE_COPY_P2P -> STOP_COPY failing keeps PRE_COPY_P2P */
	ASSERT_EQ(0, set_state(_metadata, &self->dev[0], S_PRE_COPY, &fd));
	self->fd[0] = fd;
	ASSERT_EQ(0, set_state(_metadata, &self->dev[0], S_PRE_COPY_P2P, NULL));
	ASSERT_EQ(0, vnl_lm_fault("nvme0", "get-state", 1, 0x6));
	EXPECT_EQ(-EIO, SET(0, S_STOP_COPY));
	EXPECT_EQ(S_PRE_COPY_P2P, vnl_mig_get_state(&self->dev[0]));
	ASSERT_EQ(0, set_state(_metadata, &self->dev[0], S_RUNNING, NULL));
	EXPECT_EQ(0, io_roundtrip(c, data, iova, 502, 3));
}

/*
 * The source checks its own state as the destination will: a malformed
 * state from the PF (fault injection: NIOSQ off by one) fails STOP_COPY
 * with -EIO before any byte is read, and the device stays in STOP.
 */
TEST_F(mig, malformed_source_state_fails_stop_copy)
{
	struct vnl_dev *d = &self->dev[0];
	uint8_t *stream;
	size_t len;
	int fd = -1;

	ASSERT_EQ(0, vnl_ctrl_enable(&self->ctrl[0], d, 16)) TH_LOG("%s", vnl_err);
	ASSERT_EQ(0, vnl_create_ioq(&self->ctrl[0], 1, 8, false, 0));
	ASSERT_EQ(0, set_state(_metadata, d, S_STOP, NULL));
	ASSERT_EQ(0, vnl_lm_fault("nvme0", "corrupt-state", 1, 0x6)) TH_LOG("%s", vnl_err);
	EXPECT_EQ(-EIO, vnl_mig_set_state(d, S_STOP_COPY, &fd));
	EXPECT_EQ(S_STOP, vnl_mig_get_state(d));
	/* without the fault the same arc works */
	ASSERT_EQ(0, save(_metadata, d, &stream, &len));
	ASSERT_EQ(0, set_state(_metadata, d, S_RUNNING, NULL));
	free(stream);
}

/*
 * An Identify that fails during RUNNING -> PRE_COPY leaves RUNNING: the VF
 * keeps doing I/O, and what QEMU does after a failed arc (set its
 * recover state, RUNNING) succeeds instead of ending in a reset.
 */
TEST_F(mig, failed_precopy_keeps_running)
{
	struct vnl_ctrl *c = &self->ctrl[0];
	uint64_t iova;
	void *data;
	int fd = -1;

	ASSERT_EQ(0, io_setup(c, &self->dev[0], &data, &iova)) TH_LOG("%s", vnl_err);

	ASSERT_EQ(0, vnl_lm_fault("nvme0", "identify-csf", 1, 0x6)) TH_LOG("%s", vnl_err);
	EXPECT_EQ(-EIO, vnl_mig_set_state(&self->dev[0], S_PRE_COPY, &fd));
	EXPECT_EQ(S_RUNNING, vnl_mig_get_state(&self->dev[0]));
	EXPECT_EQ(0, io_roundtrip(c, data, iova, 510, 4));
	/* QEMU's recovery: back to RUNNING */
	EXPECT_EQ(0, SET(0, S_RUNNING));
	EXPECT_EQ(0, io_roundtrip(c, data, iova, 511, 5));
	/* and the migration can be tried again */
	ASSERT_EQ(0, set_state(_metadata, &self->dev[0], S_PRE_COPY, &fd));
	close(fd);
	ASSERT_EQ(0, set_state(_metadata, &self->dev[0], S_RUNNING, NULL));
	EXPECT_EQ(0, io_roundtrip(c, data, iova, 512, 6));
}

/*
 * Commit on write: a stream the driver accepts but the device refuses
 * (fault on Set Controller State) fails the write() that ends the stream
 * with -EIO, the errno of the status (Internal Error), and RESUMING -> STOP
 * fails with it too; the source, still in STOP, resumes and runs.
 */
TEST_F(mig, refused_state_fails_write)
{
	struct vnl_dev *src = &self->dev[0], *dst = &self->dev[1];
	struct vnl_ctrl *c = &self->ctrl[0];
	uint8_t *stream;
	uint64_t iova;
	size_t len;
	void *data;
	int fd;

	ASSERT_EQ(0, io_setup(c, src, &data, &iova)) TH_LOG("%s", vnl_err);
	ASSERT_EQ(0, io_roundtrip(c, data, iova, 520, 7));
	ASSERT_EQ(0, set_state(_metadata, src, S_STOP, NULL));
	ASSERT_EQ(0, save(_metadata, src, &stream, &len));

	ASSERT_EQ(0, set_state(_metadata, dst, S_STOP, NULL));
	ASSERT_EQ(0, set_state(_metadata, dst, S_RESUMING, &fd));
	self->fd[1] = fd;
	ASSERT_EQ(0, vnl_lm_fault("nvme0", "set-state", 1, 0x6)) TH_LOG("%s", vnl_err);
	/* everything but the end record is accepted as it comes */
	ASSERT_EQ(0, vnl_mig_write(fd, stream, len - REC_LEN, 4096));
	EXPECT_EQ(-1, write(fd, stream + len - REC_LEN, REC_LEN));
	EXPECT_EQ(EIO, errno);
	EXPECT_EQ(-EIO, SET(1, S_STOP));
	EXPECT_EQ(S_RESUMING, vnl_mig_get_state(dst));

	/* the source goes on */
	ASSERT_EQ(0, set_state(_metadata, src, S_RUNNING, NULL));
	EXPECT_EQ(0, io_roundtrip(c, data, iova, 521, 8));
	ASSERT_EQ(0, vnl_dev_reset(dst));
	free(stream);
}

/* load @buf (changed at @off by XOR @x) into @d: the errno of the load */
static int load_mutated(struct __test_metadata *_metadata, struct vnl_dev *d,
			const uint8_t *buf, size_t len, size_t off, uint8_t x)
{
	uint8_t *b = malloc(len);
	int ret;

	if (!b)
		return -ENOMEM;
	memcpy(b, buf, len);
	b[off] ^= x;
	ret = set_state(_metadata, d, S_STOP, NULL);
	if (!ret)
		ret = load(d, b, len, 4096);
	free(b);
	vnl_dev_reset(d);
	return ret;
}

/*
 * The namespace check: its structure (NSID, LBA format, metadata, NSZE) is
 * always enforced; its identity (NGUID, EUI64, UUID) by default, and not
 * with ns_identity=N (a namespace copied to another subsystem).
 */
TEST_F(mig, namespace_identity_policy)
{
	struct vnl_dev *src = &self->dev[0], *dst = &self->dev[1];
	const size_t ns = HDR_LEN + REC_LEN + COMPAT_NS;
	uint8_t *good;
	size_t len;

	ASSERT_EQ(0, set_state(_metadata, src, S_STOP, NULL));
	ASSERT_EQ(0, save(_metadata, src, &good, &len));
	ASSERT_EQ(0, set_state(_metadata, src, S_RUNNING, NULL));

	EXPECT_EQ(-EREMOTEIO, load_mutated(_metadata, dst, good, len, ns + NS_NGUID, 1));
	/* the kernel log says why the stream was refused */
	EXPECT_TRUE(kmsg_has(dst->bdf, "NSID 1: other NGUID, EUI64 or UUID"));
	EXPECT_EQ(-EREMOTEIO, load_mutated(_metadata, dst, good, len, ns + NS_UUID, 1));
	EXPECT_EQ(-EREMOTEIO, load_mutated(_metadata, dst, good, len, ns + NS_NSZE, 1));
	EXPECT_TRUE(kmsg_has(dst->bdf, "other format or size"));
	EXPECT_EQ(0, load_mutated(_metadata, dst, good, len, 0, 0));

	ASSERT_EQ(0, write_param("ns_identity", "N"));
	EXPECT_EQ(0, load_mutated(_metadata, dst, good, len, ns + NS_NGUID, 1));
	EXPECT_EQ(0, load_mutated(_metadata, dst, good, len, ns + NS_UUID, 0x80));
	EXPECT_EQ(0, load_mutated(_metadata, dst, good, len, ns + NS_NGUID + 20, 2));
	EXPECT_EQ(-EREMOTEIO, load_mutated(_metadata, dst, good, len, ns + NS_NSZE, 1));
	EXPECT_EQ(-EREMOTEIO, load_mutated(_metadata, dst, good, len, ns + 4, 1));
	ASSERT_EQ(0, write_param("ns_identity", "Y"));
	EXPECT_EQ(-EREMOTEIO, load_mutated(_metadata, dst, good, len, ns + NS_NGUID, 1));
	free(good);
}

/*
 * A VF that already loaded a state (it has the source's I/O queues) takes
 * a second one: STOP -> RESUMING resets the controller first.
 * RESUMING -> STOP -> RESUMING -> STOP -> RUNNING, then the VF works.
 */
TEST_F(mig, second_load)
{
	struct vnl_dev *src = &self->dev[0], *dst = &self->dev[1];
	uint8_t *stream;
	size_t len;

	ASSERT_EQ(0, vnl_ctrl_enable(&self->ctrl[0], src, 16)) TH_LOG("%s", vnl_err);
	ASSERT_EQ(0, vnl_create_ioq(&self->ctrl[0], 1, 8, false, 0));
	ASSERT_EQ(0, set_state(_metadata, src, S_STOP, NULL));
	ASSERT_EQ(0, save(_metadata, src, &stream, &len));
	ASSERT_EQ(0, set_state(_metadata, src, S_RUNNING, NULL));

	ASSERT_EQ(0, set_state(_metadata, dst, S_STOP, NULL));
	EXPECT_EQ(0, load(dst, stream, len, 4096));
	EXPECT_EQ(S_STOP, vnl_mig_get_state(dst));
	EXPECT_EQ(0, load(dst, stream, len, 4096));
	EXPECT_EQ(S_STOP, vnl_mig_get_state(dst));
	ASSERT_EQ(0, set_state(_metadata, dst, S_RUNNING, NULL));
	ASSERT_EQ(0, vnl_dev_reset(dst));
	ASSERT_EQ(0, vnl_ctrl_enable(&self->ctrl[1], dst, 16)) TH_LOG("%s", vnl_err);
	free(stream);
}

/*
 * Closing the device in STOP resumes the VF, also when the core cannot
 * reset it (here: every reset method disabled through sysfs): the next
 * user finds a controller that runs.
 */
TEST_F(mig, close_in_stop_resumes)
{
	struct vnl_dev *d = &self->dev[0];
	struct vnl_ctrl *c = &self->ctrl[0];
	uint64_t iova;
	void *data;

	ASSERT_EQ(0, vnl_ctrl_enable(c, d, 16)) TH_LOG("%s", vnl_err);
	ASSERT_EQ(0, set_state(_metadata, d, S_STOP, NULL));
	ASSERT_EQ(1, vf_suspended(&self->rig, 0));
	ASSERT_EQ(0, vnl_sysfs_write(self->rig.bdf[0], "reset_method", "\n"))
		TH_LOG("%s", vnl_err);
	vnl_dev_close(d);
	EXPECT_EQ(0, vf_suspended(&self->rig, 0));
	ASSERT_EQ(0, vnl_sysfs_write(self->rig.bdf[0], "reset_method", "default"))
		TH_LOG("%s", vnl_err);

	ASSERT_EQ(0, vnl_dev_open(d, self->rig.bdf[0], VNL_IOMMUFD, IOVA_A, ARENA_SIZE))
		TH_LOG("%s", vnl_err);
	ASSERT_EQ(0, io_setup(c, d, &data, &iova)) TH_LOG("%s", vnl_err);
	EXPECT_EQ(0, io_roundtrip(c, data, iova, 530, 9));
}

/*
 * The id table matches every NVMe function: a PF bound to nvme-vfio-pci
 * works as with vfio-pci, SR-IOV configuration included (with the driver's
 * enable_sriov, as vfio-pci's).  The rig's second PF is moved from
 * vfio-pci to nvme-vfio-pci, creates a VF, and goes back.
 */
TEST(pf_bound_to_driver_creates_vf)
{
	char vf[32], pf[32], drv[PATH_MAX], path[PATH_MAX];
	int vfn, ret;
	ssize_t n;

	ASSERT_EQ(0, vnl_vf_of_vfio_pf(vf, sizeof(vf)))
		TH_LOG("no VF of an NVMe PF on vfio-pci (the rig's second PF)");
	ASSERT_EQ(0, vnl_pf_of_vf(vf, pf, sizeof(pf), &vfn)) TH_LOG("%s", vnl_err);
	ASSERT_EQ(0, vnl_sysfs_write(pf, "sriov_numvfs", "0")) TH_LOG("%s", vnl_err);
	ASSERT_EQ(0, vnl_sysfs_write(pf, "driver/unbind", pf)) TH_LOG("%s", vnl_err);
	ASSERT_EQ(0, vnl_sysfs_write(pf, "driver_override", DRIVER));
	ASSERT_EQ(0, vnl_probe_driver(pf));
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/driver", pf);
	n = readlink(path, drv, sizeof(drv) - 1);
	ASSERT_LT(0, n) TH_LOG("%s: not bound", pf);
	drv[n] = 0;
	EXPECT_NE(NULL, strstr(drv, DRIVER));

	ASSERT_EQ(0, write_param("enable_sriov", "Y"));
	ret = vnl_sysfs_write(pf, "sriov_numvfs", "1");
	EXPECT_EQ(0, ret) TH_LOG("%s", vnl_err);
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/virtfn0", pf);
	EXPECT_EQ(0, access(path, F_OK)) TH_LOG("%s: no VF created", pf);

	/* back to vfio-pci with one VF, as the rig set it up */
	EXPECT_EQ(0, vnl_sysfs_write(pf, "sriov_numvfs", "0"));
	EXPECT_EQ(0, write_param("enable_sriov", "N"));
	EXPECT_EQ(0, vnl_sysfs_write(pf, "driver/unbind", pf));
	EXPECT_EQ(0, vnl_sysfs_write(pf, "driver_override", "vfio-pci"));
	EXPECT_EQ(0, vnl_probe_driver(pf));
	EXPECT_EQ(0, vnl_sysfs_write(pf, "sriov_numvfs", "1")) TH_LOG("%s", vnl_err);
	EXPECT_EQ(0, access(path, F_OK));
}

struct held_arc {
	struct vnl_dev *d;
	uint32_t state;
	atomic_int done;
	int ret;
};

static void *held_arc_fn(void *arg)
{
	struct held_arc *h = arg;

	h->ret = vnl_mig_set_state(h->d, h->state, NULL);
	atomic_store(&h->done, 1);
	return NULL;
}

/*
 * Lifetime per controller: removing one PF never waits for another PF's VF
 * commands.  The rig's second PF is bound to nvme with a VF; VF1 (of the
 * first PF) has a Suspend held by the device (4 s times VNL_TIMEOUT_SCALE:
 * the unbind alone took over 4 s on the debug kernel; nvme-pci's Suspend
 * timeout raised to match); unbinding nvme from the second PF returns
 * while that Suspend is still in flight, and the Suspend then completes.
 * The second PF goes back to vfio-pci with its VF.
 */
TEST_F(mig, pf_removal_does_not_wait_for_other_pf)
{
	struct held_arc h = { .d = &self->dev[0], .state = S_RUNNING_P2P };
	char vf[32], pf[32], path[PATH_MAX], timeout[16], hold[16];
	pthread_t thread;
	int vfn, unbound, done_at_unbind;

	ASSERT_EQ(0, vnl_vf_of_vfio_pf(vf, sizeof(vf)))
		TH_LOG("no VF of an NVMe PF on vfio-pci (the rig's second PF)");
	ASSERT_EQ(0, vnl_pf_of_vf(vf, pf, sizeof(pf), &vfn)) TH_LOG("%s", vnl_err);

	/* the second PF on nvme, with one VF left without a driver */
	ASSERT_EQ(0, vnl_sysfs_write(pf, "sriov_numvfs", "0")) TH_LOG("%s", vnl_err);
	ASSERT_EQ(0, vnl_sysfs_write(pf, "driver/unbind", pf)) TH_LOG("%s", vnl_err);
	ASSERT_EQ(0, vnl_sysfs_write(pf, "driver_override", "nvme"));
	ASSERT_EQ(0, vnl_probe_driver(pf));
	ASSERT_EQ(0, vnl_wait_nvme_live(pf)) TH_LOG("%s: nvme did not come up", pf);
	ASSERT_EQ(0, vnl_sysfs_write(pf, "sriov_drivers_autoprobe", "0"));
	ASSERT_EQ(0, vnl_sysfs_write(pf, "sriov_numvfs", "1")) TH_LOG("%s", vnl_err);

	/* nvme-pci must not time the held Suspend out (the teardown sets 5 s back) */
	snprintf(timeout, sizeof(timeout), "%ld",
		 vnl_timeout_scale() > 6 ? 60000 : 9000 * vnl_timeout_scale());
	ASSERT_EQ(0, vnl_write_file(NVME_PARAMS "lm_suspend_timeout_ms", timeout));
	snprintf(hold, sizeof(hold), "%ld", 4000 * vnl_timeout_scale());
	ASSERT_EQ(0, vnl_qom_set("nvme0", "lm-suspend-delay", hold)) TH_LOG("%s", vnl_err);
	ASSERT_EQ(0, pthread_create(&thread, NULL, held_arc_fn, &h));
	usleep(500000);
	EXPECT_EQ(0, atomic_load(&h.done)) TH_LOG("the Suspend was not held");
	unbound = vnl_write_file("/sys/bus/pci/drivers/nvme/unbind", pf);
	done_at_unbind = atomic_load(&h.done);
	pthread_join(thread, NULL);
	vnl_qom_set("nvme0", "lm-suspend-delay", "0");

	EXPECT_EQ(0, unbound) TH_LOG("%s", vnl_err);
	EXPECT_EQ(0, done_at_unbind)
		TH_LOG("removing %s waited for the other PF's VF's Suspend", pf);
	EXPECT_EQ(0, h.ret) TH_LOG("the held Suspend: %s", strerror(-h.ret));
	EXPECT_EQ(S_RUNNING_P2P, vnl_mig_get_state(h.d));
	EXPECT_EQ(0, set_state(_metadata, h.d, S_RUNNING, NULL));
	/* SR-IOV went with nvme */
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/virtfn0", pf);
	EXPECT_NE(0, access(path, F_OK)) TH_LOG("%s: VF left after unbind", pf);

	/* back to vfio-pci with one VF, as the rig set it up */
	EXPECT_EQ(0, vnl_sysfs_write(pf, "driver_override", "vfio-pci"));
	EXPECT_EQ(0, vnl_probe_driver(pf));
	EXPECT_EQ(0, vnl_sysfs_write(pf, "sriov_drivers_autoprobe", "1"));
	EXPECT_EQ(0, vnl_sysfs_write(pf, "sriov_numvfs", "1")) TH_LOG("%s", vnl_err);
	EXPECT_EQ(0, access(path, F_OK));
}

/*
 * A file's buffers go when the file is disabled (the device left the
 * state), not when the user closes it: the fd stays open here.
 */
TEST_F(mig, disabled_file_frees_buffers)
{
	struct vnl_dev *d = &self->dev[0];
	const char *bdf = self->rig.bdf[0];
	uint8_t buf[16];
	int fd;

	ASSERT_EQ(0, vnl_debugfs_stat(bdf, "files_holding_buffers"));
	ASSERT_EQ(0, set_state(_metadata, d, S_STOP_COPY, &fd));
	self->fd[0] = fd;
	ASSERT_EQ(10, read(fd, buf, 10));
	EXPECT_EQ(1, vnl_debugfs_stat(bdf, "files_holding_buffers"));
	ASSERT_EQ(0, set_state(_metadata, d, S_STOP, NULL));
	EXPECT_EQ(0, vnl_debugfs_stat(bdf, "files_holding_buffers"));
	EXPECT_EQ(-1, read(fd, buf, 1));
	EXPECT_EQ(ENODEV, errno);

	ASSERT_EQ(0, set_state(_metadata, d, S_RESUMING, &fd));
	self->fd[1] = fd;
	ASSERT_EQ(4, write(fd, "NVME", 4));
	EXPECT_EQ(1, vnl_debugfs_stat(bdf, "files_holding_buffers"));
	ASSERT_EQ(0, vnl_dev_reset(d));
	EXPECT_EQ(0, vnl_debugfs_stat(bdf, "files_holding_buffers"));
	EXPECT_EQ(-1, write(fd, "V", 1));
	EXPECT_EQ(ENODEV, errno);
}

/* the kernel log has a line with both @a and @b */
static bool kmsg_has(const char *a, const char *b)
{
	char rec[1024];
	bool found = false;
	ssize_t n;
	int fd;

	fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK);
	if (fd < 0)
		return false;
	while ((n = read(fd, rec, sizeof(rec) - 1)) > 0 || (n < 0 && errno == EPIPE)) {
		if (n <= 0)
			continue;
		rec[n] = 0;
		if (strstr(rec, a) && strstr(rec, b))
			found = true;
	}
	close(fd);
	return found;
}

/* Namespace Attachment (15h) of NSIDs @first..@last to controller @cntlid */
static int ns_attach(int pffd, uint16_t cntlid, uint32_t first, uint32_t last,
		     bool attach)
{
	uint16_t list[2048] = { 1, cntlid };
	uint32_t cdw[6] = { attach ? 0 : 1 };
	uint32_t nsid;
	int ret;

	for (nsid = first; nsid <= last; nsid++) {
		ret = vnl_pf_cmd(pffd, 0x15, nsid, cdw, list, sizeof(list), NULL);
		if (ret)
			return ret;
	}
	return 0;
}

static int rebind(const char *bdf)
{
	vnl_sysfs_write(bdf, "driver/unbind", bdf);
	return vnl_probe_driver(bdf);
}

/*
 * Everything migration needs is checked at probe: a VF with more
 * namespaces attached than a stream carries (64) binds without migration
 * and says why in one log line; with them detached it migrates again.
 */
TEST(too_many_namespaces_binds_without_migration)
{
	struct vnl_rig rig;
	struct vnl_dev d = { .device_fd = -1 };
	uint64_t flags;

	ASSERT_EQ(0, vnl_rig_open(&rig, DRIVER)) TH_LOG("%s", vnl_err);
	/* NSIDs 2..66: the rig's detached namespaces (run-vm.sh) */
	ASSERT_EQ(0, ns_attach(rig.pffd, rig.scid[0], 2, 66, true))
		TH_LOG("Namespace Attachment: %s", vnl_err);
	ASSERT_EQ(0, rebind(rig.bdf[0]));
	ASSERT_EQ(0, vnl_dev_open(&d, rig.bdf[0], VNL_IOMMUFD, IOVA_A, ARENA_SIZE))
		TH_LOG("%s", vnl_err);
	EXPECT_EQ(-ENOTTY, vnl_mig_flags(&d, &flags));
	EXPECT_TRUE(kmsg_has(rig.bdf[0], "live migration not supported: more namespaces"));
	vnl_dev_close(&d);

	EXPECT_EQ(0, ns_attach(rig.pffd, rig.scid[0], 2, 66, false));
	ASSERT_EQ(0, rebind(rig.bdf[0]));
	ASSERT_EQ(0, vnl_dev_open(&d, rig.bdf[0], VNL_IOMMUFD, IOVA_A, ARENA_SIZE))
		TH_LOG("%s", vnl_err);
	EXPECT_EQ(0, vnl_mig_flags(&d, &flags));
	vnl_dev_close(&d);
	vnl_rig_close(&rig);
}

/* Identify CNS 02h (active NSIDs) of a freshly enabled VF: is NSID 1 there? */
static int vf_has_nsid1(const char *bdf)
{
	struct vnl_dev d = { .device_fd = -1 };
	struct vnl_ctrl c = {};
	uint32_t list[1024];
	int ret;

	ret = vnl_dev_open(&d, bdf, VNL_IOMMUFD, IOVA_A, ARENA_SIZE);
	if (!ret)
		ret = vnl_ctrl_enable(&c, &d, 16);
	if (!ret)
		ret = vnl_identify(&c, 0x02, 0, 0, list);
	vnl_dev_close(&d);
	return ret ? ret : list[0] == 1;
}

/*
 * Namespace attachment is the subsystem's, not a side effect of CC.EN: a
 * namespace detached from a VF stays detached when the VF's controller is
 * enabled, and comes back only with Namespace Attachment.  (The rig's model
 * used to attach shared namespaces on every CC.EN, so a destination VF that
 * was never enabled had none.)
 */
TEST(namespace_attachment_is_persistent)
{
	struct vnl_rig rig;

	ASSERT_EQ(0, vnl_rig_open(&rig, DRIVER)) TH_LOG("%s", vnl_err);
	ASSERT_EQ(1, vf_has_nsid1(rig.bdf[1])) TH_LOG("%s", vnl_err);
	ASSERT_EQ(0, ns_attach(rig.pffd, rig.scid[1], 1, 1, false))
		TH_LOG("Namespace Attachment: %s", vnl_err);
	EXPECT_EQ(0, vf_has_nsid1(rig.bdf[1]));
	EXPECT_EQ(0, vf_has_nsid1(rig.bdf[1]));
	ASSERT_EQ(0, ns_attach(rig.pffd, rig.scid[1], 1, 1, true))
		TH_LOG("Namespace Attachment: %s", vnl_err);
	EXPECT_EQ(1, vf_has_nsid1(rig.bdf[1]));
	vnl_rig_close(&rig);
}

VNL_HARNESS_MAIN
