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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/vnl.h"

static int print_topology(int fd, const char *pf)
{
	uint8_t *list = calloc(1, 4096), *e;
	char vf[32];
	int i, n, vfn;

	if (!list)
		return 1;
	if (vnl_pf_admin(fd, NVME_ADM_IDENTIFY, 0x15, 0, list, 4096, NULL)) {
		fprintf(stderr, "nvme_vf_setup: %s\n", vnl_err);
		free(list);
		return 1;
	}
	n = list[0] > 127 ? 127 : list[0];
	printf("PF %s: %d secondary controllers\n", pf, n);
	for (i = 0; i < n; i++) {
		e = list + 32 + 32 * i;
		vfn = e[8] | e[9] << 8;
		if (!vfn || vnl_pf_vf_bdf(pf, vfn - 1, vf, sizeof(vf)))
			snprintf(vf, sizeof(vf), "-");
		printf("  SCID %u PCID %u VFN %d %-13s %s NVQ %u NVI %u\n",
		       e[0] | e[1] << 8, e[2] | e[3] << 8, vfn, vf,
		       e[4] & 1 ? "online " : "offline", e[10] | e[11] << 8,
		       e[12] | e[13] << 8);
	}
	free(list);
	return 0;
}

int main(int argc, char **argv)
{
	int nvfs, nvq, nvi, fd, i;

	if (argc != 5) {
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
	if (vnl_sysfs_write(argv[1], "sriov_drivers_autoprobe", "0") ||
	    vnl_sysfs_write(argv[1], "sriov_numvfs", argv[2])) {
		fprintf(stderr, "nvme_vf_setup: %s\n", vnl_err);
		return 1;
	}
	for (i = 0; i < nvfs; i++) {
		if (vnl_pf_vf_online(fd, argv[1], i, nvq, nvi, NULL)) {
			fprintf(stderr, "nvme_vf_setup: VF %d: %s\n", i, vnl_err);
			return 1;
		}
	}
	i = print_topology(fd, argv[1]);
	close(fd);
	return i;
}
