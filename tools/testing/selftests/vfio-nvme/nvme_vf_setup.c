// SPDX-License-Identifier: GPL-2.0-only
/*
 * nvme_vf_setup: enable SR-IOV VFs on an NVMe PF and bring their secondary
 * controllers online with Virtualization Management, then print the
 * topology.  Used by the rig's guest /init.
 *
 *   nvme_vf_setup PF_BDF NUM_VFS NVQ NVI
 *
 * Per VF: offline -> assign NVQ VQ resources -> assign NVI VI resources ->
 * FLR -> online.  VF drivers are not probed (sriov_drivers_autoprobe = 0).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/vnl.h"

#define ACT_OFFLINE	0x7
#define ACT_ASSIGN	0x8
#define ACT_ONLINE	0x9
#define RT_VQ		0
#define RT_VI		1

static int sysfs_write(const char *bdf, const char *attr, const char *val)
{
	char path[PATH_MAX];
	int fd, ret = 0;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/%s", bdf, attr);
	fd = open(path, O_WRONLY);
	if (fd < 0 || write(fd, val, strlen(val)) != (ssize_t)strlen(val)) {
		fprintf(stderr, "nvme_vf_setup: write %s to %s: %m\n", val, path);
		ret = -1;
	}
	if (fd >= 0)
		close(fd);
	return ret;
}

static int virt_mgmt(int fd, uint16_t cntlid, int act, int rt, int nr)
{
	uint32_t res = 0;
	int ret;

	ret = vnl_pf_admin(fd, NVME_ADM_VIRT_MGMT,
			   (uint32_t)cntlid << 16 | rt << 8 | act, nr, NULL, 0,
			   &res);
	if (ret)
		fprintf(stderr, "nvme_vf_setup: virt-mgmt cntlid %u act %d rt %d nr %d: %s\n",
			cntlid, act, rt, nr, vnl_err);
	return ret;
}

int main(int argc, char **argv)
{
	uint8_t *list = calloc(1, 4096);
	char num[16], vf[32], path[PATH_MAX];
	int nvfs, nvq, nvi, fd, i, n;

	if (argc != 5 || !list) {
		fprintf(stderr, "usage: %s PF_BDF NUM_VFS NVQ NVI\n", argv[0]);
		return 2;
	}
	nvfs = atoi(argv[2]);
	nvq = atoi(argv[3]);
	nvi = atoi(argv[4]);
	fd = vnl_pf_open(argv[1]);
	if (fd < 0) {
		fprintf(stderr, "nvme_vf_setup: %s\n", vnl_err);
		return 1;
	}
	if (sysfs_write(argv[1], "sriov_drivers_autoprobe", "0"))
		return 1;
	snprintf(num, sizeof(num), "%d", nvfs);
	if (sysfs_write(argv[1], "sriov_numvfs", num))
		return 1;

	for (i = 0; i < nvfs; i++) {
		uint16_t scid;

		snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/virtfn%d",
			 argv[1], i);
		n = readlink(path, vf, sizeof(vf) - 1);
		if (n < 0) {
			fprintf(stderr, "nvme_vf_setup: %s: %m\n", path);
			return 1;
		}
		vf[n] = 0;
		memmove(vf, strrchr(vf, '/') + 1, strlen(strrchr(vf, '/')));
		if (vnl_pf_scid(fd, i + 1, &scid)) {
			fprintf(stderr, "nvme_vf_setup: %s\n", vnl_err);
			return 1;
		}
		if (virt_mgmt(fd, scid, ACT_OFFLINE, RT_VQ, 0) ||
		    virt_mgmt(fd, scid, ACT_ASSIGN, RT_VQ, nvq) ||
		    virt_mgmt(fd, scid, ACT_ASSIGN, RT_VI, nvi))
			return 1;
		/* the VF picks up its new resources on a function reset */
		if (sysfs_write(vf, "reset", "1"))
			return 1;
		if (virt_mgmt(fd, scid, ACT_ONLINE, RT_VQ, 0))
			return 1;
	}

	/* topology as the PF now reports it */
	if (vnl_pf_admin(fd, NVME_ADM_IDENTIFY, 0x15, 0, list, 4096, NULL)) {
		fprintf(stderr, "nvme_vf_setup: %s\n", vnl_err);
		return 1;
	}
	n = list[0] > 127 ? 127 : list[0];
	printf("PF %s: %d secondary controllers\n", argv[1], n);
	for (i = 0; i < n; i++) {
		uint8_t *e = list + 32 + 32 * i;
		int vfn = e[8] | e[9] << 8;

		vf[0] = 0;
		if (vfn) {
			snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/virtfn%d",
				 argv[1], vfn - 1);
			n = readlink(path, vf, sizeof(vf) - 1);
			vf[n > 0 ? n : 0] = 0;
			if (strrchr(vf, '/'))
				memmove(vf, strrchr(vf, '/') + 1, strlen(strrchr(vf, '/')));
		}
		printf("  SCID %u PCID %u VFN %d %-13s %s NVQ %u NVI %u\n",
		       e[0] | e[1] << 8, e[2] | e[3] << 8, vfn, vf,
		       e[4] & 1 ? "online " : "offline", e[10] | e[11] << 8,
		       e[12] | e[13] << 8);
		n = list[0] > 127 ? 127 : list[0];
	}
	close(fd);
	free(list);
	return 0;
}
