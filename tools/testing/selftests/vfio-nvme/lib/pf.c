// SPDX-License-Identifier: GPL-2.0-only
/*
 * vnl: PF side — find a VF's PF and VF number in sysfs, and send admin
 * commands to the PF through the nvme driver's passthrough ioctl.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/nvme_ioctl.h>

#include "vnl.h"

int vnl_fail(const char *fmt, ...);

static int link_base(const char *path, char *out, size_t len)
{
	char target[PATH_MAX];
	ssize_t n = readlink(path, target, sizeof(target) - 1);

	if (n < 0)
		return -errno;
	target[n] = 0;
	snprintf(out, len, "%s", basename(target));
	return 0;
}

/**
 * vnl_pf_of_vf() - PF address and 1-based VF number of a VF
 * @vf_bdf: the VF
 * @pf_bdf: returns the PF's address
 * @len: size of @pf_bdf
 * @vfn: returns the VF number (virtfnN + 1)
 *
 * Return: 0 or negative errno.
 */
int vnl_pf_of_vf(const char *vf_bdf, char *pf_bdf, size_t len, int *vfn)
{
	char path[PATH_MAX], name[64];
	int i;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/physfn", vf_bdf);
	if (link_base(path, pf_bdf, len))
		return vnl_fail("%s: not a VF", vf_bdf);
	for (i = 0; i < 256; i++) {
		snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/virtfn%d",
			 pf_bdf, i);
		if (link_base(path, name, sizeof(name)))
			break;
		if (!strcmp(name, vf_bdf)) {
			*vfn = i + 1;
			return 0;
		}
	}
	errno = ENOENT;
	return vnl_fail("%s: not listed by PF %s", vf_bdf, pf_bdf);
}

/**
 * vnl_pf_ctrl_name() - the nvme controller name (nvmeN) of a PF
 * @pf_bdf: the PF, bound to nvme
 * @out: returns the name
 * @len: size of @out
 *
 * Return: 0 or negative errno.
 */
int vnl_pf_ctrl_name(const char *pf_bdf, char *out, size_t len)
{
	char path[PATH_MAX];
	struct dirent *de;
	int ret = -ENOENT;
	DIR *dir;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/nvme", pf_bdf);
	dir = opendir(path);
	if (!dir)
		return vnl_fail("%s: not bound to nvme", pf_bdf);
	while ((de = readdir(dir))) {
		if (!strncmp(de->d_name, "nvme", 4)) {
			snprintf(out, len, "%.31s", de->d_name);
			ret = 0;
			break;
		}
	}
	closedir(dir);
	return ret;
}

/**
 * vnl_pf_open() - open the nvme character device of a PF
 * @pf_bdf: the PF, bound to nvme
 *
 * Return: file descriptor or negative errno.
 */
int vnl_pf_open(const char *pf_bdf)
{
	char name[32], path[PATH_MAX];
	int fd, ret;

	ret = vnl_pf_ctrl_name(pf_bdf, name, sizeof(name));
	if (ret)
		return ret;
	snprintf(path, sizeof(path), "/dev/%s", name);
	fd = open(path, O_RDWR);
	if (fd < 0)
		fd = vnl_fail("open %s", path);
	return fd;
}

/**
 * vnl_pf_admin() - one admin command through NVME_IOCTL_ADMIN_CMD
 * @fd: from vnl_pf_open()
 * @opc: opcode
 * @cdw10: CDW10
 * @cdw11: CDW11
 * @data: data buffer or NULL
 * @len: its length
 * @result: returns CQE DW0, may be NULL
 *
 * Return: 0, positive NVMe status (as the ioctl returns it), or negative errno.
 */
int vnl_pf_admin(int fd, uint8_t opc, uint32_t cdw10, uint32_t cdw11,
		 void *data, uint32_t len, uint32_t *result)
{
	struct nvme_admin_cmd cmd = {
		.opcode = opc,
		.addr = (uintptr_t)data,
		.data_len = len,
		.cdw10 = cdw10,
		.cdw11 = cdw11,
	};
	int ret = ioctl(fd, NVME_IOCTL_ADMIN_CMD, &cmd);

	if (ret < 0)
		return vnl_fail("admin opcode %#x", opc);
	if (result)
		*result = cmd.result;
	if (ret > 0)
		snprintf(vnl_err, sizeof(vnl_err),
			 "PF admin opcode %#x: status %#x", opc, ret);
	return ret;
}

/**
 * vnl_pf_scid() - Secondary Controller ID of a VF from Identify CNS 15h
 * @fd: PF, from vnl_pf_open()
 * @vfn: 1-based VF number
 * @scid: returns the SCID
 *
 * Return: 0 or negative errno / positive NVMe status.
 */
int vnl_pf_scid(int fd, int vfn, uint16_t *scid)
{
	uint8_t *buf = calloc(1, 4096), *e;
	int ret, i, n;

	if (!buf)
		return -ENOMEM;
	ret = vnl_pf_admin(fd, NVME_ADM_IDENTIFY, 0x15, 0, buf, 4096, NULL);
	if (ret)
		goto out;
	n = buf[0] > 127 ? 127 : buf[0];
	ret = -ENOENT;
	for (i = 0; i < n; i++) {
		e = buf + 32 + 32 * i;
		if ((e[8] | e[9] << 8) == vfn) {
			*scid = e[0] | e[1] << 8;
			ret = 0;
			break;
		}
	}
	if (ret)
		snprintf(vnl_err, sizeof(vnl_err), "VFN %d not in CNS 15h", vfn);
out:
	free(buf);
	return ret;
}

static int sysfs_write(const char *bdf, const char *attr, const char *val)
{
	char path[PATH_MAX];
	int fd, ret = 0;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/%s", bdf, attr);
	fd = open(path, O_WRONLY);
	if (fd < 0 || write(fd, val, strlen(val)) != (ssize_t)strlen(val))
		ret = vnl_fail("write '%s' to %s", val, path);
	if (fd >= 0)
		close(fd);
	return ret;
}

/**
 * vnl_pf_vf_bdf() - PCI address of the VF with index @vfidx (virtfnN)
 * @pf_bdf: the PF
 * @vfidx: 0-based VF index
 * @vf_bdf: returns the address
 * @len: size of @vf_bdf
 *
 * Return: 0 or negative errno.
 */
int vnl_pf_vf_bdf(const char *pf_bdf, int vfidx, char *vf_bdf, size_t len)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/virtfn%d",
		 pf_bdf, vfidx);
	if (link_base(path, vf_bdf, len))
		return vnl_fail("%s: no VF %d", pf_bdf, vfidx);
	return 0;
}

static int virt_mgmt(int fd, uint16_t cntlid, int act, int rt, int nr)
{
	int ret = vnl_pf_admin(fd, NVME_ADM_VIRT_MGMT,
			       (uint32_t)cntlid << 16 | rt << 8 | act, nr,
			       NULL, 0, NULL);

	if (ret)
		snprintf(vnl_err, sizeof(vnl_err),
			 "virt-mgmt cntlid %u act %d rt %d nr %d: %d", cntlid,
			 act, rt, nr, ret);
	return ret;
}

/**
 * vnl_pf_vf_online() - bring a VF's secondary controller online
 * @fd: PF, from vnl_pf_open()
 * @pf_bdf: the PF's address
 * @vfidx: 0-based VF index (VFN = @vfidx + 1)
 * @nvq: VQ resources to assign (admin + I/O queue pairs)
 * @nvi: VI resources (interrupt vectors) to assign
 * @scid: returns the VF's SCID, may be NULL
 *
 * Virtualization Management: Secondary Offline, Secondary Assign of @nvq
 * VQ and @nvi VI resources, a function level reset of the VF through sysfs
 * (the controller takes its new resources on FLR), Secondary Online.
 *
 * Return: 0, negative errno or positive NVMe status.
 */
int vnl_pf_vf_online(int fd, const char *pf_bdf, int vfidx, int nvq, int nvi,
		     uint16_t *scid)
{
	char vf[32];
	uint16_t id;
	int ret;

	ret = vnl_pf_vf_bdf(pf_bdf, vfidx, vf, sizeof(vf));
	if (ret)
		return ret;
	ret = vnl_pf_scid(fd, vfidx + 1, &id);
	if (ret)
		return ret;
	ret = virt_mgmt(fd, id, VNL_VM_OFFLINE, VNL_VM_RT_VQ, 0);
	if (!ret)
		ret = virt_mgmt(fd, id, VNL_VM_ASSIGN, VNL_VM_RT_VQ, nvq);
	if (!ret)
		ret = virt_mgmt(fd, id, VNL_VM_ASSIGN, VNL_VM_RT_VI, nvi);
	if (!ret)
		ret = sysfs_write(vf, "reset", "1");
	if (!ret)
		ret = virt_mgmt(fd, id, VNL_VM_ONLINE, VNL_VM_RT_VQ, 0);
	if (!ret && scid)
		*scid = id;
	return ret;
}

/**
 * vnl_pf_state() - the state of the PF's nvme controller
 * @pf_bdf: the PF
 * @buf: receives /sys/class/nvme/nvmeN/state without its newline
 * @len: size of @buf
 *
 * Return: 0, or -ENODEV if the PF has no nvme controller (not bound to
 * nvme, or its controller is being removed).
 */
int vnl_pf_state(const char *pf_bdf, char *buf, size_t len)
{
	char name[32], path[PATH_MAX];
	FILE *f;

	buf[0] = 0;
	if (vnl_pf_ctrl_name(pf_bdf, name, sizeof(name)))
		return -ENODEV;
	snprintf(path, sizeof(path), "/sys/class/nvme/%s/state", name);
	f = fopen(path, "r");
	if (!f)
		return -ENODEV;
	if (!fgets(buf, len, f))
		buf[0] = 0;
	fclose(f);
	buf[strcspn(buf, "\n")] = 0;
	return 0;
}

/**
 * vnl_pf_live() - whether the PF's nvme controller is live
 * @pf_bdf: the PF
 *
 * Return: true if /sys/class/nvme/nvmeN/state of the PF reads "live".
 */
bool vnl_pf_live(const char *pf_bdf)
{
	char state[32];

	return !vnl_pf_state(pf_bdf, state, sizeof(state)) &&
	       !strcmp(state, "live");
}

/**
 * vnl_wait_nvme_live() - wait until a PF bound to nvme has a live controller
 * @pf_bdf: the PF
 *
 * Polls for up to 30 seconds (TCG is slow).
 *
 * Return: 0, or -ETIMEDOUT (the message names the last state seen).
 */
int vnl_wait_nvme_live(const char *pf_bdf)
{
	char state[32] = "";
	int tries, ret = -ENODEV;

	for (tries = 0; tries < 300; tries++) {
		ret = vnl_pf_state(pf_bdf, state, sizeof(state));
		if (!ret && !strcmp(state, "live"))
			return 0;
		usleep(100000);
	}
	errno = ETIMEDOUT;
	if (ret)
		return vnl_fail("%s: no nvme controller after 30 s", pf_bdf);
	return vnl_fail("%s: nvme controller state '%s' after 30 s", pf_bdf,
			state);
}

/**
 * vnl_pf_setup_vfs() - a PF on nvme with @nvfs VFs online, bound to @driver
 * @pf_bdf: the PF; bound to nvme here if it is not
 * @nvfs: how many VFs
 * @nvq: VQ resources of each (admin + I/O queue pairs)
 * @nvi: VI resources of each
 * @driver: the driver the VFs are bound to
 *
 * What the guest's init does for the rig's PF: after a test removed the
 * VFs (sriov_numvfs 0, an unbind of the PF), this makes them again.
 *
 * Return: 0 or negative errno.
 */
int vnl_pf_setup_vfs(const char *pf_bdf, int nvfs, int nvq, int nvi,
		     const char *driver)
{
	char vf[32], n[16];
	int fd, i, ret;

	if (vnl_pf_ctrl_name(pf_bdf, vf, sizeof(vf))) {
		vnl_sysfs_write(pf_bdf, "driver_override", "nvme");
		vnl_probe_driver(pf_bdf);
	}
	ret = vnl_wait_nvme_live(pf_bdf);
	if (ret)
		return ret;
	snprintf(n, sizeof(n), "%d", nvfs);
	ret = vnl_sysfs_write(pf_bdf, "sriov_drivers_autoprobe", "0");
	if (!ret)
		ret = vnl_sysfs_write(pf_bdf, "sriov_numvfs", "0");
	if (!ret)
		ret = vnl_sysfs_write(pf_bdf, "sriov_numvfs", n);
	if (ret)
		return ret;
	fd = vnl_pf_open(pf_bdf);
	if (fd < 0)
		return fd;
	for (i = 0; i < nvfs && !ret; i++) {
		ret = vnl_pf_vf_online(fd, pf_bdf, i, nvq, nvi, NULL);
		if (ret > 0) {
			errno = EIO;
			ret = vnl_fail("%s: VF %d online: status %#x", pf_bdf,
				       i, ret);
		}
		if (!ret)
			ret = vnl_pf_vf_bdf(pf_bdf, i, vf, sizeof(vf));
		if (!ret)
			ret = vnl_bind(vf, driver);
	}
	close(fd);
	return ret;
}

/**
 * vnl_sysfs_write() - write a string to a PCI device's sysfs attribute
 * @bdf: the device
 * @attr: attribute name
 * @val: value
 *
 * Return: 0 or negative errno.
 */
int vnl_sysfs_write(const char *bdf, const char *attr, const char *val)
{
	return sysfs_write(bdf, attr, val);
}

/**
 * vnl_pf_reset() - reset a PF's nvme controller and wait until it is live
 * @pf_bdf: the PF, bound to nvme
 *
 * Writes its reset_controller attribute, then polls its state for up to
 * 30 seconds (TCG is slow).
 *
 * Return: 0 once live, or negative errno.
 */
int vnl_pf_reset(const char *pf_bdf)
{
	char name[32], path[PATH_MAX];
	int fd, ret;

	ret = vnl_pf_ctrl_name(pf_bdf, name, sizeof(name));
	if (ret)
		return ret;
	snprintf(path, sizeof(path), "/sys/class/nvme/%s/reset_controller", name);
	fd = open(path, O_WRONLY);
	if (fd < 0 || write(fd, "1", 1) != 1) {
		ret = vnl_fail("write %s", path);
		if (fd >= 0)
			close(fd);
		return ret;
	}
	close(fd);
	return vnl_wait_nvme_live(pf_bdf);
}

/**
 * vnl_probe_driver() - ask the PCI core to bind a driver to a device
 * @bdf: the device (its driver_override decides which driver)
 *
 * Return: 0 or negative errno.
 */
int vnl_probe_driver(const char *bdf)
{
	return vnl_write_file("/sys/bus/pci/drivers_probe", bdf);
}

/**
 * vnl_write_file() - write a string to a (sysfs) file
 * @path: the file
 * @val: the string
 *
 * Return: 0 or negative errno.
 */
int vnl_write_file(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY), ret = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, val, strlen(val)) != (ssize_t)strlen(val))
		ret = -errno;
	close(fd);
	return ret;
}

/**
 * vnl_debugfs_stat() - a value of nvme-vfio-pci's migration debugfs file
 * @bdf: the VF
 * @name: the name before the colon of a "name: value" line
 *
 * Return: the value, -1 if there is no such line, or negative errno.
 */
long vnl_debugfs_stat(const char *bdf, const char *name)
{
	char path[PATH_MAX], line[256];
	size_t n = strlen(name);
	long v = -1;
	FILE *f;

	snprintf(path, sizeof(path),
		 "/sys/kernel/debug/vfio/%s/migration/nvme", bdf);
	f = fopen(path, "r");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, name, n) && line[n] == ':')
			v = strtol(line + n + 1, NULL, 0);
	fclose(f);
	return v;
}

/**
 * vnl_fill_pattern() - fill a buffer with a reproducible pseudo-random pattern
 * @p: buffer
 * @len: its length
 * @seed: the pattern's seed
 */
void vnl_fill_pattern(uint8_t *p, size_t len, uint32_t seed)
{
	size_t i;

	for (i = 0; i < len; i++) {
		seed = seed * 1103515245u + 12345u;
		p[i] = seed >> 16;
	}
}

/**
 * vnl_rig_open() - find the rig's VFs (at least two) and open their PF
 * @r: filled; r->pffd is the PF's nvme character device
 * @driver: the driver the VFs are bound to
 *
 * Return: 0, or negative errno with vnl_err set; @r is closed on error.
 */
int vnl_rig_open(struct vnl_rig *r, const char *driver)
{
	char pf[32];
	int i, ret;

	memset(r, 0, sizeof(*r));
	r->pffd = -1;
	r->nvf = vnl_vfs_bound_to(driver, r->bdf, VNL_RIG_MAX);
	if (r->nvf < 2) {
		errno = ENODEV;
		return vnl_fail("%d VFs bound to %s", r->nvf, driver);
	}
	for (i = 0; i < r->nvf; i++) {
		ret = vnl_pf_of_vf(r->bdf[i], pf, sizeof(pf), &r->vfn[i]);
		if (ret)
			goto err;
		if (i && strcmp(pf, r->pf)) {
			errno = EXDEV;
			ret = vnl_fail("%s and %s have different PFs", r->bdf[0],
				       r->bdf[i]);
			goto err;
		}
		snprintf(r->pf, sizeof(r->pf), "%s", pf);
	}
	r->pffd = vnl_pf_open(r->pf);
	if (r->pffd < 0) {
		ret = r->pffd;
		goto err;
	}
	for (i = 0; i < r->nvf; i++) {
		ret = vnl_pf_scid(r->pffd, r->vfn[i], &r->scid[i]);
		if (ret)
			goto err;
	}
	return 0;
err:
	vnl_rig_close(r);
	return ret < 0 ? ret : -EIO;
}

/**
 * vnl_rig_open_vfs() - open the rig's first VFs through iommufd
 * @r: the rig, from vnl_rig_open()
 * @dev: @n devices; VF i gets its DMA arena at IOVA (i + 1) * 256 MiB
 * @n: how many, at most @r->nvf
 * @arena: the size of each arena
 *
 * Return: 0 or negative errno; the VFs opened before a failure stay open.
 */
int vnl_rig_open_vfs(const struct vnl_rig *r, struct vnl_dev *dev, int n,
		     size_t arena)
{
	int i, ret;

	if (n > r->nvf) {
		errno = ENODEV;
		return vnl_fail("the rig has %d VFs, %d wanted", r->nvf, n);
	}
	for (i = 0; i < n; i++) {
		ret = vnl_dev_open(&dev[i], r->bdf[i], VNL_IOMMUFD,
				   (i + 1) * 0x10000000ull, arena);
		if (ret)
			return ret;
	}
	return 0;
}

/**
 * vnl_rig_close() - close what vnl_rig_open() opened
 * @r: the rig
 */
void vnl_rig_close(struct vnl_rig *r)
{
	if (r->pffd >= 0)
		close(r->pffd);
	r->pffd = -1;
}

static int cmp_bdf(const void *a, const void *b)
{
	return strcmp(a, b);
}

/**
 * vnl_vfs_bound_to() - the PCI functions bound to a driver, sorted
 * @driver: driver name
 * @bdfs: output array
 * @max: its size
 *
 * Return: how many were found.
 */
int vnl_vfs_bound_to(const char *driver, char bdfs[][32], int max)
{
	char path[PATH_MAX];
	struct dirent *de;
	DIR *dir;
	int n = 0;

	snprintf(path, sizeof(path), "/sys/bus/pci/drivers/%s", driver);
	dir = opendir(path);
	if (!dir)
		return 0;
	while ((de = readdir(dir)) && n < max)
		if (strchr(de->d_name, ':') && de->d_name[0] != '.')
			snprintf(bdfs[n++], 32, "%.31s", de->d_name);
	closedir(dir);
	qsort(bdfs, n, 32, cmp_bdf);
	return n;
}
