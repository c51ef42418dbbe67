/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * NVMe Host Managed Live Migration (TP4159, NVMe Base 2.1+) definitions,
 * shared by nvme-pci (the PF entry point) and the nvme-vfio-pci variant
 * driver.  All multi-byte fields are little endian.
 */
#ifndef _LINUX_NVME_LM_H
#define _LINUX_NVME_LM_H

#include <linux/bits.h>
#include <linux/build_bug.h>
#include <linux/types.h>

/* ---- Admin opcodes ---- */
enum nvme_lm_admin_opcode {
	nvme_admin_lm_track_send	= 0x3d,
	nvme_admin_lm_track_recv	= 0x3e,
	nvme_admin_lm_migration_send	= 0x41,
	nvme_admin_lm_migration_recv	= 0x42,
	nvme_admin_lm_cdq		= 0x45,
};

/* ---- Identify ---- */
#define NVME_LM_ID_CNS_PRIMARY_CTRL_CAP	0x14
#define NVME_LM_ID_CNS_SEC_CTRL_LIST	0x15
#define NVME_LM_ID_CNS_CTRL_STATE_FMTS	0x20

/* Identify Controller: OACS bit 11, Host Managed Live Migration Support */
#define NVME_LM_OACS_HMLMS		BIT(11)
#define NVME_LM_ID_CTRL_OACS_OFFSET	256
#define NVME_LM_ID_CTRL_LM_OFFSET	570

/**
 * struct nvme_lm_id_ctrl_fields - Identify Controller bytes 570-587
 * @cmmrtd: max memory range tracking descriptors of this controller
 * @nmmrtd: max memory range tracking descriptors, subsystem wide
 * @minmrtg: minimum memory range tracking granularity (2^n * 4 KiB)
 * @maxmrtg: maximum memory range tracking granularity
 * @trattr: tracking attributes, NVME_LM_TRATTR_*
 * @rsvd577: reserved
 * @mcudmq: max user data migration queues of this controller
 * @mnsudmq: max user data migration queues, subsystem wide
 * @mcmr: max memory ranges of one controller data queue
 * @nmcmr: max controller data queue memory ranges, subsystem wide
 * @mcdqpc: max controller data queue PRP count
 */
struct nvme_lm_id_ctrl_fields {
	__le16	cmmrtd;
	__le16	nmmrtd;
	__u8	minmrtg;
	__u8	maxmrtg;
	__u8	trattr;
	__u8	rsvd577;
	__le16	mcudmq;
	__le16	mnsudmq;
	__le16	mcmr;
	__le16	nmcmr;
	__le16	mcdqpc;
} __packed;
static_assert(sizeof(struct nvme_lm_id_ctrl_fields) == 18);

#define NVME_LM_TRATTR_THMCS	BIT(0)	/* track host memory changes */
#define NVME_LM_TRATTR_TUDCS	BIT(1)	/* track user data changes */
#define NVME_LM_TRATTR_MRTLL	BIT(2)	/* range lengths must be powers of 2 */

/**
 * struct nvme_lm_sec_ctrl_entry - Secondary Controller Entry (CNS 15h)
 * @scid: Secondary Controller Identifier (the VF's CNTLID)
 * @pcid: Primary Controller Identifier
 * @scs: Secondary Controller State, NVME_LM_SCS_ONLINE
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
#define NVME_LM_SEC_CTRL_LIST_MAX	127

/**
 * struct nvme_lm_sec_ctrl_list - Secondary Controller List (CNS 15h)
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

/*
 * Identify CNS 20h, Supported Controller State Formats: byte 0 NV, byte 1
 * NUUID, then NV 16-bit NVMe controller state versions (version of index i
 * at byte 2 + 2 * (i - 1)), then NUUID 16-byte vendor state UUIDs.  Indexes
 * (CSVI, CSUUIDI) are 1-based; 0 means "none".
 */
#define NVME_LM_CSF_HDR_SIZE	2
#define NVME_LM_CSF_VER_SIZE	2
#define NVME_LM_CSF_UUID_SIZE	16

/* ---- Migration Send (41h) ---- */
#define NVME_LM_SEL_MASK		GENMASK(7, 0)
#define NVME_LM_MOS_SHIFT		16
#define NVME_LM_CNTLID_MASK		GENMASK(15, 0)

enum nvme_lm_send_sel {
	NVME_LM_SEND_SEL_SUSPEND	= 0x0,
	NVME_LM_SEND_SEL_RESUME		= 0x1,
	NVME_LM_SEND_SEL_SET_STATE	= 0x2,
};

/* Suspend, CDW11 */
#define NVME_LM_SUSPEND_DUDMQ		BIT(31)
#define NVME_LM_SUSPEND_STYPE_SHIFT	16
#define NVME_LM_SUSPEND_STYPE_MASK	GENMASK(23, 16)

enum nvme_lm_stype {
	NVME_LM_STYPE_NOTIFY	= 0x0,	/* Suspend Notification */
	NVME_LM_STYPE_SUSPEND	= 0x1,
};

/* Set Controller State: MOS bits 1:0 = SEQIND; CDW11 CNTLID/CSVI/CSUUIDI */
enum nvme_lm_seqind {
	NVME_LM_SEQIND_MIDDLE	= 0x0,
	NVME_LM_SEQIND_FIRST	= 0x1,
	NVME_LM_SEQIND_LAST	= 0x2,
	NVME_LM_SEQIND_ONLY	= 0x3,
};

#define NVME_LM_SEQIND_MASK		GENMASK(17, 16)	/* in CDW10 */
#define NVME_LM_SET_CSVI_SHIFT		16		/* in CDW11 */
#define NVME_LM_SET_CSUUIDI_SHIFT	24		/* in CDW11 */

/* ---- Migration Receive (42h), SEL 0h Get Controller State ---- */
#define NVME_LM_RECV_SEL_GET_STATE	0x0
#define NVME_LM_GET_CSVI_SHIFT		16		/* in CDW10 (MOS 7:0) */
#define NVME_LM_GET_CSUUIDI_SHIFT	16		/* in CDW11 */
#define NVME_LM_GET_CSUIDXP_SHIFT	24		/* in CDW11 */
#define NVME_LM_GET_CSUP		BIT(0)		/* in CQE DW0 */

/* ---- Track Send (3Dh) / Track Receive (3Eh) ---- */
enum nvme_lm_track_send_sel {
	NVME_LM_TRACK_SEL_LOG_USER_DATA		= 0x0,
	NVME_LM_TRACK_SEL_MEMORY_CHANGES	= 0x1,
};

#define NVME_LM_TRACK_TACT		BIT(0)		/* MOS bit 0 */
#define NVME_LM_TRACK_LACT_MASK		GENMASK(3, 0)	/* MOS bits 3:0 */
#define NVME_LM_TRACK_RECV_SEL_MEMORY	0x0
/* 38h on Track Memory Changes: DW0 15:0 MRTG, DW1 NMRTD */
#define NVME_LM_TRACK_MRTG_MASK		GENMASK(15, 0)

/**
 * struct nvme_lm_mrtd - Memory Range Tracking Descriptor (Track Send)
 * @saddr: start address, aligned to the granularity
 * @len: length in granules
 */
struct nvme_lm_mrtd {
	__le64	saddr;
	__le32	len;
} __packed;
static_assert(sizeof(struct nvme_lm_mrtd) == 12);

/**
 * struct nvme_lm_track_mem - Track Memory Changes data structure
 * @ver: version, 0
 * @rsvd1: reserved
 * @rmrtg: requested granularity, 2^n * 4 KiB
 * @rnmrtd: number of descriptors (not 0's based)
 * @desc: the descriptors
 */
struct nvme_lm_track_mem {
	__u8	ver;
	__u8	rsvd1[2];
	__u8	rmrtg;
	__le32	rnmrtd;
	struct nvme_lm_mrtd desc[];
} __packed;
static_assert(sizeof(struct nvme_lm_track_mem) == 8);

/**
 * struct nvme_lm_tmcd - Tracked Memory Changed Descriptor (Track Receive)
 * @saddr: start address
 * @len: length in granules
 * @rsvd12: reserved
 */
struct nvme_lm_tmcd {
	__le64	saddr;
	__le32	len;
	__le32	rsvd12;
} __packed;
static_assert(sizeof(struct nvme_lm_tmcd) == 16);

#define NVME_LM_TMC_MTR		BIT(0)	/* more to report */
#define NVME_LM_TMC_SUSP	BIT(1)	/* suspended during the command */

/**
 * struct nvme_lm_tracked_mem - Tracked Memory Changes data structure
 * @ver: version, 0
 * @attrb: NVME_LM_TMC_MTR, NVME_LM_TMC_SUSP
 * @cntlid: controller reported on
 * @ntmcd: number of descriptors
 * @rpmpg: reported granularity, 2^n * 4 KiB
 * @rsvd10: reserved
 * @desc: the descriptors
 */
struct nvme_lm_tracked_mem {
	__u8	ver;
	__u8	attrb;
	__le16	cntlid;
	__le32	ntmcd;
	__le16	rpmpg;
	__u8	rsvd10[6];
	struct nvme_lm_tmcd desc[];
} __packed;
static_assert(sizeof(struct nvme_lm_tracked_mem) == 16);

/* ---- Controller State data structure ---- */

/**
 * struct nvme_lm_state_hdr - Controller State data structure header
 * @ver: version, 0
 * @csattr: NVME_LM_CSATTR_SUSPENDED
 * @rsvd3: reserved
 * @nvmecss: NVMe Controller State size in dwords (a 128-bit field; only
 *	the low 64 bits are used here, the high ones must be 0)
 * @nvmecss_hi: high half of NVMECSS
 * @vss: Vendor Specific Data size in dwords (128-bit field, low half)
 * @vss_hi: high half of VSS
 *
 * Followed by 4 * NVMECSS bytes of NVMe Controller State and 4 * VSS
 * bytes of vendor specific data.
 */
struct nvme_lm_state_hdr {
	__le16	ver;
	__u8	csattr;
	__u8	rsvd3[13];
	__le64	nvmecss;
	__le64	nvmecss_hi;
	__le64	vss;
	__le64	vss_hi;
} __packed;
static_assert(sizeof(struct nvme_lm_state_hdr) == 48);

#define NVME_LM_CSATTR_SUSPENDED	BIT(0)

/**
 * struct nvme_lm_iosq_state - I/O Submission Queue State (24 bytes)
 * @prp1: PRP1 of the Create I/O SQ command
 * @qsize: queue size, 0's based
 * @qid: queue ID
 * @cqid: completion queue the SQ posts to
 * @attr: NVME_LM_SQA_*
 * @head: head pointer
 * @tail: tail pointer
 * @rsvd20: reserved
 */
struct nvme_lm_iosq_state {
	__le64	prp1;
	__le16	qsize;
	__le16	qid;
	__le16	cqid;
	__le16	attr;
	__le16	head;
	__le16	tail;
	__le32	rsvd20;
} __packed;
static_assert(sizeof(struct nvme_lm_iosq_state) == 24);

#define NVME_LM_SQA_PC		BIT(0)
#define NVME_LM_SQA_QPRIO_MASK	GENMASK(2, 1)

/**
 * struct nvme_lm_iocq_state - I/O Completion Queue State (24 bytes)
 * @prp1: PRP1 of the Create I/O CQ command
 * @qsize: queue size, 0's based
 * @qid: queue ID
 * @head: head pointer
 * @tail: tail pointer
 * @attr: NVME_LM_CQA_* (32 bits, interrupt vector in 31:16)
 * @rsvd20: reserved
 */
struct nvme_lm_iocq_state {
	__le64	prp1;
	__le16	qsize;
	__le16	qid;
	__le16	head;
	__le16	tail;
	__le32	attr;
	__le32	rsvd20;
} __packed;
static_assert(sizeof(struct nvme_lm_iocq_state) == 24);

#define NVME_LM_CQA_PC		BIT(0)
#define NVME_LM_CQA_IEN		BIT(1)
#define NVME_LM_CQA_S0PT	BIT(2)	/* phase tag held in slot 0 */
#define NVME_LM_CQA_IV_MASK	GENMASK(31, 16)

/**
 * struct nvme_lm_nvme_state - NVMe Controller State, version 0
 * @ver: version, 0
 * @niosq: number of I/O SQ state entries
 * @niocq: number of I/O CQ state entries
 * @rsvd6: reserved
 *
 * Followed by @niosq struct nvme_lm_iosq_state in ascending SQID order, then
 * @niocq struct nvme_lm_iocq_state in ascending CQID order.
 */
struct nvme_lm_nvme_state {
	__le16	ver;
	__le16	niosq;
	__le16	niocq;
	__le16	rsvd6;
} __packed;
static_assert(sizeof(struct nvme_lm_nvme_state) == 8);

/* ---- Command specific status codes (SCT 1h) ---- */
enum nvme_lm_status {
	NVME_SC_LM_INVALID_CTRL_ID	= 0x11f,
	NVME_SC_LM_INVALID_CDQ		= 0x137,
	NVME_SC_LM_NOT_ENOUGH_RES	= 0x138,
	NVME_SC_LM_CTRL_SUSPENDED	= 0x139,
	NVME_SC_LM_CTRL_NOT_SUSPENDED	= 0x13a,
	NVME_SC_LM_CDQ_FULL		= 0x13b,
};

/* ---- PF entry point (nvme-pci) ---- */

struct notifier_block;
struct nvme_command;
struct pci_dev;

/**
 * struct nvme_lm_pf_info - what a VF driver needs to know about its PF
 * @max_transfer: largest data transfer of one admin command, in bytes
 * @cntlid: the PF controller's CNTLID
 */
struct nvme_lm_pf_info {
	u32	max_transfer;
	u16	cntlid;
};

/**
 * enum nvme_lm_pf_event - PF controller events sent to the notifier chain
 * @NVME_LM_PF_RESETTING: the PF controller is about to be reset; commands
 *	in flight fail, new ones are refused until NVME_LM_PF_LIVE
 * @NVME_LM_PF_LIVE: the PF controller is live again after a reset
 * @NVME_LM_PF_REMOVING: the PF is being unbound from nvme
 */
enum nvme_lm_pf_event {
	NVME_LM_PF_RESETTING,
	NVME_LM_PF_LIVE,
	NVME_LM_PF_REMOVING,
};

#if IS_ENABLED(CONFIG_BLK_DEV_NVME) && IS_ENABLED(CONFIG_PCI_IOV)
int nvme_pci_vf_admin_cmd(struct pci_dev *vf, struct nvme_command *cmd,
			  void *buf, unsigned int len, u32 *dw0, u32 *dw1);
int nvme_pci_vf_pf_info(struct pci_dev *vf, struct nvme_lm_pf_info *info);
int nvme_pci_register_pf_notifier(struct notifier_block *nb);
void nvme_pci_unregister_pf_notifier(struct notifier_block *nb);
#endif

#endif /* _LINUX_NVME_LM_H */
