// SPDX-License-Identifier: GPL-2.0-only
/*
 * vnl: VFIO side — open a PCI function through iommufd or a legacy
 * container, access config space and BAR0, map DMA memory, wire MSI-X
 * vectors to eventfds.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <stddef.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/iommufd.h>
#include <linux/vfio.h>

#include "vnl.h"

__thread char vnl_err[256];

int vnl_fail(const char *fmt, ...)
{
	int err = errno ? errno : EIO;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(vnl_err, sizeof(vnl_err), fmt, ap);
	va_end(ap);
	return -err;
}

static void vnl_dev_reset_fds(struct vnl_dev *d)
{
	int i;

	d->device_fd = -1;
	d->iommufd = -1;
	d->container_fd = -1;
	d->group_fd = -1;
	for (i = 0; i < VNL_MAX_IRQS; i++)
		d->irq_fds[i] = -1;
}

static int sysfs_link_base(const char *bdf, const char *link, char *out,
			   size_t len)
{
	char path[PATH_MAX], target[PATH_MAX];
	ssize_t n;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/%s", bdf, link);
	n = readlink(path, target, sizeof(target) - 1);
	if (n < 0)
		return -errno;
	target[n] = 0;
	snprintf(out, len, "%s", basename(target));
	return 0;
}

/*
 * struct vfio_device_bind_iommufd with the VF token of newer kernels
 * (VFIO_DEVICE_BIND_FLAG_TOKEN): the uapi ABI, spelled out so the tests
 * build against older uapi headers too.  A kernel without it refuses the
 * flag with EINVAL.
 */
struct vnl_bind_iommufd {
	uint32_t argsz;
	uint32_t flags;
	int32_t iommufd;
	uint32_t out_devid;
	uint64_t token_uuid_ptr;	/* offset 16: naturally 8-aligned */
};

#define VNL_BIND_FLAG_TOKEN	0x1u

static void uuid_str(const uint8_t u[16], char *out)
{
	int i, n = 0;

	for (i = 0; i < 16; i++)
		n += sprintf(out + n, "%s%02x",
			     i == 4 || i == 6 || i == 8 || i == 10 ? "-" : "",
			     u[i]);
}

static int open_cdev(struct vnl_dev *d)
{
	struct vnl_bind_iommufd bind = { .argsz = sizeof(bind) };
	struct vfio_device_attach_iommufd_pt attach = { .argsz = sizeof(attach) };
	struct iommu_ioas_alloc alloc = { .size = sizeof(alloc) };
	char path[PATH_MAX], name[64];
	struct dirent *de;
	DIR *dir;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/vfio-dev", d->bdf);
	dir = opendir(path);
	if (!dir)
		return vnl_fail("%s: no vfio-dev in sysfs", d->bdf);
	name[0] = 0;
	while ((de = readdir(dir)))
		if (!strncmp(de->d_name, "vfio", 4))
			snprintf(name, sizeof(name), "%.63s", de->d_name);
	closedir(dir);
	if (!name[0]) {
		errno = ENOENT;
		return vnl_fail("%s: no vfio cdev", d->bdf);
	}
	snprintf(path, sizeof(path), "/dev/vfio/devices/%s", name);
	d->device_fd = open(path, O_RDWR);
	if (d->device_fd < 0)
		return vnl_fail("open %s", path);
	d->iommufd = open("/dev/iommu", O_RDWR);
	if (d->iommufd < 0)
		return vnl_fail("open /dev/iommu");
	bind.iommufd = d->iommufd;
	if (d->vf_token) {
		bind.flags |= VNL_BIND_FLAG_TOKEN;
		bind.token_uuid_ptr = (uintptr_t)d->vf_token;
	} else {
		/* the size of the call without the token, as QEMU makes it */
		bind.argsz = offsetof(struct vnl_bind_iommufd, token_uuid_ptr);
	}
	if (ioctl(d->device_fd, VFIO_DEVICE_BIND_IOMMUFD, &bind))
		return vnl_fail("VFIO_DEVICE_BIND_IOMMUFD%s",
				d->vf_token ? " with a VF token" : "");
	d->devid = bind.out_devid;
	if (ioctl(d->iommufd, IOMMU_IOAS_ALLOC, &alloc))
		return vnl_fail("IOMMU_IOAS_ALLOC");
	d->ioas_id = alloc.out_ioas_id;
	attach.pt_id = d->ioas_id;
	if (ioctl(d->device_fd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &attach))
		return vnl_fail("VFIO_DEVICE_ATTACH_IOMMUFD_PT");
	return 0;
}

static int open_group(struct vnl_dev *d)
{
	struct vfio_group_status st = { .argsz = sizeof(st) };
	char path[PATH_MAX], group[64];
	int ret;

	ret = sysfs_link_base(d->bdf, "iommu_group", group, sizeof(group));
	if (ret) {
		errno = -ret;
		return vnl_fail("%s: no iommu_group", d->bdf);
	}
	snprintf(path, sizeof(path), "/dev/vfio/%s", group);
	d->group_fd = open(path, O_RDWR);
	if (d->group_fd < 0)
		return vnl_fail("open %s", path);
	if (ioctl(d->group_fd, VFIO_GROUP_GET_STATUS, &st))
		return vnl_fail("VFIO_GROUP_GET_STATUS");
	if (!(st.flags & VFIO_GROUP_FLAGS_VIABLE)) {
		errno = EBUSY;
		return vnl_fail("group %s not viable", group);
	}
	d->container_fd = open("/dev/vfio/vfio", O_RDWR);
	if (d->container_fd < 0)
		return vnl_fail("open /dev/vfio/vfio");
	if (ioctl(d->container_fd, VFIO_GET_API_VERSION) != VFIO_API_VERSION) {
		errno = EINVAL;
		return vnl_fail("VFIO API version");
	}
	if (ioctl(d->group_fd, VFIO_GROUP_SET_CONTAINER, &d->container_fd))
		return vnl_fail("VFIO_GROUP_SET_CONTAINER");
	if (ioctl(d->container_fd, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU))
		return vnl_fail("VFIO_SET_IOMMU type1v2");
	if (d->vf_token) {
		char name[96], u[40];

		uuid_str(d->vf_token, u);
		snprintf(name, sizeof(name), "%s vf_token=%s", d->bdf, u);
		d->device_fd = ioctl(d->group_fd, VFIO_GROUP_GET_DEVICE_FD, name);
	} else {
		d->device_fd = ioctl(d->group_fd, VFIO_GROUP_GET_DEVICE_FD,
				     d->bdf);
	}
	if (d->device_fd < 0)
		return vnl_fail("VFIO_GROUP_GET_DEVICE_FD %s%s", d->bdf,
				d->vf_token ? " with a VF token" : "");
	return 0;
}

static int dma_map(struct vnl_dev *d, void *va, uint64_t iova, size_t size)
{
	if (d->mode == VNL_IOMMUFD) {
		struct iommu_ioas_map map = {
			.size = sizeof(map),
			.flags = IOMMU_IOAS_MAP_FIXED_IOVA |
				 IOMMU_IOAS_MAP_READABLE |
				 IOMMU_IOAS_MAP_WRITEABLE,
			.ioas_id = d->ioas_id,
			.user_va = (uintptr_t)va,
			.length = size,
			.iova = iova,
		};

		if (ioctl(d->iommufd, IOMMU_IOAS_MAP, &map))
			return vnl_fail("IOMMU_IOAS_MAP");
	} else {
		struct vfio_iommu_type1_dma_map map = {
			.argsz = sizeof(map),
			.flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
			.vaddr = (uintptr_t)va,
			.iova = iova,
			.size = size,
		};

		if (ioctl(d->container_fd, VFIO_IOMMU_MAP_DMA, &map))
			return vnl_fail("VFIO_IOMMU_MAP_DMA");
	}
	return 0;
}

static int region_offset(struct vnl_dev *d, unsigned int index,
			 uint64_t *off, uint64_t *size)
{
	struct vfio_region_info ri = { .argsz = sizeof(ri), .index = index };

	if (ioctl(d->device_fd, VFIO_DEVICE_GET_REGION_INFO, &ri))
		return vnl_fail("VFIO_DEVICE_GET_REGION_INFO %u", index);
	*off = ri.offset;
	if (size)
		*size = ri.size;
	return 0;
}

/**
 * vnl_dev_open() - open a PCI function through VFIO and map a DMA arena
 * @d: device to fill
 * @bdf: PCI address, e.g. "0000:01:00.1"
 * @mode: iommufd cdev or legacy container
 * @iova: IOVA of the arena
 * @dma_size: size of the arena (page multiple)
 *
 * Return: 0 or a negative errno (with vnl_err set); @d is closed on error.
 */
int vnl_dev_open(struct vnl_dev *d, const char *bdf, enum vnl_iommu_mode mode,
		 uint64_t iova, size_t dma_size)
{
	return vnl_dev_open_token(d, bdf, mode, NULL, iova, dma_size);
}

/**
 * vnl_dev_open_token() - vnl_dev_open() with a VF token
 * @d: device to fill
 * @bdf: PCI address of a VF
 * @mode: iommufd cdev (the token goes with VFIO_DEVICE_BIND_IOMMUFD) or
 *	legacy container (with VFIO_GROUP_GET_DEVICE_FD, "BDF vf_token=UUID")
 * @token: the UUID the PF's user set (VFIO_DEVICE_FEATURE_PCI_VF_TOKEN), or
 *	NULL for none
 * @iova: IOVA of the arena
 * @dma_size: size of the arena (page multiple)
 *
 * Return: 0 or a negative errno (with vnl_err set); @d is closed on error.
 */
int vnl_dev_open_token(struct vnl_dev *d, const char *bdf,
		       enum vnl_iommu_mode mode, const uint8_t token[16],
		       uint64_t iova, size_t dma_size)
{
	uint16_t cmd;
	int ret;

	memset(d, 0, sizeof(*d));
	vnl_dev_reset_fds(d);
	snprintf(d->bdf, sizeof(d->bdf), "%s", bdf);
	d->mode = mode;
	d->vf_token = token;
	errno = 0;

	ret = mode == VNL_IOMMUFD ? open_cdev(d) : open_group(d);
	if (ret)
		goto err;
	ret = region_offset(d, VFIO_PCI_CONFIG_REGION_INDEX, &d->cfg_off, NULL);
	if (ret)
		goto err;
	ret = region_offset(d, VFIO_PCI_BAR0_REGION_INDEX, &d->bar0_off,
			    &d->bar0_size);
	if (ret)
		goto err;

	d->dma_size = dma_size;
	d->dma_iova = iova;
	d->dma_va = mmap(NULL, dma_size, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (d->dma_va == MAP_FAILED) {
		d->dma_va = NULL;
		ret = vnl_fail("mmap DMA arena");
		goto err;
	}
	ret = dma_map(d, d->dma_va, d->dma_iova, d->dma_size);
	if (ret)
		goto err;

	/* memory space + bus master */
	ret = vnl_cfg_read(d, 0x04, &cmd, 2);
	if (ret)
		goto err;
	cmd |= 0x2 | 0x4;
	ret = vnl_cfg_write(d, 0x04, &cmd, 2);
	if (ret)
		goto err;
	return 0;
err:
	vnl_dev_close(d);
	return ret;
}

/**
 * vnl_dev_map_arena_of() - make another device's DMA arena reachable
 * @d: device
 * @src: device whose arena is mapped into @d's IOMMU domain, at the same
 *	IOVAs; it must stay open as long as @d uses the memory
 *
 * After this, queues and buffers set up for @src are valid for @d too: the
 * state of a controller can move from @src to @d.
 *
 * Return: 0 or negative errno.
 */
int vnl_dev_map_arena_of(struct vnl_dev *d, const struct vnl_dev *src)
{
	return dma_map(d, src->dma_va, src->dma_iova, src->dma_size);
}

/**
 * vnl_dev_reset() - VFIO_DEVICE_RESET (a function level reset)
 * @d: device
 *
 * Return: 0 or negative errno.
 */
int vnl_dev_reset(struct vnl_dev *d)
{
	if (ioctl(d->device_fd, VFIO_DEVICE_RESET))
		return vnl_fail("VFIO_DEVICE_RESET");
	return 0;
}

/**
 * vnl_dev_close() - release everything vnl_dev_open() and later calls took
 * @d: device
 */
void vnl_dev_close(struct vnl_dev *d)
{
	int i;

	if (d->nirqs && d->device_fd >= 0) {
		struct vfio_irq_set set = {
			.argsz = sizeof(set),
			.flags = VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER,
			.index = VFIO_PCI_MSIX_IRQ_INDEX,
		};

		ioctl(d->device_fd, VFIO_DEVICE_SET_IRQS, &set);
	}
	for (i = 0; i < VNL_MAX_IRQS; i++)
		if (d->irq_fds[i] >= 0)
			close(d->irq_fds[i]);
	if (d->device_fd >= 0)
		close(d->device_fd);
	if (d->group_fd >= 0)
		close(d->group_fd);
	if (d->container_fd >= 0)
		close(d->container_fd);
	if (d->iommufd >= 0)
		close(d->iommufd);
	if (d->dma_va)
		munmap(d->dma_va, d->dma_size);
	memset(d, 0, sizeof(*d));
	vnl_dev_reset_fds(d);
}

int vnl_cfg_read(struct vnl_dev *d, unsigned int off, void *buf, size_t len)
{
	if (pread(d->device_fd, buf, len, d->cfg_off + off) != (ssize_t)len)
		return vnl_fail("config read at %#x", off);
	return 0;
}

int vnl_cfg_write(struct vnl_dev *d, unsigned int off, const void *buf,
		  size_t len)
{
	if (pwrite(d->device_fd, buf, len, d->cfg_off + off) != (ssize_t)len)
		return vnl_fail("config write at %#x", off);
	return 0;
}

/**
 * vnl_cfg_find_cap() - find a standard PCI capability
 * @d: device
 * @cap_id: capability ID
 *
 * Return: its config space offset, 0 if absent, negative errno on error.
 */
int vnl_cfg_find_cap(struct vnl_dev *d, uint8_t cap_id)
{
	uint8_t pos, id, guard = 48;
	uint16_t status;

	if (vnl_cfg_read(d, 0x06, &status, 2))
		return -EIO;
	if (!(status & 0x10))
		return 0;
	if (vnl_cfg_read(d, 0x34, &pos, 1))
		return -EIO;
	while (pos >= 0x40 && guard--) {
		if (vnl_cfg_read(d, pos, &id, 1))
			return -EIO;
		if (id == cap_id)
			return pos;
		if (vnl_cfg_read(d, pos + 1, &pos, 1))
			return -EIO;
	}
	return 0;
}

uint32_t vnl_read32(struct vnl_dev *d, unsigned int off)
{
	uint32_t v = ~0u;

	if (pread(d->device_fd, &v, 4, d->bar0_off + off) != 4)
		return ~0u;
	return v;
}

uint64_t vnl_read64(struct vnl_dev *d, unsigned int off)
{
	return vnl_read32(d, off) | (uint64_t)vnl_read32(d, off + 4) << 32;
}

void vnl_write32(struct vnl_dev *d, unsigned int off, uint32_t v)
{
	if (pwrite(d->device_fd, &v, 4, d->bar0_off + off) != 4)
		fprintf(stderr, "vnl: %s: BAR0 write at %#x failed: %m\n",
			d->bdf, off);
}

void vnl_write64(struct vnl_dev *d, unsigned int off, uint64_t v)
{
	vnl_write32(d, off, (uint32_t)v);
	vnl_write32(d, off + 4, (uint32_t)(v >> 32));
}

/**
 * vnl_dma_alloc() - take zeroed, page-aligned memory from the DMA arena
 * @d: device
 * @size: bytes
 * @iova: returns the IOVA of the memory
 *
 * Return: the CPU address, or NULL when the arena is exhausted.
 */
void *vnl_dma_alloc(struct vnl_dev *d, size_t size, uint64_t *iova)
{
	size_t sz = (size + VNL_PAGE - 1) & ~(size_t)(VNL_PAGE - 1);
	void *p;

	if (d->dma_used + sz > d->dma_size) {
		errno = ENOMEM;
		vnl_fail("DMA arena exhausted");
		return NULL;
	}
	p = d->dma_va + d->dma_used;
	*iova = d->dma_iova + d->dma_used;
	d->dma_used += sz;
	memset(p, 0, sz);
	return p;
}

/**
 * vnl_msix_enable() - route the first @nvec MSI-X vectors to eventfds
 * @d: device
 * @nvec: number of vectors
 *
 * Return: 0 or negative errno.
 */
int vnl_msix_enable(struct vnl_dev *d, int nvec)
{
	struct vfio_irq_info info = {
		.argsz = sizeof(info), .index = VFIO_PCI_MSIX_IRQ_INDEX,
	};
	struct vfio_irq_set *set;
	size_t sz;
	int i, ret;

	if (nvec < 1 || nvec > VNL_MAX_IRQS) {
		errno = EINVAL;
		return vnl_fail("bad vector count %d", nvec);
	}
	if (ioctl(d->device_fd, VFIO_DEVICE_GET_IRQ_INFO, &info))
		return vnl_fail("VFIO_DEVICE_GET_IRQ_INFO");
	if (info.count < (unsigned int)nvec) {
		errno = ENOSPC;
		return vnl_fail("only %u MSI-X vectors", info.count);
	}
	sz = sizeof(*set) + nvec * sizeof(int);
	set = calloc(1, sz);
	if (!set)
		return -ENOMEM;
	set->argsz = sz;
	set->flags = VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER;
	set->index = VFIO_PCI_MSIX_IRQ_INDEX;
	set->start = 0;
	set->count = nvec;
	for (i = 0; i < nvec; i++) {
		d->irq_fds[i] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (d->irq_fds[i] < 0) {
			free(set);
			return vnl_fail("eventfd");
		}
		((int *)set->data)[i] = d->irq_fds[i];
	}
	ret = ioctl(d->device_fd, VFIO_DEVICE_SET_IRQS, set);
	free(set);
	if (ret)
		return vnl_fail("VFIO_DEVICE_SET_IRQS MSI-X");
	d->nirqs = nvec;
	return 0;
}

/**
 * vnl_irq_count() - wait for and consume interrupts on one vector
 * @d: device
 * @vec: vector
 * @timeout_ms: 0 to only drain what is pending
 *
 * Return: the number of interrupts signalled since the last call (0 if none
 * arrived in time), or a negative errno.
 */
int vnl_irq_count(struct vnl_dev *d, int vec, int timeout_ms)
{
	struct pollfd pfd = { .events = POLLIN };
	uint64_t cnt;
	int ret;

	if (vec < 0 || vec >= d->nirqs)
		return -EINVAL;
	pfd.fd = d->irq_fds[vec];
	ret = poll(&pfd, 1, timeout_ms);
	if (ret < 0)
		return -errno;
	if (ret == 0)
		return 0;
	if (read(pfd.fd, &cnt, sizeof(cnt)) != sizeof(cnt))
		return errno == EAGAIN ? 0 : -errno;
	return (int)cnt;
}

/**
 * vnl_vf_of_vfio_pf() - a VF of an NVMe PF bound to vfio-pci
 * @vf: filled with the VF's PCI address
 * @len: size of @vf
 *
 * The rig's second PF is bound to vfio-pci with one VF (vfio-pci's
 * sriov_configure, enable_sriov=1).
 *
 * Return: 0, or -ENOENT when there is none.
 */
int vnl_vf_of_vfio_pf(char *vf, size_t len)
{
	char bdfs[8][32];
	int i, n;

	n = vnl_vfs_bound_to("vfio-pci", bdfs, 8);
	for (i = 0; i < n; i++)
		if (!vnl_pf_vf_bdf(bdfs[i], 0, vf, len))
			return 0;
	errno = ENOENT;
	return -ENOENT;
}

/**
 * vnl_set_vf_token() - set the VF token of a PF bound to vfio-pci
 * @pf_bdf: the PF
 * @token: the UUID its VFs are opened with from now on
 *
 * Opens the PF through iommufd, sets the token
 * (VFIO_DEVICE_FEATURE_PCI_VF_TOKEN) and closes it again: the token stays.
 *
 * Return: 0 or negative errno.
 */
int vnl_set_vf_token(const char *pf_bdf, const uint8_t token[16])
{
	uint64_t buf[(sizeof(struct vfio_device_feature) + 16) / 8];
	struct vfio_device_feature *f = (void *)buf;
	struct vnl_dev pf;
	int ret;

	ret = vnl_dev_open(&pf, pf_bdf, VNL_IOMMUFD, 0x10000000ull, 4096);
	if (ret)
		return ret;
	f->argsz = sizeof(buf);
	f->flags = VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_PCI_VF_TOKEN;
	memcpy(f->data, token, 16);
	ret = ioctl(pf.device_fd, VFIO_DEVICE_FEATURE, f) ?
		vnl_fail("%s: VFIO_DEVICE_FEATURE_PCI_VF_TOKEN", pf_bdf) : 0;
	vnl_dev_close(&pf);
	return ret;
}

/**
 * vnl_bind() - bind a PCI function to a driver
 * @bdf: the function
 * @driver: the driver's name (driver_override)
 *
 * Return: 0 or negative errno.
 */
int vnl_bind(const char *bdf, const char *driver)
{
	int ret;

	vnl_sysfs_write(bdf, "driver/unbind", bdf);
	ret = vnl_sysfs_write(bdf, "driver_override", driver);
	return ret ? ret : vnl_probe_driver(bdf);
}
