// SPDX-License-Identifier: GPL-2.0-only
/*
 * nvme-vfio-pci: encoders and parsers for the NVMe live migration commands.
 */
#include <linux/errno.h>
#include <linux/kernel.h>
#include <linux/nvme-lm.h>

#include "nvme-vfio-pci.h"

/**
 * nvmevf_sec_ctrl_find_scid() - find a VF's controller in a CNS 15h list
 * @buf: Secondary Controller List as returned by the PF
 * @len: number of valid bytes in @buf
 * @vfn: SR-IOV VF number, 1-based (pci_iov_vf_id() + 1)
 * @scid: returns the Secondary Controller Identifier of that VF
 *
 * The entry count comes from the device and is not trusted: only entries
 * that lie entirely within @len bytes are looked at.
 *
 * Return: 0 on success, -EINVAL for a VFN of 0 or a buffer shorter than the
 * list header, -ENOENT if no entry of the list names @vfn.
 */
int nvmevf_sec_ctrl_find_scid(const void *buf, size_t len, u16 vfn, u16 *scid)
{
	const struct nvme_lm_sec_ctrl_list *list = buf;
	size_t hdr = offsetof(struct nvme_lm_sec_ctrl_list, entries);
	size_t n, i;

	if (!vfn || len < hdr)
		return -EINVAL;
	n = min_t(size_t, list->numid, (len - hdr) / sizeof(list->entries[0]));
	n = min_t(size_t, n, NVME_LM_SEC_CTRL_LIST_MAX);
	for (i = 0; i < n; i++) {
		if (le16_to_cpu(list->entries[i].vfn) == vfn) {
			*scid = le16_to_cpu(list->entries[i].scid);
			return 0;
		}
	}
	return -ENOENT;
}
