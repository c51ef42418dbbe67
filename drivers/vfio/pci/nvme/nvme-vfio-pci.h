/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * nvme-vfio-pci: vfio-pci variant driver for NVMe SR-IOV virtual functions.
 * Private definitions shared by the driver's files.
 */
#ifndef NVME_VFIO_PCI_H
#define NVME_VFIO_PCI_H

#include <linux/atomic.h>
#include <linux/notifier.h>
#include <linux/nvme-lm.h>
#include <linux/types.h>
#include <linux/uuid.h>
#include <linux/vfio_pci_core.h>

struct nvme_command;

/**
 * struct nvmevf_pci_core_device - one NVMe VF bound to the driver
 * @core_device: the vfio-pci core device, first member
 * @pf: the VF's PF (the Migration Management Controller)
 * @scid: the VF's controller ID as the PF lists it (valid if @has_scid)
 * @has_scid: @scid was resolved at probe
 * @pf_nb: notifier for PF resets and removal
 * @pf_events: count of each enum nvme_lm_pf_event seen for @pf
 */
struct nvmevf_pci_core_device {
	struct vfio_pci_core_device core_device;
	struct pci_dev *pf;
	u16 scid;
	bool has_scid;
	struct notifier_block pf_nb;
	atomic_t pf_events[NVME_LM_PF_REMOVING + 1];
};

/**
 * struct nvmevf_range - a range of IOVAs
 * @start: first byte
 * @len: length in bytes
 */
struct nvmevf_range {
	u64 start;
	u64 len;
};

/* cmds.c: command builders */
void nvmevf_cmd_suspend(struct nvme_command *c, u16 cntlid,
			enum nvme_lm_stype stype, bool dudmq);
void nvmevf_cmd_resume(struct nvme_command *c, u16 cntlid);
void nvmevf_cmd_set_state(struct nvme_command *c, u16 cntlid, u8 csvi,
			  u8 csuuidi, enum nvme_lm_seqind seqind, u64 offset,
			  u32 numd);
void nvmevf_cmd_get_state(struct nvme_command *c, u16 cntlid, u8 csvi,
			  u8 csuuidi, u8 csuidxp, u64 offset, u32 ndw);
void nvmevf_cmd_identify(struct nvme_command *c, u8 cns, u16 cntid);
void nvmevf_cmd_track_mem(struct nvme_command *c, u16 cntlid, bool start);
ssize_t nvmevf_track_mem_build(void *buf, size_t len, u8 rmrtg,
			       const struct nvmevf_range *ranges, u32 n);
void nvmevf_cmd_track_recv(struct nvme_command *c, u16 cntlid, u32 ndw);

/* cmds.c: parsers and helpers */
u32 nvmevf_chunk_len(u64 total, u64 done, u32 max_transfer);
int nvmevf_sec_ctrl_find_scid(const void *buf, size_t len, u16 vfn, u16 *scid,
			      u16 *last);
int nvmevf_parse_csf(const void *buf, size_t len, u16 version,
		     const uuid_t *uuid, u8 *csvi, u8 *csuuidi);
int nvmevf_status_to_errno(int status);
int nvmevf_submit(struct pci_dev *vf, struct nvme_command *c, void *buf,
		  unsigned int len, u32 *dw0, u32 *dw1);
int nvmevf_lookup_scid(struct pci_dev *vf, u16 *scid);

#endif /* NVME_VFIO_PCI_H */
