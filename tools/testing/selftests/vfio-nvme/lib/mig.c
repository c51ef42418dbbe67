// SPDX-License-Identifier: GPL-2.0-only
/*
 * vnl: the VFIO migration uAPI v2 (device features MIGRATION,
 * MIG_DEVICE_STATE, MIG_DATA_SIZE; the data fd and PRECOPY_INFO).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/vfio.h>

#include "vnl.h"

int vnl_fail(const char *fmt, ...);

static int feature(struct vnl_dev *d, uint32_t flags, void *data, size_t len)
{
	uint8_t buf[sizeof(struct vfio_device_feature) + 64] = {};
	struct vfio_device_feature *f = (void *)buf;

	if (len > 64)
		return -EINVAL;
	f->argsz = sizeof(*f) + len;
	f->flags = flags;
	memcpy(f->data, data, len);
	if (ioctl(d->device_fd, VFIO_DEVICE_FEATURE, f))
		return -errno;
	memcpy(data, f->data, len);
	return 0;
}

/**
 * vnl_mig_flags() - the device's VFIO_MIGRATION_* flags
 * @d: device
 * @flags: returns them
 *
 * Return: 0 or negative errno (-ENOTTY: no migration).
 */
int vnl_mig_flags(struct vnl_dev *d, uint64_t *flags)
{
	struct vfio_device_feature_migration m = {};
	int ret = feature(d, VFIO_DEVICE_FEATURE_GET |
			  VFIO_DEVICE_FEATURE_MIGRATION, &m, sizeof(m));

	*flags = m.flags;
	return ret;
}

/**
 * vnl_mig_set_state() - VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE SET
 * @d: device
 * @state: VFIO_DEVICE_STATE_*
 * @data_fd: returns the new data fd, or -1; may be NULL (then closed)
 *
 * Return: 0 or negative errno.
 */
int vnl_mig_set_state(struct vnl_dev *d, uint32_t state, int *data_fd)
{
	struct vfio_device_feature_mig_state s = { .device_state = state,
						   .data_fd = -1 };
	int ret = feature(d, VFIO_DEVICE_FEATURE_SET |
			  VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE, &s, sizeof(s));

	if (ret)
		s.data_fd = -1;
	if (data_fd)
		*data_fd = s.data_fd;
	else if (s.data_fd >= 0)
		close(s.data_fd);
	return ret;
}

/**
 * vnl_mig_get_state() - VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE GET
 * @d: device
 *
 * Return: the state (>= 0) or negative errno.
 */
int vnl_mig_get_state(struct vnl_dev *d)
{
	struct vfio_device_feature_mig_state s = {};
	int ret = feature(d, VFIO_DEVICE_FEATURE_GET |
			  VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE, &s, sizeof(s));

	return ret ? ret : (int)s.device_state;
}

/**
 * vnl_mig_data_size() - VFIO_DEVICE_FEATURE_MIG_DATA_SIZE
 * @d: device
 * @size: returns stop_copy_length
 *
 * Return: 0 or negative errno.
 */
int vnl_mig_data_size(struct vnl_dev *d, uint64_t *size)
{
	struct vfio_device_feature_mig_data_size s = {};
	int ret = feature(d, VFIO_DEVICE_FEATURE_GET |
			  VFIO_DEVICE_FEATURE_MIG_DATA_SIZE, &s, sizeof(s));

	*size = s.stop_copy_length;
	return ret;
}

/**
 * vnl_mig_precopy_info() - VFIO_MIG_GET_PRECOPY_INFO on a save fd
 * @fd: data fd
 * @initial: returns initial_bytes
 * @dirty: returns dirty_bytes
 * @flags: returns the output flags
 *
 * Return: 0 or negative errno.
 */
int vnl_mig_precopy_info(int fd, uint64_t *initial, uint64_t *dirty,
			 uint32_t *flags)
{
	struct vfio_precopy_info info = { .argsz = sizeof(info) };

	if (ioctl(fd, VFIO_MIG_GET_PRECOPY_INFO, &info))
		return -errno;
	*initial = info.initial_bytes;
	*dirty = info.dirty_bytes;
	*flags = info.flags;
	return 0;
}

/**
 * vnl_mig_read() - read a data fd until end of data, in @piece chunks
 * @fd: data fd
 * @buf: output; grown with realloc (may start NULL)
 * @len: bytes in @buf, updated
 * @piece: bytes per read()
 *
 * Return: 0 at end of stream (read returned 0), -ENOMSG at the end of the
 * precopy data, or another negative errno.
 */
int vnl_mig_read(int fd, uint8_t **buf, size_t *len, size_t piece)
{
	uint8_t *p;
	ssize_t n;

	for (;;) {
		p = realloc(*buf, *len + piece);
		if (!p)
			return -ENOMEM;
		*buf = p;
		n = read(fd, p + *len, piece);
		if (n < 0)
			return -errno;
		if (n == 0)
			return 0;
		*len += n;
	}
}

/**
 * vnl_mig_write() - write a stream to a resume fd in @piece chunks
 * @fd: data fd
 * @buf: the stream
 * @len: its length
 * @piece: bytes per write()
 *
 * Return: 0 or the negative errno of the first failing write.
 */
int vnl_mig_write(int fd, const uint8_t *buf, size_t len, size_t piece)
{
	size_t off = 0, n;
	ssize_t w;

	while (off < len) {
		n = len - off < piece ? len - off : piece;
		w = write(fd, buf + off, n);
		if (w < 0)
			return -errno;
		if (w == 0)
			return -EIO;
		off += w;
	}
	return 0;
}

/* ---- DMA logging (VFIO_DEVICE_FEATURE_DMA_LOGGING_*) ---- */

/**
 * vnl_dma_log_start() - start device DMA logging
 * @d: device
 * @page_size: in: the page size asked for; out: the one the device uses
 * @ranges: IOVA ranges to log
 * @n: their number
 *
 * Return: 0 or negative errno.
 */
int vnl_dma_log_start(struct vnl_dev *d, uint64_t *page_size,
		      const struct vnl_range *ranges, uint32_t n)
{
	struct vfio_device_feature_dma_logging_range *r;
	struct vfio_device_feature_dma_logging_control c = {
		.page_size = *page_size,
		.num_ranges = n,
	};
	uint32_t i;
	int ret;

	r = calloc(n ? n : 1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		r[i].iova = ranges[i].addr;
		r[i].length = ranges[i].len;
	}
	c.ranges = (uintptr_t)r;
	ret = feature(d, VFIO_DEVICE_FEATURE_SET |
		      VFIO_DEVICE_FEATURE_DMA_LOGGING_START, &c, sizeof(c));
	free(r);
	if (!ret)
		*page_size = c.page_size;
	return ret;
}

/**
 * vnl_dma_log_stop() - stop device DMA logging
 * @d: device
 *
 * Return: 0 or negative errno.
 */
int vnl_dma_log_stop(struct vnl_dev *d)
{
	uint8_t none = 0;

	return feature(d, VFIO_DEVICE_FEATURE_SET |
		       VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP, &none, 0);
}

/**
 * vnl_dma_log_report() - read and clear the dirty pages of a window
 * @d: device
 * @iova: start of the window
 * @len: its length
 * @page_size: one bit per page of this size
 * @bitmap: the bits, (len / page_size + 63) / 64 words, zeroed here
 *
 * Return: 0 or negative errno.
 */
int vnl_dma_log_report(struct vnl_dev *d, uint64_t iova, uint64_t len,
		       uint64_t page_size, uint64_t *bitmap)
{
	struct vfio_device_feature_dma_logging_report r = {
		.iova = iova,
		.length = len,
		.page_size = page_size,
		.bitmap = (uintptr_t)bitmap,
	};

	memset(bitmap, 0, (len / page_size + 63) / 64 * 8);
	return feature(d, VFIO_DEVICE_FEATURE_GET |
		       VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT, &r, sizeof(r));
}
