/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * NVMe Host Managed Live Migration (TP4159) definitions shared by the
 * nvme-vfio-pci variant driver and the nvme-pci PF entry point.
 */
#ifndef _LINUX_NVME_LM_H
#define _LINUX_NVME_LM_H

#include <linux/build_bug.h>
#include <linux/types.h>

/* Identify CNS 15h: Secondary Controller List */
#define NVME_LM_ID_CNS_SEC_CTRL_LIST	0x15
#define NVME_LM_SEC_CTRL_LIST_MAX	127

/**
 * struct nvme_lm_sec_ctrl_entry - Secondary Controller Entry (32 bytes)
 * @scid: Secondary Controller Identifier (the VF's CNTLID)
 * @pcid: Primary Controller Identifier
 * @scs: Secondary Controller State, bit 0 = online
 * @rsvd5: reserved
 * @vfn: Virtual Function Number, 1-based, 0 if not a VF
 * @nvq: number of VQ flexible resources assigned
 * @nvi: number of VI flexible resources assigned
 * @rsvd14: reserved
 */
struct nvme_lm_sec_ctrl_entry {
	__le16	scid;
	__le16	pcid;
	__u8	scs;
	__u8	rsvd5[3];
	__le16	vfn;
	__le16	nvq;
	__le16	nvi;
	__u8	rsvd14[18];
} __packed;
static_assert(sizeof(struct nvme_lm_sec_ctrl_entry) == 32);

#define NVME_LM_SCS_ONLINE	0x01

/**
 * struct nvme_lm_sec_ctrl_list - Secondary Controller List (4096 bytes)
 * @numid: number of entries that follow
 * @rsvd1: reserved
 * @entries: the entries
 */
struct nvme_lm_sec_ctrl_list {
	__u8	numid;
	__u8	rsvd1[31];
	struct nvme_lm_sec_ctrl_entry entries[NVME_LM_SEC_CTRL_LIST_MAX];
} __packed;
static_assert(sizeof(struct nvme_lm_sec_ctrl_list) == 4096);

#endif /* _LINUX_NVME_LM_H */
