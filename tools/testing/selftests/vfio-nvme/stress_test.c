// SPDX-License-Identifier: GPL-2.0-only
/*
 * vfio-nvme concurrency: threads hammer one VF, then two VFs of one PF at
 * once, for STRESS_SECONDS (default 10 times VNL_TIMEOUT_SCALE, and up to
 * 3 times as long again until every kind of call was made) each:
 * migration state changes,
 * reads and writes of the data fd, PRECOPY_INFO, MIG_DATA_SIZE, DMA
 * logging start/report/stop and VFIO_DEVICE_RESET, all racing.  Every call
 * must return 0 or an errno the uAPI documents for a call that lost a race
 * (never EFAULT, ENOMEM, ENOTTY, EBADF...), no thread may hang (the test
 * times out, the runner's watchdog dumps the tasks), and afterwards
 * VFIO_DEVICE_RESET brings RUNNING back with a working controller.  The
 * debug kernel (make check-debug) adds lockdep, KASAN and kmemleak.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <linux/vfio.h>

#include "kselftest_harness.h"
#include "lib/vnl.h"

#define DRIVER		"nvme_vfio_pci"
#define IOVA_A		0x10000000ull
#define IOVA_B		0x20000000ull
#define ARENA_SIZE	0x100000

enum op {
	OP_STATE, OP_READ, OP_WRITE, OP_PRECOPY_INFO, OP_DATA_SIZE,
	OP_LOG_START, OP_LOG_REPORT, OP_LOG_STOP, OP_RESET, OP_NUM,
};

static const char *const op_names[OP_NUM] = {
	"set state", "read", "write", "PRECOPY_INFO", "MIG_DATA_SIZE",
	"log start", "log report", "log stop", "reset",
};

static const char *op_name(unsigned int op)
{
	return op < OP_NUM && op_names[op] ? op_names[op] : "?";
}

/*
 * What a call may fail with when another thread changed the device under
 * it (Documentation/migration.rst, Errors): an arc refused from the
 * current state (EINVAL), a file of an earlier state (ENODEV), the end of
 * precopy data (ENOMSG), logging already on or a stop still pending
 * (EBUSY), a stream refused (EINVAL, E2BIG, ENOSPC, ENOEXEC, EPROTO...),
 * a report without logging (EINVAL) or after tracking was lost (EIO).
 * EIO, ECANCELED and ETIMEDOUT: a PF command failed, because a reset ran.
 * ENOMEM is not among them: the guest has the memory.
 */
static bool allowed(enum op op, int err)
{
	switch (err) {
	case EINVAL: case ENODEV: case EBUSY: case EIO: case ECANCELED:
		return true;
	case ENOMSG:
		return op == OP_READ || op == OP_PRECOPY_INFO;
	/* the stream errnos (Documentation/stream.rst) and PF statuses */
	case E2BIG: case ENOSPC: case ENOEXEC: case EPROTO: case EOPNOTSUPP:
	case EPROTONOSUPPORT: case EREMOTEIO: case EXDEV: case ENXIO:
		return op == OP_WRITE || op == OP_STATE;
	case ETIMEDOUT:
		return op != OP_READ && op != OP_WRITE;
	default:
		return false;
	}
}

struct vf_load {
	struct vnl_dev *d;
	pthread_mutex_t fd_lock;	/* the current data fd */
	int fd;
	unsigned long fd_gen;		/* counts the fds put there */
	const uint8_t *stream;		/* a good stream, for the writer */
	size_t stream_len;
	atomic_bool stop;
	atomic_ulong calls[OP_NUM];
	atomic_ulong fails[OP_NUM];
	atomic_int bad_op, bad_err;
	atomic_ulong bad;
};

static void account(struct vf_load *l, enum op op, int ret)
{
	atomic_fetch_add(&l->calls[op], 1);
	if (!ret)
		return;
	atomic_fetch_add(&l->fails[op], 1);
	if (!allowed(op, -ret)) {
		atomic_store(&l->bad_op, op);
		atomic_store(&l->bad_err, -ret);
		atomic_fetch_add(&l->bad, 1);
	}
}

/* a dup of the current data fd and its generation, or -1 */
static int take_fd(struct vf_load *l, unsigned long *gen)
{
	int fd;

	pthread_mutex_lock(&l->fd_lock);
	fd = l->fd >= 0 ? dup(l->fd) : -1;
	*gen = l->fd_gen;
	pthread_mutex_unlock(&l->fd_lock);
	return fd;
}

static void put_fd(struct vf_load *l, int fd)
{
	pthread_mutex_lock(&l->fd_lock);
	if (l->fd >= 0)
		close(l->fd);
	l->fd = fd;
	l->fd_gen++;
	pthread_mutex_unlock(&l->fd_lock);
}

/* the fd of generation @gen failed for good (ENODEV): forget it */
static void drop_fd(struct vf_load *l, unsigned long gen)
{
	pthread_mutex_lock(&l->fd_lock);
	if (l->fd_gen == gen && l->fd >= 0) {
		close(l->fd);
		l->fd = -1;
	}
	pthread_mutex_unlock(&l->fd_lock);
}

static unsigned int rnd(unsigned int *seed, unsigned int n)
{
	return rand_r(seed) % n;
}

static const uint32_t targets[] = {
	VFIO_DEVICE_STATE_RUNNING, VFIO_DEVICE_STATE_RUNNING_P2P,
	VFIO_DEVICE_STATE_STOP, VFIO_DEVICE_STATE_PRE_COPY,
	VFIO_DEVICE_STATE_PRE_COPY_P2P, VFIO_DEVICE_STATE_STOP_COPY,
	VFIO_DEVICE_STATE_RESUMING,
};

static void *state_thread(void *arg)
{
	struct vf_load *l = arg;
	unsigned int seed = (uintptr_t)l ^ 0x5eed;
	int fd, ret;

	while (!atomic_load(&l->stop)) {
		fd = -1;
		ret = vnl_mig_set_state(l->d, targets[rnd(&seed, 7)], &fd);
		account(l, OP_STATE, ret);
		if (fd >= 0)
			put_fd(l, fd);
		/* ERROR is left by a reset, as a VMM would */
		if (vnl_mig_get_state(l->d) == VFIO_DEVICE_STATE_ERROR)
			account(l, OP_RESET, vnl_dev_reset(l->d));
	}
	return NULL;
}

static void *fd_thread(void *arg)
{
	struct vf_load *l = arg;
	unsigned int seed = (uintptr_t)l ^ 0xfd;
	struct vfio_precopy_info info;
	unsigned long gen;
	uint8_t buf[4096];
	size_t off, n;
	ssize_t r;
	int fd;

	while (!atomic_load(&l->stop)) {
		r = 0;
		fd = take_fd(l, &gen);
		if (fd < 0) {
			usleep(1000);
			continue;
		}
		switch (fcntl(fd, F_GETFL) & O_ACCMODE) {
		case O_RDONLY:
			if (rnd(&seed, 4) == 0) {
				info = (struct vfio_precopy_info){
					.argsz = sizeof(info) };
				r = ioctl(fd, VFIO_MIG_GET_PRECOPY_INFO, &info);
				account(l, OP_PRECOPY_INFO, r < 0 ? -errno : 0);
				break;
			}
			r = read(fd, buf, 1 + rnd(&seed, sizeof(buf)));
			account(l, OP_READ, r < 0 ? -errno : 0);
			break;
		case O_WRONLY:
			/* a good stream in random pieces, or a bit of it */
			for (off = 0; off < l->stream_len; off += n) {
				n = 1 + rnd(&seed, 1024);
				if (n > l->stream_len - off)
					n = l->stream_len - off;
				r = write(fd, l->stream + off, n);
				account(l, OP_WRITE, r < 0 ? -errno : 0);
				if (r <= 0 || atomic_load(&l->stop) ||
				    !rnd(&seed, 8))
					break;
			}
			break;
		}
		if (r < 0 && errno == ENODEV)
			drop_fd(l, gen);
		close(fd);
	}
	return NULL;
}

static void *query_thread(void *arg)
{
	struct vf_load *l = arg;
	uint64_t size;

	while (!atomic_load(&l->stop)) {
		account(l, OP_DATA_SIZE, vnl_mig_data_size(l->d, &size));
		vnl_mig_get_state(l->d);
	}
	return NULL;
}

static void *log_thread(void *arg)
{
	static uint64_t maps[2][ARENA_SIZE / VNL_PAGE / 64];
	struct vf_load *l = arg;
	struct vnl_range r = { l->d->dma_iova, ARENA_SIZE };
	uint64_t *map = maps[l->d->dma_iova == IOVA_B];
	unsigned int seed = (uintptr_t)l ^ 0x109;
	uint64_t ps;

	while (!atomic_load(&l->stop)) {
		switch (rnd(&seed, 3)) {
		case 0:
			ps = VNL_PAGE;
			account(l, OP_LOG_START, vnl_dma_log_start(l->d, &ps, &r, 1));
			break;
		case 1:
			account(l, OP_LOG_REPORT,
				vnl_dma_log_report(l->d, r.addr, r.len, VNL_PAGE,
						   map));
			break;
		default:
			account(l, OP_LOG_STOP, vnl_dma_log_stop(l->d));
			break;
		}
	}
	return NULL;
}

static void *reset_thread(void *arg)
{
	struct vf_load *l = arg;
	unsigned int seed = (uintptr_t)l ^ 0x3e5e7;

	while (!atomic_load(&l->stop)) {
		usleep(20000 + rnd(&seed, 80000));
		account(l, OP_RESET, vnl_dev_reset(l->d));
	}
	return NULL;
}

static void *(*const workers[])(void *) = {
	state_thread, fd_thread, query_thread, log_thread, reset_thread,
};

#define NWORKERS	ARRAY_SIZE(workers)

FIXTURE(stress) {
	struct vnl_rig rig;
	struct vnl_dev dev[2];
	struct vnl_ctrl ctrl;
	uint8_t *stream;
	size_t stream_len;
};

FIXTURE_SETUP(stress)
{
	int i, fd;

	for (i = 0; i < 2; i++)
		self->dev[i].device_fd = -1;
	ASSERT_EQ(0, vnl_rig_open(&self->rig, DRIVER)) TH_LOG("%s", vnl_err);
	ASSERT_EQ(0, vnl_rig_open_vfs(&self->rig, self->dev, 2, ARENA_SIZE))
		TH_LOG("%s", vnl_err);
	/* a stream of VF1 (controller disabled), written by the fd threads */
	ASSERT_EQ(0, vnl_mig_set_state(&self->dev[0], VFIO_DEVICE_STATE_STOP_COPY,
				       &fd));
	ASSERT_EQ(0, vnl_mig_read(fd, &self->stream, &self->stream_len, 4096));
	close(fd);
	ASSERT_EQ(0, vnl_dev_reset(&self->dev[0]));
}

FIXTURE_TEARDOWN(stress)
{
	int i;

	for (i = 0; i < 2; i++)
		if (self->dev[i].device_fd >= 0) {
			vnl_dma_log_stop(&self->dev[i]);
			vnl_dev_close(&self->dev[i]);
		}
	free(self->stream);
	vnl_rig_close(&self->rig);
}

/* whether every kind of call was made on each of the @nvf VFs */
static bool every_call_made(struct vf_load *l, int nvf)
{
	unsigned int k;
	int v;

	for (v = 0; v < nvf; v++)
		for (k = 0; k < OP_NUM; k++)
			if (!atomic_load(&l[v].calls[k]))
				return false;
	return true;
}

static void hammer(struct __test_metadata *_metadata,
		   struct _test_data_stress *self, int nvf)
{
	const char *env = getenv("STRESS_SECONDS");
	int secs = env ? atoi(env) : 10 * vnl_timeout_scale();
	pthread_t th[2][NWORKERS];
	size_t used[2];
	struct vf_load *l;
	unsigned int i, k;
	int v, extra;

	if (secs < 1)
		secs = 1;
	l = calloc(nvf, sizeof(*l));
	ASSERT_NE(NULL, l);
	for (v = 0; v < nvf; v++) {
		used[v] = self->dev[v].dma_used;
		l[v].d = &self->dev[v];
		l[v].fd = -1;
		l[v].stream = self->stream;
		l[v].stream_len = self->stream_len;
		pthread_mutex_init(&l[v].fd_lock, NULL);
		for (i = 0; i < NWORKERS; i++)
			ASSERT_EQ(0, pthread_create(&th[v][i], NULL, workers[i],
						    &l[v]));
	}
	sleep(secs);
	/*
	 * A write needs the random schedule to have reached RESUMING: on a
	 * slow kernel some call may not have been made yet.  Up to three
	 * times as long again until every one was.
	 */
	for (extra = 0; extra < 3 * secs && !every_call_made(l, nvf); extra++)
		sleep(1);
	secs += extra;
	for (v = 0; v < nvf; v++)
		atomic_store(&l[v].stop, true);
	/* a thread stuck in the kernel: the test's timeout, and the watchdog */
	for (v = 0; v < nvf; v++)
		for (i = 0; i < NWORKERS; i++)
			pthread_join(th[v][i], NULL);

	for (v = 0; v < nvf; v++) {
		struct vnl_dev *d = &self->dev[v];

		TH_LOG("%s, %d s:", d->bdf, secs);
		for (k = 0; k < OP_NUM; k++)
			TH_LOG("  %-13s %6lu calls, %6lu failed", op_name(k),
			       atomic_load(&l[v].calls[k]),
			       atomic_load(&l[v].fails[k]));
		EXPECT_EQ(0, atomic_load(&l[v].bad))
			TH_LOG("%s: %lu calls failed with an errno no race explains; last %s: %s",
			       d->bdf, atomic_load(&l[v].bad),
			       op_name(atomic_load(&l[v].bad_op)),
			       strerror(atomic_load(&l[v].bad_err)));
		for (k = 0; k < OP_NUM; k++) {
			EXPECT_LT(0, atomic_load(&l[v].calls[k]))
				TH_LOG("%s: no %s call made", d->bdf, op_name(k));
		}
		if (l[v].fd >= 0)
			close(l[v].fd);
		/* the device recovers: RUNNING, a controller that works */
		vnl_dma_log_stop(d);
		ASSERT_EQ(0, vnl_dev_reset(d)) TH_LOG("%s", vnl_err);
		EXPECT_EQ(VFIO_DEVICE_STATE_RUNNING, vnl_mig_get_state(d));
		d->dma_used = used[v];
		ASSERT_EQ(0, vnl_ctrl_enable(&self->ctrl, d, 16))
			TH_LOG("%s: %s", d->bdf, vnl_err);
		ASSERT_EQ(0, vnl_identify(&self->ctrl, 0x01, 0, 0, NULL));
		vnl_ctrl_disable(&self->ctrl);
		pthread_mutex_destroy(&l[v].fd_lock);
	}
	free(l);
}

TEST_F_TIMEOUT(stress, one_vf, 600)
{
	hammer(_metadata, self, 1);
}

TEST_F_TIMEOUT(stress, two_vfs_of_one_pf, 600)
{
	hammer(_metadata, self, 2);
}

VNL_HARNESS_MAIN
