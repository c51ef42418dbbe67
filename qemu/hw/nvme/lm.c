// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * QEMU NVM Express: Host Managed Live Migration (TP4159)
 *
 * Migration Management Controller (MMC) model.  A PF created with
 * "hmlms=on" reports OACS.HMLMS and acts on its secondary controllers (the
 * VFs, "migratable controllers"):
 *
 *  - Migration Send (41h): Suspend, Resume, Set Controller State
 *  - Migration Receive (42h): Get Controller State
 *  - Track Send (3Dh): Log User Data Changes, Track Memory Changes
 *  - Track Receive (3Eh): Tracked Memory Changes
 *  - Controller Data Queue (45h) and Set/Get Features FID 21h
 *  - Identify CNS 20h (Supported Controller State Formats)
 *
 * The controller state is the NVMe defined state (version 0: I/O SQs and
 * CQs) plus a vendor specific part (identified by NVME_LM_VS_UUID) that
 * carries everything else a passthrough guest needs: registers, admin
 * queues, feature values, outstanding AERs, queued events, shadow doorbell
 * buffers and completions not yet posted.
 *
 * All of this runs in the main loop under the BQL.
 */

#include "qemu/osdep.h"
#include "qemu/bitmap.h"
#include "qemu/bitops.h"
#include "qemu/log.h"
#include "qemu/main-loop.h"
#include "qemu/timer.h"
#include "qapi/error.h"
#include "qapi/visitor.h"
#include "system/block-backend.h"
#include "system/dma.h"
#include "exec/memory.h"
#include "hw/pci/msix.h"
#include "hw/pci/pcie_sriov.h"

#include "nvme.h"
#include "lm.h"
#include "trace.h"

/* ------------------------------------------------------------------------ */
/* Wire formats                                                             */
/* ------------------------------------------------------------------------ */

/* Vendor specific controller state UUID f0714064-d3a4-4d67-8de0-a637d014feb8 */
static const uint8_t nvme_lm_vs_uuid[16] = {
    0xf0, 0x71, 0x40, 0x64, 0xd3, 0xa4, 0x4d, 0x67,
    0x8d, 0xe0, 0xa6, 0x37, 0xd0, 0x14, 0xfe, 0xb8,
};

#define NVME_LM_NVMECS_VERSION      0x0000  /* CNS 20h index 1 */
#define NVME_LM_VS_MAGIC            0x4d4c4551  /* "QELM" */
#define NVME_LM_VS_VERSION          2   /* what Get produces */
#define NVME_LM_VS_VERSION_1        1   /* still accepted by Set */

/* Migration Send SEL, Migration Receive SEL, Track Send SEL, CDQ SEL */
enum {
    NVME_LM_SEND_SUSPEND    = 0x0,
    NVME_LM_SEND_RESUME     = 0x1,
    NVME_LM_SEND_SET_STATE  = 0x2,
};

enum {
    NVME_LM_SEQIND_MIDDLE   = 0x0,
    NVME_LM_SEQIND_FIRST    = 0x1,
    NVME_LM_SEQIND_LAST     = 0x2,
    NVME_LM_SEQIND_ONLY     = 0x3,
};

enum {
    NVME_LM_STYPE_NOTIFY    = 0x0,
    NVME_LM_STYPE_SUSPEND   = 0x1,
};

enum {
    NVME_LM_TRACK_LOG_USER_DATA = 0x0,
    NVME_LM_TRACK_MEMORY        = 0x1,
};

enum {
    NVME_LM_CDQ_CREATE = 0x0,
    NVME_LM_CDQ_DELETE = 0x1,
};

/* LBA Migration Queue Entry Type 0, byte 31 (LBAMQA) */
#define NVME_LM_MQE_CDQP            0x01
#define NVME_LM_MQE_ESA_SHIFT       1
#define NVME_LM_MQE_ESA_MASK        (0x7 << NVME_LM_MQE_ESA_SHIFT)
#define NVME_LM_MQE_DLBA            0x20
#define NVME_LM_MQE_LBACIR_SHIFT    6

enum {
    NVME_LM_ESA_NONE        = 0x0,
    NVME_LM_ESA_FIRST       = 0x1,
    NVME_LM_ESA_STOPPED     = 0x2,
    NVME_LM_ESA_SUSPENDED   = 0x3,
    NVME_LM_ESA_FULL        = 0x7,
};

enum {
    NVME_LM_LBACIR_RANGE    = 0x0,
    NVME_LM_LBACIR_NSID     = 0x1,
    NVME_LM_LBACIR_NONE     = 0x2,
};

#define NVME_LM_TRATTR_THMCS        0x01
#define NVME_LM_TRATTR_TUDCS        0x02

#define NVME_LM_TMC_MTR             0x01
#define NVME_LM_TMC_SUSP            0x02

/* Controller State data structure header (48 bytes) */
typedef struct QEMU_PACKED NvmeLmStateHdr {
    uint16_t ver;
    uint8_t  csattr;
    uint8_t  rsvd3[13];
    uint64_t nvmecss[2];    /* dwords, 128-bit */
    uint64_t vss[2];        /* dwords, 128-bit */
} NvmeLmStateHdr;

/* NVMe Controller State, version 0 */
typedef struct QEMU_PACKED NvmeLmNvmeState {
    uint16_t ver;
    uint16_t niosq;
    uint16_t niocq;
    uint16_t rsvd6;
} NvmeLmNvmeState;

typedef struct QEMU_PACKED NvmeLmSqState {
    uint64_t prp1;
    uint16_t qsize;
    uint16_t qid;
    uint16_t cqid;
    uint16_t attr;          /* bit 0 PC, bits 2:1 QPRIO */
    uint16_t head;
    uint16_t tail;
    uint32_t rsvd20;
} NvmeLmSqState;

typedef struct QEMU_PACKED NvmeLmCqState {
    uint64_t prp1;
    uint16_t qsize;
    uint16_t qid;
    uint16_t head;
    uint16_t tail;
    uint32_t attr;          /* bit 0 PC, 1 IEN, 2 S0PT, 31:16 IV */
    uint32_t rsvd20;
} NvmeLmCqState;

#define NVME_LM_QA_PC               (1 << 0)
#define NVME_LM_CQA_IEN             (1 << 1)
#define NVME_LM_CQA_S0PT            (1 << 2)
#define NVME_LM_CQA_IV_SHIFT        16

/* Vendor specific state, version 1: fixed header (128 bytes) */
typedef struct QEMU_PACKED NvmeLmVsHdr {
    uint32_t magic;             /*   0 */
    uint16_t version;           /*   4 */
    uint16_t hdrlen;            /*   6 */
    uint32_t size;              /*   8 */
    uint16_t cntlid;            /*  12 */
    uint16_t flags;             /*  14 */
    uint32_t cc;                /*  16 */
    uint32_t aqa;               /*  20 */
    uint64_t asq;               /*  24 */
    uint64_t acq;               /*  32 */
    uint32_t intms;             /*  40 */
    uint32_t csts;              /*  44 */
    uint16_t asq_head;          /*  48 */
    uint16_t asq_tail;          /*  50 */
    uint16_t acq_head;          /*  52 */
    uint16_t acq_tail;          /*  54 */
    uint8_t  acq_phase;         /*  56 */
    uint8_t  aer_mask;          /*  57 */
    uint16_t naer;              /*  58 */
    uint16_t nevt;              /*  60 */
    uint16_t rsvd62;            /*  62 */
    uint16_t conf_ioqpairs;     /*  64 */
    uint16_t conf_msix_qsize;   /*  66 */
    uint32_t irq_status;        /*  68 */
    uint64_t dbbuf_dbs;         /*  72 */
    uint64_t dbbuf_eis;         /*  80 */
    uint32_t async_config;      /*  88 */
    uint16_t temp_thresh_hi;    /*  92 */
    uint16_t temp_thresh_low;   /*  94 */
    uint64_t timestamp;         /*  96 */
    uint8_t  vwc;               /* 104 */
    uint8_t  dn;                /* 105 */
    uint8_t  hbs_acre;          /* 106 */
    uint8_t  hbs_etdas;         /* 107 */
    uint8_t  hbs_lbafee;        /* 108 */
    uint8_t  rsvd109;           /* 109 */
    uint16_t hbs_cdfe;          /* 110 */
    uint32_t arbitration;       /* 112 */
    uint32_t int_coalescing;    /* 116 */
    uint32_t num_queues;        /* 120 */
    uint32_t ncqe;              /* 124 */
} NvmeLmVsHdr;

#define NVME_LM_VS_DBBUF            (1 << 0)
#define NVME_LM_VS_QS_CREATED       (1 << 1)
#define NVME_LM_VS_SUSPENDED        (1 << 2)
#define NVME_LM_VS_TS_HOST          (1 << 3)

/* Vendor specific state, version 2: the version 1 header, then this */
typedef struct QEMU_PACKED NvmeLmVsHdr2 {
    uint16_t nchns;             /* 128: Changed Namespace List entries */
    uint16_t nerr;              /* 130: Error Recovery entries */
    uint32_t rsvd132;           /* 132 */
} NvmeLmVsHdr2;

/* One namespace's Error Recovery feature (05h) value */
typedef struct QEMU_PACKED NvmeLmVsErrRec {
    uint32_t nsid;
    uint32_t err_rec;           /* CDW11 as set: DULBE bit 16, TLER 15:0 */
} NvmeLmVsErrRec;

typedef struct QEMU_PACKED NvmeLmVsEvent {
    uint8_t  type;
    uint8_t  info;
    uint8_t  lid;
    uint8_t  rsvd3;
    uint32_t dw1;
} NvmeLmVsEvent;

typedef struct QEMU_PACKED NvmeLmVsCqe {
    uint16_t cqid;
    uint16_t sqid;
    uint16_t cid;
    uint16_t status;            /* CQE status field bits 15:1 */
    uint32_t dw0;
    uint32_t dw1;
} NvmeLmVsCqe;

/* Track Send, Track Memory Changes data */
typedef struct QEMU_PACKED NvmeLmTrackMem {
    uint8_t  ver;
    uint8_t  rsvd1[2];
    uint8_t  rmrtg;
    uint32_t rnmrtd;
} NvmeLmTrackMem;

typedef struct QEMU_PACKED NvmeLmMrtd {
    uint64_t saddr;
    uint32_t len;
} NvmeLmMrtd;

/* Track Receive, Tracked Memory Changes data */
typedef struct QEMU_PACKED NvmeLmTracked {
    uint8_t  ver;
    uint8_t  attrb;
    uint16_t cntlid;
    uint32_t ntmcd;
    uint16_t rpmpg;
    uint8_t  rsvd10[6];
} NvmeLmTracked;

typedef struct QEMU_PACKED NvmeLmTmcd {
    uint64_t saddr;
    uint32_t len;
    uint32_t rsvd12;
} NvmeLmTmcd;

/* LBA Migration Queue Entry Type 0 */
typedef struct QEMU_PACKED NvmeLmMqe {
    uint32_t nsid;
    uint32_t nlb;
    uint64_t slba;
    uint8_t  rsvd16[15];
    uint8_t  lbamqa;
} NvmeLmMqe;

/* Get Features FID 21h data */
typedef struct QEMU_PACKED NvmeLmCdqFeat {
    uint32_t hp;
    uint32_t tpt;
    uint8_t  rsvd8[504];
} NvmeLmCdqFeat;

QEMU_BUILD_BUG_ON(sizeof(NvmeLmStateHdr) != 48);
QEMU_BUILD_BUG_ON(sizeof(NvmeLmNvmeState) != 8);
QEMU_BUILD_BUG_ON(sizeof(NvmeLmSqState) != 24);
QEMU_BUILD_BUG_ON(sizeof(NvmeLmCqState) != 24);
QEMU_BUILD_BUG_ON(sizeof(NvmeLmVsHdr) != 128);
QEMU_BUILD_BUG_ON(sizeof(NvmeLmVsHdr) + sizeof(NvmeLmVsHdr2) != 136);
QEMU_BUILD_BUG_ON(sizeof(NvmeLmVsErrRec) != 8);
QEMU_BUILD_BUG_ON(sizeof(NvmeLmVsEvent) != 8);
QEMU_BUILD_BUG_ON(sizeof(NvmeLmVsCqe) != 16);
QEMU_BUILD_BUG_ON(sizeof(NvmeLmTrackMem) != 8);
QEMU_BUILD_BUG_ON(sizeof(NvmeLmMrtd) != 12);
QEMU_BUILD_BUG_ON(sizeof(NvmeLmTracked) != 16);
QEMU_BUILD_BUG_ON(sizeof(NvmeLmTmcd) != 16);
QEMU_BUILD_BUG_ON(sizeof(NvmeLmMqe) != 32);
QEMU_BUILD_BUG_ON(sizeof(NvmeLmCdqFeat) != 512);

/* ------------------------------------------------------------------------ */
/* Model state                                                              */
/* ------------------------------------------------------------------------ */

/* Largest number of granules tracked for one controller (32 MiB bitmap) */
#define NVME_LM_TRACK_MAX_BITS      (1ULL << 28)

/* NIOSQ of the NVMe controller state, after the 48-byte header */
#define NVME_LM_NIOSQ_OFFSET        (48 + 2)

/* Most descriptors returned by one Track Receive */
#define NVME_LM_TRACK_MAX_REPORT    (1U << 16)

typedef enum NvmeLmFault {
    NVME_LM_FAULT_NONE,
    NVME_LM_FAULT_SUSPEND,
    NVME_LM_FAULT_RESUME,
    NVME_LM_FAULT_GET_STATE,
    NVME_LM_FAULT_SET_STATE,
    NVME_LM_FAULT_TRACK_SEND,
    NVME_LM_FAULT_TRACK_RECV,
    NVME_LM_FAULT_IDENTIFY_CSF,
    NVME_LM_FAULT_CORRUPT_STATE,
    NVME_LM_FAULT_IDENTIFY,
    NVME_LM_FAULT__MAX,
} NvmeLmFault;

static const char *const nvme_lm_fault_names[NVME_LM_FAULT__MAX] = {
    [NVME_LM_FAULT_NONE]        = "none",
    [NVME_LM_FAULT_SUSPEND]     = "suspend",
    [NVME_LM_FAULT_RESUME]      = "resume",
    [NVME_LM_FAULT_GET_STATE]   = "get-state",
    [NVME_LM_FAULT_SET_STATE]   = "set-state",
    [NVME_LM_FAULT_TRACK_SEND]  = "track-send",
    [NVME_LM_FAULT_TRACK_RECV]  = "track-recv",
    [NVME_LM_FAULT_IDENTIFY_CSF] = "identify-csf",
    [NVME_LM_FAULT_CORRUPT_STATE] = "corrupt-state",
    [NVME_LM_FAULT_IDENTIFY]    = "identify",
};

typedef enum NvmeLmSusp {
    NVME_LM_ACTIVE,
    NVME_LM_SUSPENDING,
    NVME_LM_SUSPENDED,
} NvmeLmSusp;

typedef struct NvmeLmRange {
    uint64_t saddr;             /* bytes, aligned to the granule */
    uint64_t end;               /* exclusive */
    uint64_t nbits;             /* granules */
    unsigned long *bitmap;
} NvmeLmRange;

typedef struct NvmeLmTrack {
    uint8_t  gran;              /* RMRTG: granule = 4 KiB << gran */
    unsigned shift;
    uint32_t nr;
    NvmeLmRange *ranges;        /* ascending, not overlapping */
    uint32_t cur_range;         /* where the next report starts */
    uint64_t cur_bit;
} NvmeLmTrack;

typedef struct NvmeCdq {
    QTAILQ_ENTRY(NvmeCdq) entry;
    NvmeCtrl *owner;            /* the MMC that created it */
    NvmeCtrl *target;           /* CQS: the migratable controller */
    uint16_t cdqid;
    uint16_t cntlid;
    bool     pc;
    uint64_t base;              /* PC=1 */
    uint64_t *prps;             /* PC=0 */
    uint32_t nprps;
    uint32_t nranges;
    uint32_t psz;
    uint32_t nslots;            /* 32-byte entries */
    uint32_t head;
    uint32_t tail;
    uint8_t  phase;             /* CDQP value of the next post */
    bool     etpt;
    uint32_t tpt;
    bool     logging;
} NvmeCdq;

typedef struct NvmeLmSetSeq {
    bool     active;
    uint8_t  csvi;
    uint8_t  csuuidi;
    uint8_t  *buf;
    uint64_t len;               /* bytes received contiguously from 0 */
} NvmeLmSetSeq;

typedef struct NvmeLmSuspendReq {
    NvmeRequest *req;
    bool dudmq;
} NvmeLmSuspendReq;

typedef struct NvmeLm {
    NvmeCtrl *n;

    /* properties */
    bool     hmlms;
    uint32_t cmmrtd;
    uint32_t nmmrtd;
    uint32_t minmrtg;
    uint32_t maxmrtg;
    uint32_t mcudmq;
    uint32_t mnsudmq;
    uint32_t mcmr;
    uint32_t nmcmr;
    uint32_t mcdqpc;
    NvmeLmFault fault_cmd;
    uint32_t fault_count;
    uint32_t fault_skip;
    uint32_t fault_status;
    uint32_t fault_seen[NVME_LM_FAULT__MAX]; /* commands seen, per kind */
    uint32_t suspend_delay;     /* ms a Suspend is held at least (MMC) */
    uint32_t abort_suspend;     /* Abort ends a held Suspend (MMC) */
    uint32_t hold_over_reset;   /* a target's CLR keeps the hold (MMC) */
    uint32_t ctrl_resets;       /* controller level resets seen */

    /* MMC (PF) side */
    bool     mmc;
    QTAILQ_HEAD(, NvmeCdq) cdqs;

    /* migratable controller side (kept on the VF's own NvmeLm) */
    NvmeLmSusp state;
    uint64_t suspend_ts;        /* Timestamp feature value at suspend */
    uint32_t suspend_nevt;      /* events queued at suspend */
    GSList   *suspend_reqs;     /* NvmeLmSuspendReq, oldest first */
    QEMUBH   *quiesce_bh;
    QEMUTimer *hold_timer;      /* ends the hold of lm-suspend-delay */
    int64_t  hold_until;        /* QEMU_CLOCK_VIRTUAL ms, 0: no hold */
    bool     in_commit;         /* Set Controller State being committed */
    NvmeLmTrack *track;
    NvmeCdq  *udmq;
    NvmeLmSetSeq set;
} NvmeLm;

typedef struct NvmeLmUintProp {
    const char *name;
    const char *type;
    size_t   offset;
    uint32_t def;
    uint32_t min;
    uint32_t max;
    bool     runtime;           /* may be changed after realize */
    const char *desc;
} NvmeLmUintProp;

static const NvmeLmUintProp nvme_lm_uint_props[] = {
    { "lm.cmmrtd", "uint32", offsetof(NvmeLm, cmmrtd),
      256, 1, UINT16_MAX, false,
      "CMMRTD: memory range tracking descriptors per controller" },
    { "lm.nmmrtd", "uint32", offsetof(NvmeLm, nmmrtd),
      512, 1, UINT16_MAX, false,
      "NMMRTD: memory range tracking descriptors in the subsystem" },
    { "lm.minmrtg", "uint32", offsetof(NvmeLm, minmrtg),
      0, 0, 31, false,
      "MINMRTG: finest tracking granularity, 4 KiB << n" },
    { "lm.maxmrtg", "uint32", offsetof(NvmeLm, maxmrtg),
      8, 0, 31, false,
      "MAXMRTG: coarsest tracking granularity, 4 KiB << n" },
    { "lm.mcudmq", "uint32", offsetof(NvmeLm, mcudmq),
      8, 1, UINT16_MAX, false,
      "MCUDMQ: user data migration queues of this controller" },
    { "lm.mnsudmq", "uint32", offsetof(NvmeLm, mnsudmq),
      8, 1, UINT16_MAX, false,
      "MNSUDMQ: user data migration queues in the subsystem" },
    { "lm.mcmr", "uint32", offsetof(NvmeLm, mcmr),
      512, 1, UINT16_MAX, false,
      "MCMR: memory ranges of one controller data queue" },
    { "lm.nmcmr", "uint32", offsetof(NvmeLm, nmcmr),
      1024, 1, UINT16_MAX, false,
      "NMCMR: controller data queue memory ranges in the subsystem" },
    { "lm.mcdqpc", "uint32", offsetof(NvmeLm, mcdqpc),
      512, 1, UINT16_MAX, false,
      "MCDQPC: PRP list entries of one controller data queue" },
    { "lm-fault-count", "uint32", offsetof(NvmeLm, fault_count),
      0, 0, UINT32_MAX, true,
      "number of lm-fault-cmd commands still to fail" },
    { "lm-fault-skip", "uint32", offsetof(NvmeLm, fault_skip),
      0, 0, UINT32_MAX, true,
      "lm-fault-cmd commands that complete normally before the first "
      "failure" },
    { "lm-fault-status", "uint16", offsetof(NvmeLm, fault_status),
      NVME_INTERNAL_DEV_ERROR, 1, 0x7fff, true,
      "NVMe status (SCT/SC/DNR) of injected failures" },
    { "lm-suspend-delay", "uint32", offsetof(NvmeLm, suspend_delay),
      0, 0, 3600000, true,
      "fault injection: ms a Suspend of a secondary controller is held "
      "before it may complete (0: not held)" },
    { "lm-abort-suspend", "uint32", offsetof(NvmeLm, abort_suspend),
      1, 0, 1, true,
      "1: an Abort ends a Suspend still in progress, 0: Abort leaves it" },
    { "lm-hold-over-reset", "uint32", offsetof(NvmeLm, hold_over_reset),
      0, 0, 1, true,
      "1: a controller level reset of the target does not end the hold of "
      "lm-suspend-delay, 0: it does" },
    { "lm-ctrl-resets", "uint32", offsetof(NvmeLm, ctrl_resets),
      0, 0, UINT32_MAX, true,
      "controller level resets of this controller (statistics)" },
};

static const char *nvme_lm_state_name(NvmeLmSusp state)
{
    switch (state) {
    case NVME_LM_ACTIVE:
        return "active";
    case NVME_LM_SUSPENDING:
        return "suspending";
    case NVME_LM_SUSPENDED:
        return "suspended";
    }

    return "?";
}

static inline uint32_t *nvme_lm_uint_field(NvmeLm *lm, const NvmeLmUintProp *p)
{
    return (uint32_t *)((uint8_t *)lm + p->offset);
}

/* ------------------------------------------------------------------------ */
/* Helpers                                                                  */
/* ------------------------------------------------------------------------ */

static inline bool nvme_lm_is_mmc(NvmeCtrl *n)
{
    return n->lm && n->lm->mmc;
}

/* The MMC (PF with hmlms=on) a VF belongs to, or NULL */
static NvmeCtrl *nvme_lm_mmc_of(NvmeCtrl *n)
{
    PCIDevice *pci = PCI_DEVICE(n);
    PCIDevice *pf;

    if (!pci_is_vf(pci)) {
        return NULL;
    }

    pf = pcie_sriov_get_pf(pci);
    if (!pf || !nvme_lm_is_mmc(NVME(pf))) {
        return NULL;
    }

    return NVME(pf);
}

/*
 * The migratable controller named by CNTLID: a secondary controller of this
 * MMC whose VF is enabled.  The MMC itself and anything else is NULL
 * (Invalid Controller Identifier).
 */
static NvmeCtrl *nvme_lm_target(NvmeCtrl *n, uint16_t cntlid)
{
    NvmeSecCtrlEntry *sctrl;
    PCIDevice *vf;
    uint16_t vfn;

    if (cntlid == n->cntlid) {
        return NULL;
    }

    sctrl = nvme_sctrl_for_cntlid(n, cntlid);
    if (!sctrl) {
        return NULL;
    }

    vfn = le16_to_cpu(sctrl->vfn);
    if (!vfn) {
        return NULL;
    }

    vf = pcie_sriov_get_vf_at_index(PCI_DEVICE(n), vfn - 1);
    if (!vf || !NVME(vf)->lm) {
        return NULL;
    }

    return NVME(vf);
}

/* Every VF object of a PF, enabled or not */
static NvmeCtrl *nvme_lm_vf_obj(NvmeCtrl *pf, unsigned i)
{
    PCIDevice *pci = PCI_DEVICE(pf);

    if (pci_is_vf(pci) || !pci->exp.sriov_cap || !pci->exp.sriov_pf.vf ||
        i >= pf->params.sriov_max_vfs) {
        return NULL;
    }

    return pci->exp.sriov_pf.vf[i] ? NVME(pci->exp.sriov_pf.vf[i]) : NULL;
}

static inline bool nvme_lm_enabled(NvmeCtrl *n)
{
    return NVME_CC_EN(ldl_le_p(&n->bar.cc)) && n->sq[0] && n->cq[0];
}

static bool nvme_lm_has_ioq(NvmeCtrl *n)
{
    for (unsigned i = 1; i <= n->params.max_ioqpairs; i++) {
        if (n->sq[i] || n->cq[i]) {
            return true;
        }
    }

    return false;
}

static uint16_t nvme_lm_check_mdts(NvmeCtrl *n, uint64_t len)
{
    uint8_t mdts = n->params.mdts;

    if (mdts && len > ((uint64_t)n->page_size << mdts)) {
        return NVME_INVALID_FIELD | NVME_DNR;
    }

    return NVME_SUCCESS;
}

/* Move data between buf and the command's data pointer */
static uint16_t nvme_lm_xfer(NvmeCtrl *n, NvmeRequest *req, void *buf,
                             uint32_t len, NvmeTxDirection dir)
{
    NvmeSg sg = {};
    uint16_t status;

    if (!len) {
        return NVME_SUCCESS;
    }

    status = nvme_map_dptr(n, &sg, len, &req->cmd);
    if (status) {
        return status;
    }

    if (sg.flags & NVME_SG_DMA) {
        dma_addr_t residual = 0;

        if (dir == NVME_TX_DIRECTION_TO_DEVICE) {
            dma_buf_write(buf, len, &residual, &sg.qsg, MEMTXATTRS_UNSPECIFIED);
        } else {
            dma_buf_read(buf, len, &residual, &sg.qsg, MEMTXATTRS_UNSPECIFIED);
        }

        if (residual) {
            status = NVME_INVALID_FIELD | NVME_DNR;
        }

        qemu_sglist_destroy(&sg.qsg);
    } else {
        size_t bytes;

        if (dir == NVME_TX_DIRECTION_TO_DEVICE) {
            bytes = qemu_iovec_to_buf(&sg.iov, 0, buf, len);
        } else {
            bytes = qemu_iovec_from_buf(&sg.iov, 0, buf, len);
        }

        if (bytes != len) {
            status = NVME_INVALID_FIELD | NVME_DNR;
        }

        qemu_iovec_destroy(&sg.iov);
    }

    return status;
}

static inline uint16_t nvme_lm_c2h(NvmeCtrl *n, NvmeRequest *req, void *buf,
                                   uint32_t len)
{
    return nvme_lm_xfer(n, req, buf, len, NVME_TX_DIRECTION_FROM_DEVICE);
}

static inline uint16_t nvme_lm_h2c(NvmeCtrl *n, NvmeRequest *req, void *buf,
                                   uint32_t len)
{
    return nvme_lm_xfer(n, req, buf, len, NVME_TX_DIRECTION_TO_DEVICE);
}

/* Queue an asynchronous event with completion dword 1 on controller n */
static void nvme_lm_enqueue_event(NvmeCtrl *n, uint8_t type, uint8_t info,
                                  uint8_t lid, uint32_t dw1)
{
    NvmeAsyncEvent *event;

    if (n->aer_queued >= n->params.aer_max_queued) {
        return;
    }

    event = g_new0(NvmeAsyncEvent, 1);
    event->result.event_type = type;
    event->result.event_info = info;
    event->result.log_page = lid;
    event->dw1 = dw1;

    QTAILQ_INSERT_TAIL(&n->aer_queue, event, entry);
    n->aer_queued++;

    nvme_process_aers(n);
}

static void nvme_lm_clear_oneshot(NvmeCtrl *n, uint8_t info, uint32_t dw1)
{
    NvmeAsyncEvent *event, *next;

    QTAILQ_FOREACH_SAFE(event, &n->aer_queue, entry, next) {
        if (event->result.event_type == NVME_AER_TYPE_ONE_SHOT &&
            event->result.event_info == info && event->dw1 == dw1) {
            QTAILQ_REMOVE(&n->aer_queue, event, entry);
            n->aer_queued--;
            g_free(event);
        }
    }
}

static void nvme_lm_req_init(NvmeRequest *req)
{
    req->ns = NULL;
    req->opaque = NULL;
    req->aiocb = NULL;
    req->atomic_write = false;
    req->status = NVME_SUCCESS;
    memset(&req->cqe, 0, sizeof(req->cqe));
    memset(&req->cmd, 0, sizeof(req->cmd));
}

/* ------------------------------------------------------------------------ */
/* Fault injection                                                          */
/* ------------------------------------------------------------------------ */

static NvmeLmFault nvme_lm_fault_kind(uint8_t opcode, uint8_t sel)
{
    switch (opcode) {
    case NVME_ADM_CMD_MIGRATION_SEND:
        switch (sel) {
        case NVME_LM_SEND_SUSPEND:
            return NVME_LM_FAULT_SUSPEND;
        case NVME_LM_SEND_RESUME:
            return NVME_LM_FAULT_RESUME;
        case NVME_LM_SEND_SET_STATE:
            return NVME_LM_FAULT_SET_STATE;
        }
        return NVME_LM_FAULT_NONE;
    case NVME_ADM_CMD_MIGRATION_RECV:
        return NVME_LM_FAULT_GET_STATE;
    case NVME_ADM_CMD_TRACK_SEND:
        return NVME_LM_FAULT_TRACK_SEND;
    case NVME_ADM_CMD_TRACK_RECV:
        return NVME_LM_FAULT_TRACK_RECV;
    default:
        return NVME_LM_FAULT_NONE;
    }
}

static bool nvme_lm_fault_hit(NvmeLm *lm, NvmeLmFault kind)
{
    if (kind != NVME_LM_FAULT_NONE) {
        lm->fault_seen[kind]++;
    }

    if (kind == NVME_LM_FAULT_NONE || lm->fault_cmd != kind ||
        !lm->fault_count) {
        return false;
    }

    if (lm->fault_skip) {
        lm->fault_skip--;
        return false;
    }

    lm->fault_count--;
    trace_pci_nvme_lm_fault(nvme_lm_fault_names[kind], lm->fault_status,
                            lm->fault_count);

    return true;
}

/* ------------------------------------------------------------------------ */
/* Host memory write tracking                                               */
/* ------------------------------------------------------------------------ */

static void nvme_lm_track_free(NvmeLmTrack *tr)
{
    if (!tr) {
        return;
    }

    for (uint32_t i = 0; i < tr->nr; i++) {
        g_free(tr->ranges[i].bitmap);
    }

    g_free(tr->ranges);
    g_free(tr);
}

void nvme_lm_track_write(NvmeCtrl *n, hwaddr addr, uint64_t len)
{
    NvmeLmTrack *tr;
    uint64_t end;
    uint32_t lo, hi;

    if (!n->lm || !n->lm->track || !len) {
        return;
    }

    tr = n->lm->track;
    end = addr + len;
    if (end < addr) {
        end = UINT64_MAX;
    }

    /* first range that ends after addr */
    lo = 0;
    hi = tr->nr;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;

        if (tr->ranges[mid].end <= addr) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }

    for (uint32_t i = lo; i < tr->nr && tr->ranges[i].saddr < end; i++) {
        NvmeLmRange *r = &tr->ranges[i];
        uint64_t s = MAX(addr, r->saddr);
        uint64_t e = MIN(end, r->end);
        uint64_t first = (s - r->saddr) >> tr->shift;
        uint64_t last = (e - 1 - r->saddr) >> tr->shift;

        bitmap_set(r->bitmap, first, last - first + 1);
    }
}

void nvme_lm_track_sg(NvmeCtrl *n, QEMUSGList *qsg, uint64_t len)
{
    if (!n->lm || !n->lm->track) {
        return;
    }

    for (int i = 0; i < qsg->nsg && len; i++) {
        uint64_t l = MIN(len, qsg->sg[i].len);

        nvme_lm_track_write(n, qsg->sg[i].base, l);
        len -= l;
    }
}

typedef struct NvmeLmReadCtx {
    NvmeCtrl *n;
    QEMUSGList *qsg;
    BlockCompletionFunc *cb;
    void *opaque;
} NvmeLmReadCtx;

static void nvme_lm_blk_read_cb(void *opaque, int ret)
{
    NvmeLmReadCtx *ctx = opaque;
    BlockCompletionFunc *cb = ctx->cb;
    void *cb_opaque = ctx->opaque;

    /* the data has landed (or partially so): record every sg entry */
    nvme_lm_track_sg(ctx->n, ctx->qsg, ctx->qsg->size);
    g_free(ctx);

    cb(cb_opaque, ret);
}

BlockAIOCB *nvme_lm_dma_blk_read(NvmeCtrl *n, BlockBackend *blk,
                                 QEMUSGList *qsg, int64_t offset,
                                 uint32_t align, BlockCompletionFunc *cb,
                                 void *opaque)
{
    NvmeLmReadCtx *ctx;

    /* only controllers that an MMC may track pay for the wrapper */
    if (!nvme_lm_mmc_of(n)) {
        return dma_blk_read(blk, qsg, offset, align, cb, opaque);
    }

    ctx = g_new(NvmeLmReadCtx, 1);
    ctx->n = n;
    ctx->qsg = qsg;
    ctx->cb = cb;
    ctx->opaque = opaque;

    return dma_blk_read(blk, qsg, offset, align, nvme_lm_blk_read_cb, ctx);
}

/* ------------------------------------------------------------------------ */
/* DMA the model does on its own (CDQ entries, shadow doorbells)            */
/* ------------------------------------------------------------------------ */

/*
 * Whether [@addr, @addr + @len) of @n's DMA address space (through the
 * IOMMU, if any) is writable guest RAM: not MMIO (a BAR of this or
 * another controller), not a ROM, not a RAM device.
 */
static bool nvme_lm_dma_is_ram(NvmeCtrl *n, uint64_t addr, uint64_t len)
{
    AddressSpace *as = pci_get_address_space(PCI_DEVICE(n));

    if (addr + len < addr) {
        return false;
    }

    RCU_READ_LOCK_GUARD();
    while (len) {
        hwaddr xlat, l = len;
        MemoryRegion *mr = address_space_translate(as, addr, &xlat, &l, true,
                                                   MEMTXATTRS_UNSPECIFIED);

        if (!l || !memory_region_is_ram(mr) || mr->readonly ||
            memory_region_is_ram_device(mr) || memory_region_is_romd(mr)) {
            return false;
        }
        addr += l;
        len -= l;
    }

    return true;
}

/*
 * A DMA write the model makes on its own behalf, not for a command of the
 * controller doing it: it may run in another controller's context (a VF's
 * I/O completion posting into its MMC's CDQ).  The re-entrancy guards of
 * @n and of its MMC @mmc are engaged while it runs, so a write that lands
 * on a BAR of either (CC of the PF, say) is refused instead of resetting
 * the controller under the caller.  Only RAM is written.
 */
static MemTxResult nvme_lm_dma_write(NvmeCtrl *n, NvmeCtrl *mmc, uint64_t addr,
                                     const void *buf, uint64_t len)
{
    MemReentrancyGuard *g = &DEVICE(n)->mem_reentrancy_guard;
    MemReentrancyGuard *mg = mmc ? &DEVICE(mmc)->mem_reentrancy_guard : g;
    bool engaged = g->engaged_in_io, mengaged = mg->engaged_in_io;
    MemTxResult r;

    if (!nvme_lm_dma_is_ram(n, addr, len)) {
        trace_pci_nvme_lm_dma_not_ram(n->cntlid, addr, len);
        return MEMTX_DECODE_ERROR;
    }

    g->engaged_in_io = true;
    mg->engaged_in_io = true;
    r = pci_dma_write(PCI_DEVICE(n), addr, buf, len);
    mg->engaged_in_io = mengaged;
    g->engaged_in_io = engaged;

    return r;
}

/* ------------------------------------------------------------------------ */
/* Controller Data Queue                                                    */
/* ------------------------------------------------------------------------ */

static NvmeCdq *nvme_lm_cdq_find(NvmeCtrl *n, uint16_t cdqid)
{
    NvmeCdq *q;

    QTAILQ_FOREACH(q, &n->lm->cdqs, entry) {
        if (q->cdqid == cdqid) {
            return q;
        }
    }

    return NULL;
}

static void nvme_lm_cdq_free(NvmeCdq *q)
{
    trace_pci_nvme_lm_cdq_delete(q->cdqid, q->cntlid);
    QTAILQ_REMOVE(&q->owner->lm->cdqs, q, entry);

    if (q->target && q->target->lm && q->target->lm->udmq == q) {
        q->target->lm->udmq = NULL;
    }

    g_free(q->prps);
    g_free(q);
}

static uint32_t nvme_lm_cdq_used(NvmeCdq *q)
{
    return (q->tail + q->nslots - q->head) % q->nslots;
}

static uint64_t nvme_lm_cdq_slot_addr(NvmeCdq *q, uint32_t slot)
{
    uint64_t off = (uint64_t)slot * sizeof(NvmeLmMqe);

    if (q->pc) {
        return q->base + off;
    }

    return q->prps[off / q->psz] + off % q->psz;
}

/*
 * Post one entry (LBAMQA without CDQP).  The entry that leaves the queue
 * full is tagged ESA=111b, logging stops and a One-Shot "CDQ full" event is
 * raised on the MMC.  Posting into slot TPT fires the armed tail pointer
 * trigger.
 */
static void nvme_lm_cdq_post(NvmeCdq *q, NvmeLmMqe *e)
{
    NvmeCtrl *n = q->owner;
    uint32_t avail = q->nslots - 1 - nvme_lm_cdq_used(q);
    uint32_t slot = q->tail;
    uint64_t addr;
    bool full = false;

    if (!avail) {
        q->logging = false;
        return;
    }

    if (avail == 1) {
        uint8_t esa = (e->lbamqa & NVME_LM_MQE_ESA_MASK) >>
                      NVME_LM_MQE_ESA_SHIFT;

        /*
         * The entry that fills the queue ends logging with 111b, except
         * a stop or suspend marker, which keeps its meaning for a host
         * that drains up to it; the full event is raised either way.
         */
        if (esa != NVME_LM_ESA_STOPPED && esa != NVME_LM_ESA_SUSPENDED) {
            e->lbamqa &= ~NVME_LM_MQE_ESA_MASK;
            e->lbamqa |= NVME_LM_ESA_FULL << NVME_LM_MQE_ESA_SHIFT;
        }
        full = true;
    }

    e->lbamqa &= ~NVME_LM_MQE_CDQP;
    e->lbamqa |= q->phase & NVME_LM_MQE_CDQP;

    /* the byte holding the phase tag is written last */
    addr = nvme_lm_cdq_slot_addr(q, slot);
    if (nvme_lm_dma_write(n, n, addr, e, offsetof(NvmeLmMqe, lbamqa))) {
        qemu_log_mask(LOG_GUEST_ERROR, "nvme-lm: CDQ %u: write to 0x%"
                      PRIx64 " failed\n", q->cdqid, addr);
    }
    /* entry body visible before the phase tag that validates it */
    smp_wmb();
    if (nvme_lm_dma_write(n, n, addr + offsetof(NvmeLmMqe, lbamqa),
                          &e->lbamqa, 1)) {
        qemu_log_mask(LOG_GUEST_ERROR, "nvme-lm: CDQ %u: write to 0x%"
                      PRIx64 " failed\n", q->cdqid, addr);
    }

    q->tail++;
    if (q->tail == q->nslots) {
        q->tail = 0;
        q->phase ^= 1;
    }

    if (q->etpt && slot == q->tpt) {
        q->etpt = false;
        nvme_lm_enqueue_event(n, NVME_AER_TYPE_ONE_SHOT,
                              NVME_AER_INFO_ONE_SHOT_CDQ_TPT, 0, q->cdqid);
    }

    if (full) {
        trace_pci_nvme_lm_cdq_full(q->cdqid, q->cntlid);
        q->logging = false;
        nvme_lm_enqueue_event(n, NVME_AER_TYPE_ONE_SHOT,
                              NVME_AER_INFO_ONE_SHOT_CDQ_FULL, 0, q->cdqid);
    }
}

static void nvme_lm_cdq_post_marker(NvmeCdq *q, uint8_t esa)
{
    NvmeLmMqe e = {
        .lbamqa = (esa << NVME_LM_MQE_ESA_SHIFT) |
                  (NVME_LM_LBACIR_NONE << NVME_LM_MQE_LBACIR_SHIFT),
    };

    nvme_lm_cdq_post(q, &e);
}

static void nvme_lm_log_range(NvmeCdq *q, uint32_t nsid, uint64_t slba,
                              uint32_t nlb0, bool dealloc)
{
    NvmeLmMqe e = {
        .nsid = cpu_to_le32(nsid),
        .nlb = cpu_to_le32(nlb0),
        .slba = cpu_to_le64(slba),
        .lbamqa = (NVME_LM_LBACIR_RANGE << NVME_LM_MQE_LBACIR_SHIFT) |
                  (dealloc ? NVME_LM_MQE_DLBA : 0),
    };

    nvme_lm_cdq_post(q, &e);
}

static void nvme_lm_log_nsid(NvmeCdq *q, uint32_t nsid)
{
    NvmeLmMqe e = {
        .nsid = cpu_to_le32(nsid),
        .lbamqa = NVME_LM_LBACIR_NSID << NVME_LM_MQE_LBACIR_SHIFT,
    };

    nvme_lm_cdq_post(q, &e);
}

static unsigned nvme_lm_subsys_mmc_count(NvmeCtrl *n, bool ranges)
{
    NvmeSubsystem *subsys = n->subsys;
    unsigned count = 0;

    for (unsigned i = 0; i < ARRAY_SIZE(subsys->ctrls); i++) {
        NvmeCtrl *c = nvme_subsys_ctrl(subsys, i);
        NvmeCdq *q;

        if (!c || !nvme_lm_is_mmc(c)) {
            continue;
        }

        QTAILQ_FOREACH(q, &c->lm->cdqs, entry) {
            count += ranges ? q->nranges : 1;
        }
    }

    return count;
}

static uint16_t nvme_lm_cdq_create(NvmeCtrl *n, NvmeRequest *req)
{
    NvmeLm *lm = n->lm;
    NvmeIdCtrl *id = &n->id_ctrl;
    uint32_t dw10 = le32_to_cpu(req->cmd.cdw10);
    uint32_t dw11 = le32_to_cpu(req->cmd.cdw11);
    uint32_t cdqsize = le32_to_cpu(req->cmd.cdw12);
    uint64_t prp1 = le64_to_cpu(req->cmd.dptr.prp1);
    uint8_t qt = (dw10 >> 16) & 0xff;
    bool pc = dw11 & 0x1;
    uint16_t cntlid = dw11 >> 16;
    uint32_t psz = n->page_size;
    g_autofree uint64_t *prps = NULL;
    uint32_t nprps = 0, nranges = 1, nslots;
    unsigned count = 0;
    uint16_t cdqid;
    NvmeCtrl *t;
    NvmeCdq *q;

    if (qt != 0) {
        return NVME_INVALID_FIELD | NVME_DNR;
    }

    t = nvme_lm_target(n, cntlid);
    if (!t) {
        return NVME_INVALID_CTRL_ID | NVME_DNR;
    }

    if (!cdqsize || cdqsize % (sizeof(NvmeLmMqe) / 4)) {
        return NVME_INVALID_FIELD | NVME_DNR;
    }

    nslots = cdqsize / (sizeof(NvmeLmMqe) / 4);
    if (nslots < 2) {
        return NVME_INVALID_FIELD | NVME_DNR;
    }

    if (prp1 & (psz - 1)) {
        return NVME_INVALID_PRP_OFFSET | NVME_DNR;
    }

    if (t->lm->udmq) {
        return NVME_INVALID_FIELD | NVME_DNR;
    }

    QTAILQ_FOREACH(q, &lm->cdqs, entry) {
        count++;
    }

    if (count >= le16_to_cpu(id->mcudmq) ||
        nvme_lm_subsys_mmc_count(n, false) >= le16_to_cpu(id->mnsudmq)) {
        return NVME_NOT_ENOUGH_RESOURCES | NVME_DNR;
    }

    if (!pc) {
        uint64_t bytes = (uint64_t)nslots * sizeof(NvmeLmMqe);

        nprps = DIV_ROUND_UP(bytes, psz);
        if (nprps > le16_to_cpu(id->mcdqpc) || nprps > psz / sizeof(uint64_t)) {
            return NVME_INVALID_FIELD | NVME_DNR;
        }

        prps = g_new(uint64_t, nprps);
        if (pci_dma_read(PCI_DEVICE(n), prp1, prps,
                         nprps * sizeof(uint64_t))) {
            return NVME_DATA_TRAS_ERROR;
        }

        for (uint32_t i = 0; i < nprps; i++) {
            prps[i] = le64_to_cpu(prps[i]);
            if (prps[i] & (psz - 1)) {
                return NVME_INVALID_PRP_OFFSET | NVME_DNR;
            }

            if (i && prps[i] != prps[i - 1] + psz) {
                nranges++;
            }
        }
    }

    /* the queue must be host memory: not a BAR, not CMB/PMR */
    if (pc) {
        if (!nvme_lm_dma_is_ram(n, prp1, (uint64_t)nslots *
                                sizeof(NvmeLmMqe))) {
            trace_pci_nvme_lm_dma_not_ram(n->cntlid, prp1,
                                          (uint64_t)nslots * sizeof(NvmeLmMqe));
            return NVME_INVALID_FIELD | NVME_DNR;
        }
    } else {
        for (uint32_t i = 0; i < nprps; i++) {
            if (!nvme_lm_dma_is_ram(n, prps[i], psz)) {
                trace_pci_nvme_lm_dma_not_ram(n->cntlid, prps[i], psz);
                return NVME_INVALID_FIELD | NVME_DNR;
            }
        }
    }

    if (nranges > le16_to_cpu(id->mcmr) ||
        nvme_lm_subsys_mmc_count(n, true) + nranges >
        le16_to_cpu(id->nmcmr)) {
        return NVME_INVALID_FIELD | NVME_DNR;
    }

    for (cdqid = 1; cdqid; cdqid++) {
        if (!nvme_lm_cdq_find(n, cdqid)) {
            break;
        }
    }

    if (!cdqid) {
        return NVME_NOT_ENOUGH_RESOURCES | NVME_DNR;
    }

    q = g_new0(NvmeCdq, 1);
    q->owner = n;
    q->target = t;
    q->cdqid = cdqid;
    q->cntlid = cntlid;
    q->pc = pc;
    q->base = prp1;
    q->prps = g_steal_pointer(&prps);
    q->nprps = nprps;
    q->nranges = nranges;
    q->psz = psz;
    q->nslots = nslots;
    q->phase = 1;

    QTAILQ_INSERT_TAIL(&lm->cdqs, q, entry);
    t->lm->udmq = q;
    trace_pci_nvme_lm_cdq_create(cdqid, cntlid, nslots, pc);

    req->cqe.result = cpu_to_le32(cdqid);

    return NVME_SUCCESS;
}

static uint16_t nvme_lm_cdq(NvmeCtrl *n, NvmeRequest *req)
{
    uint32_t dw10 = le32_to_cpu(req->cmd.cdw10);
    uint32_t dw11 = le32_to_cpu(req->cmd.cdw11);
    NvmeCdq *q;

    switch (dw10 & 0xff) {
    case NVME_LM_CDQ_CREATE:
        return nvme_lm_cdq_create(n, req);
    case NVME_LM_CDQ_DELETE:
        q = nvme_lm_cdq_find(n, dw11 & 0xffff);
        if (!q) {
            return NVME_INVALID_CDQ | NVME_DNR;
        }

        nvme_lm_cdq_free(q);
        return NVME_SUCCESS;
    default:
        return NVME_INVALID_FIELD | NVME_DNR;
    }
}

uint16_t nvme_lm_set_feature_cdq(NvmeCtrl *n, NvmeRequest *req)
{
    uint32_t dw10 = le32_to_cpu(req->cmd.cdw10);
    uint32_t dw11 = le32_to_cpu(req->cmd.cdw11);
    uint32_t hp = le32_to_cpu(req->cmd.cdw12);
    uint32_t tpt = le32_to_cpu(req->cmd.cdw13);
    bool etpt = dw11 >> 31;
    NvmeCdq *q;

    if (!nvme_lm_is_mmc(n)) {
        return NVME_INVALID_FIELD | NVME_DNR;
    }

    if (NVME_SETFEAT_SAVE(dw10)) {
        return NVME_FID_NOT_SAVEABLE | NVME_DNR;
    }

    q = nvme_lm_cdq_find(n, dw11 & 0xffff);
    if (!q) {
        return NVME_INVALID_CDQ | NVME_DNR;
    }

    /* HP must be a posted slot, or the tail (everything consumed) */
    if (hp >= q->nslots ||
        (hp + q->nslots - q->head) % q->nslots > nvme_lm_cdq_used(q)) {
        return NVME_INVALID_FIELD | NVME_DNR;
    }

    if (etpt && tpt >= q->nslots) {
        return NVME_INVALID_FIELD | NVME_DNR;
    }

    q->head = hp;
    q->etpt = etpt;
    q->tpt = etpt ? tpt : 0;

    /* a successful Set clears a pending tail pointer event */
    nvme_lm_clear_oneshot(n, NVME_AER_INFO_ONE_SHOT_CDQ_TPT, q->cdqid);

    return NVME_SUCCESS;
}

uint16_t nvme_lm_get_feature_cdq(NvmeCtrl *n, NvmeRequest *req)
{
    uint32_t dw10 = le32_to_cpu(req->cmd.cdw10);
    uint32_t dw11 = le32_to_cpu(req->cmd.cdw11);
    NvmeLmCdqFeat data = {};
    NvmeCdq *q;

    if (!nvme_lm_is_mmc(n)) {
        return NVME_INVALID_FIELD | NVME_DNR;
    }

    switch (NVME_GETFEAT_SELECT(dw10)) {
    case NVME_GETFEAT_SELECT_CURRENT:
        break;
    case NVME_GETFEAT_SELECT_CAP:
        req->cqe.result = cpu_to_le32(NVME_FEAT_CAP_CHANGE);
        return NVME_SUCCESS;
    default:
        return NVME_INVALID_FIELD | NVME_DNR;
    }

    q = nvme_lm_cdq_find(n, dw11 & 0xffff);
    if (!q) {
        return NVME_INVALID_CDQ | NVME_DNR;
    }

    data.hp = cpu_to_le32(q->head);
    data.tpt = cpu_to_le32(q->etpt ? q->tpt : 0);
    req->cqe.result = cpu_to_le32((q->etpt ? 1u << 31 : 0) | q->cdqid);

    return nvme_lm_c2h(n, req, &data, sizeof(data));
}

/* ------------------------------------------------------------------------ */
/* User data change logging (hooks)                                         */
/* ------------------------------------------------------------------------ */

static bool nvme_lm_write_may_have_landed(uint16_t status)
{
    switch (status & 0x7ff) {
    case NVME_SUCCESS:
    case NVME_WRITE_FAULT:
    case NVME_CMD_ABORT_REQ:
    case NVME_CMD_ABORT_SQ_DEL:
        return true;
    default:
        return false;
    }
}

void nvme_lm_req_completed(NvmeCtrl *n, NvmeRequest *req)
{
    NvmeCdq *q = n->lm ? n->lm->udmq : NULL;
    NvmeRwCmd *rw = (NvmeRwCmd *)&req->cmd;
    uint32_t nsid = le32_to_cpu(req->cmd.nsid);

    if (!q || !q->logging) {
        return;
    }

    /*
     * Commands that may have changed data before failing (a Copy whose
     * later range is invalid, a broadcast Format failing on a later
     * namespace, a select-all zone reset hitting an I/O error) are logged
     * whatever their status: over-reporting is allowed, a lost change is
     * lost guest data.
     */
    if (!req->sq->sqid) {
        if (req->cmd.opcode != NVME_ADM_CMD_FORMAT_NVM) {
            return;
        }

        for (uint32_t i = 1; i <= NVME_MAX_NAMESPACES && q->logging; i++) {
            if (nvme_ns(n, i) && (nsid == NVME_NSID_BROADCAST || nsid == i)) {
                nvme_lm_log_nsid(q, i);
            }
        }

        return;
    }

    switch (req->cmd.opcode) {
    case NVME_CMD_WRITE:
    case NVME_CMD_WRITE_ZEROES:
    case NVME_CMD_ZONE_APPEND:
        if (nvme_lm_write_may_have_landed(req->status)) {
            nvme_lm_log_range(q, nsid, le64_to_cpu(rw->slba),
                              le16_to_cpu(rw->nlb), false);
        }
        break;
    case NVME_CMD_COPY:
    case NVME_CMD_ZONE_MGMT_SEND:
        nvme_lm_log_nsid(q, nsid);
        break;
    default:
        break;
    }
}

void nvme_lm_dealloc_done(NvmeCtrl *n, NvmeNamespace *ns, uint64_t slba,
                          uint32_t nlb)
{
    NvmeCdq *q = n->lm ? n->lm->udmq : NULL;

    if (!q || !q->logging || !nlb) {
        return;
    }

    nvme_lm_log_range(q, nvme_nsid(ns), slba, nlb - 1, true);
}

/* ------------------------------------------------------------------------ */
/* Suspend / Resume                                                         */
/* ------------------------------------------------------------------------ */

bool nvme_lm_fetch_blocked(NvmeCtrl *n)
{
    return n->lm && n->lm->state != NVME_LM_ACTIVE;
}

bool nvme_lm_quiesced(NvmeCtrl *n)
{
    return n->lm && n->lm->state == NVME_LM_SUSPENDED;
}

void nvme_lm_cqes_posted(NvmeCtrl *n)
{
    if (n->lm && n->lm->state == NVME_LM_SUSPENDING) {
        qemu_bh_schedule(n->lm->quiesce_bh);
    }
}

/*
 * Quiesced: every fetched command except outstanding AERs has completed and
 * its completion is posted (or cannot be posted because the CQ is full; it
 * then travels in the vendor specific state).
 */
static bool nvme_lm_idle(NvmeCtrl *t)
{
    /*
     * A controller that failed to write a completion (CSTS.CFS, e.g. bus
     * mastering turned off) posts nothing more: its pending completions
     * travel in the vendor state instead of holding up the Suspend.
     */
    bool cfs = ldl_le_p(&t->bar.csts) & NVME_CSTS_FAILED;

    for (unsigned i = 0; i <= t->params.max_ioqpairs; i++) {
        NvmeSQueue *sq = t->sq[i];
        NvmeCQueue *cq = t->cq[i];
        NvmeRequest *req;

        if (sq) {
            QTAILQ_FOREACH(req, &sq->out_req_list, entry) {
                if (i || req->cmd.opcode != NVME_ADM_CMD_ASYNC_EV_REQ) {
                    return false;
                }
            }
        }

        if (cq && !cfs && !QTAILQ_EMPTY(&cq->req_list) &&
            (cq->tail + 1) % cq->size != cq->head) {
            return false;
        }
    }

    return true;
}

static uint64_t nvme_lm_timestamp_now(NvmeCtrl *t)
{
    uint64_t now = qemu_clock_get_ms(QEMU_CLOCK_VIRTUAL);

    return (t->host_timestamp + (now - t->timestamp_set_qemu_clock_ms)) &
           ((1ULL << 48) - 1);
}

/*
 * The Timestamp feature as it was when the controller stopped: a suspended
 * controller's state is a snapshot, equal for every Get Controller State.
 */
static uint64_t nvme_lm_timestamp(NvmeCtrl *t)
{
    if (t->lm->state == NVME_LM_SUSPENDED) {
        return t->lm->suspend_ts;
    }
    return nvme_lm_timestamp_now(t);
}

static void nvme_lm_suspend_done(NvmeCtrl *t)
{
    NvmeLm *tl = t->lm;
    GSList *reqs = tl->suspend_reqs;
    NvmeCtrl *mmc = nvme_lm_mmc_of(t);
    uint32_t mmc_resets = mmc ? mmc->lm->ctrl_resets : 0;
    bool dudmq = false;

    tl->suspend_ts = nvme_lm_timestamp_now(t);
    tl->suspend_nevt = t->aer_queued;
    tl->state = NVME_LM_SUSPENDED;
    tl->suspend_reqs = NULL;
    trace_pci_nvme_lm_suspended(t->cntlid, g_slist_length(reqs),
                                mmc && mmc->lm->ctrl_resets == mmc_resets);

    if (tl->udmq && tl->udmq->logging) {
        nvme_lm_cdq_post_marker(tl->udmq, NVME_LM_ESA_SUSPENDED);
    }

    for (GSList *l = reqs; l; l = l->next) {
        dudmq |= ((NvmeLmSuspendReq *)l->data)->dudmq;
    }

    if (dudmq && tl->udmq) {
        nvme_lm_cdq_free(tl->udmq);
    }

    /*
     * The parked Suspend commands are the MMC's: if it was reset meanwhile
     * they went with its admin queue, and their requests with it.
     */
    if (!mmc || mmc->lm->ctrl_resets != mmc_resets) {
        g_slist_free_full(reqs, g_free);
        return;
    }

    for (GSList *l = reqs; l; l = l->next) {
        NvmeRequest *req = ((NvmeLmSuspendReq *)l->data)->req;
        NvmeCQueue *cq = mmc->cq[req->sq->cqid];

        if (!cq || mmc->sq[req->sq->sqid] != req->sq) {
            continue;
        }
        req->status = NVME_SUCCESS;
        nvme_enqueue_req_completion(cq, req);
    }

    g_slist_free_full(reqs, g_free);
}

static void nvme_lm_quiesce_bh(void *opaque)
{
    NvmeCtrl *t = opaque;
    NvmeLm *tl = t->lm;

    if (tl->hold_until &&
        qemu_clock_get_ms(QEMU_CLOCK_VIRTUAL) < tl->hold_until) {
        return;
    }
    tl->hold_until = 0;

    if (tl->state == NVME_LM_SUSPENDING && nvme_lm_idle(t)) {
        nvme_lm_suspend_done(t);
    }
}

/* A Suspend held by lm-suspend-delay is not held any longer */
static void nvme_lm_hold_end(NvmeLm *tl)
{
    tl->hold_until = 0;
    timer_del(tl->hold_timer);
}

static void nvme_lm_hold_timer_cb(void *opaque)
{
    NvmeCtrl *t = opaque;

    qemu_bh_schedule(t->lm->quiesce_bh);
}

/* Restart a controller: fetch, post pending CQEs, re-raise interrupts */
static void nvme_lm_kick(NvmeCtrl *t)
{
    PCIDevice *pci = PCI_DEVICE(t);
    NvmeCtrl *mmc = nvme_lm_mmc_of(t);
    uint32_t v;

    if (!t->sq[0] || !t->cq[0]) {
        return;
    }

    /*
     * Admin shadow doorbells are kept in sync by the controller; from the
     * MMC's context, with both guards engaged (nvme_lm_dma_write()).
     */
    if (t->dbbuf_enabled) {
        v = cpu_to_le32(t->admin_sq.tail);
        nvme_lm_dma_write(t, mmc, t->admin_sq.db_addr, &v, sizeof(v));
        nvme_lm_track_write(t, t->admin_sq.db_addr, sizeof(uint32_t));
        v = cpu_to_le32(t->admin_cq.head);
        nvme_lm_dma_write(t, mmc, t->admin_cq.db_addr, &v, sizeof(v));
        nvme_lm_track_write(t, t->admin_cq.db_addr, sizeof(uint32_t));
        if (!t->sq[0] || !t->cq[0]) {
            return;
        }
    }

    for (unsigned i = 0; i <= t->params.max_ioqpairs; i++) {
        NvmeCQueue *cq = t->cq[i];
        NvmeSQueue *sq = t->sq[i];

        if (cq) {
            if (!QTAILQ_EMPTY(&cq->req_list)) {
                qemu_bh_schedule(cq->bh);
            }

            if (cq->tail != cq->head &&
                (msix_enabled(pci) || cq->vector < 32)) {
                nvme_irq_assert(t, cq);
            }
        }

        if (sq) {
            qemu_bh_schedule(sq->bh);
        }
    }

    nvme_process_aers(t);
}

/*
 * Abort (SQID 0, @cid) sent to @mmc: a Suspend it is holding is completed
 * with Command Abort Requested.  The last one of a controller still
 * suspending takes it back to running, as if it had not been sent.
 */
bool nvme_lm_abort(NvmeCtrl *mmc, uint16_t cid)
{
    if (!nvme_lm_is_mmc(mmc) || !mmc->lm->abort_suspend) {
        return false;
    }

    for (unsigned i = 0; i < mmc->params.sriov_max_vfs; i++) {
        NvmeCtrl *t = nvme_lm_vf_obj(mmc, i);
        NvmeLm *tl = t ? t->lm : NULL;

        if (!tl || tl->state != NVME_LM_SUSPENDING) {
            continue;
        }

        for (GSList *l = tl->suspend_reqs; l; l = l->next) {
            NvmeLmSuspendReq *sr = l->data;
            NvmeRequest *req = sr->req;

            if (req->cqe.cid != cid || nvme_ctrl(req) != mmc ||
                req->sq->sqid) {
                continue;
            }

            tl->suspend_reqs = g_slist_delete_link(tl->suspend_reqs, l);
            g_free(sr);
            trace_pci_nvme_lm_suspend_aborted(t->cntlid, cid);
            req->status = NVME_CMD_ABORT_REQ;
            nvme_enqueue_req_completion(mmc->cq[req->sq->cqid], req);

            if (!tl->suspend_reqs) {
                nvme_lm_hold_end(tl);
                tl->state = NVME_LM_ACTIVE;
                nvme_lm_kick(t);
            }
            return true;
        }
    }

    return false;
}

static uint16_t nvme_lm_suspend(NvmeCtrl *n, NvmeRequest *req)
{
    uint32_t dw11 = le32_to_cpu(req->cmd.cdw11);
    uint16_t cntlid = dw11 & 0xffff;
    uint8_t stype = (dw11 >> 16) & 0xff;
    bool dudmq = dw11 >> 31;
    NvmeLmSuspendReq *sr;
    NvmeCtrl *t;
    NvmeLm *tl;

    t = nvme_lm_target(n, cntlid);
    if (!t) {
        return NVME_INVALID_CTRL_ID | NVME_DNR;
    }

    tl = t->lm;
    trace_pci_nvme_lm_suspend(cntlid, stype, dudmq,
                              nvme_lm_state_name(tl->state),
                              n->lm->suspend_delay);

    if (tl->in_commit) {
        return NVME_CMD_SEQ_ERROR | NVME_DNR;
    }

    switch (stype) {
    case NVME_LM_STYPE_NOTIFY:
        /* advance notice only; DUDMQ is not acted upon */
        return NVME_SUCCESS;
    case NVME_LM_STYPE_SUSPEND:
        break;
    default:
        return NVME_INVALID_FIELD | NVME_DNR;
    }

    switch (tl->state) {
    case NVME_LM_SUSPENDED:
        if (dudmq && tl->udmq) {
            nvme_lm_cdq_free(tl->udmq);
        }
        return NVME_SUCCESS;
    case NVME_LM_ACTIVE:
        tl->state = NVME_LM_SUSPENDING;
        if (n->lm->suspend_delay) {
            tl->hold_until = qemu_clock_get_ms(QEMU_CLOCK_VIRTUAL) +
                             n->lm->suspend_delay;
            timer_mod(tl->hold_timer, tl->hold_until);
        }
        /* fallthrough */
    case NVME_LM_SUSPENDING:
        sr = g_new0(NvmeLmSuspendReq, 1);
        sr->req = req;
        sr->dudmq = dudmq;
        tl->suspend_reqs = g_slist_append(tl->suspend_reqs, sr);
        qemu_bh_schedule(tl->quiesce_bh);
        return NVME_NO_COMPLETE;
    }

    return NVME_INTERNAL_DEV_ERROR;
}

static uint16_t nvme_lm_resume(NvmeCtrl *n, NvmeRequest *req)
{
    uint16_t cntlid = le32_to_cpu(req->cmd.cdw11) & 0xffff;
    NvmeCtrl *t;
    NvmeLm *tl;

    t = nvme_lm_target(n, cntlid);
    if (!t) {
        return NVME_INVALID_CTRL_ID | NVME_DNR;
    }

    tl = t->lm;

    if (tl->state != NVME_LM_SUSPENDED) {
        return NVME_CTRL_NOT_SUSPENDED | NVME_DNR;
    }

    if (tl->set.active || tl->in_commit) {
        return NVME_CMD_SEQ_ERROR | NVME_DNR;
    }

    tl->state = NVME_LM_ACTIVE;
    trace_pci_nvme_lm_resume(cntlid);

    if (tl->udmq && tl->udmq->logging) {
        nvme_lm_cdq_post_marker(tl->udmq, NVME_LM_ESA_FIRST);
    }

    nvme_lm_kick(t);

    return NVME_SUCCESS;
}

/* ------------------------------------------------------------------------ */
/* Controller state: building (Get Controller State)                        */
/* ------------------------------------------------------------------------ */

static void nvme_lm_count_ioq(NvmeCtrl *t, uint16_t *nsq, uint16_t *ncq)
{
    *nsq = *ncq = 0;

    for (unsigned i = 1; i <= t->params.max_ioqpairs; i++) {
        *nsq += !!t->sq[i];
        *ncq += !!t->cq[i];
    }
}

static uint32_t nvme_lm_count_pending_cqes(NvmeCtrl *t)
{
    uint32_t count = 0;

    for (unsigned i = 0; i <= t->params.max_ioqpairs; i++) {
        NvmeRequest *req;

        if (t->cq[i]) {
            QTAILQ_FOREACH(req, &t->cq[i]->req_list, entry) {
                count++;
            }
        }
    }

    return count;
}

/* Vendor state lengths: the fixed header, then the variable lists */
typedef struct NvmeLmVsCounts {
    uint64_t hdrlen;
    uint64_t naer, nevt, ncqe;
    uint64_t nchns, nerr;       /* version 2 */
} NvmeLmVsCounts;

static inline uint64_t nvme_lm_vs_size(const NvmeLmVsCounts *c)
{
    return c->hdrlen + ROUND_UP(c->naer * sizeof(uint16_t), 4) +
           c->nevt * sizeof(NvmeLmVsEvent) + c->ncqe * sizeof(NvmeLmVsCqe) +
           c->nchns * sizeof(uint32_t) + c->nerr * sizeof(NvmeLmVsErrRec);
}

/* NSIDs in the Changed Namespace List (the changed_nsids bitmap) */
static uint32_t nvme_lm_count_chns(NvmeCtrl *t)
{
    return bitmap_count_one_with_offset(t->changed_nsids, 1,
                                        NVME_MAX_NAMESPACES);
}

/* Namespaces attached to the controller */
static uint32_t nvme_lm_count_ns(NvmeCtrl *t)
{
    uint32_t count = 0;

    for (unsigned i = 1; i <= NVME_MAX_NAMESPACES; i++) {
        count += !!nvme_ns(t, i);
    }

    return count;
}

static bool nvme_lm_vwc(NvmeCtrl *t)
{
    for (unsigned i = 1; i <= NVME_MAX_NAMESPACES; i++) {
        NvmeNamespace *ns = nvme_ns(t, i);

        if (ns && blk_enable_write_cache(ns->blkconf.blk)) {
            return true;
        }
    }

    return false;
}

static void nvme_lm_fill_nvmecs(NvmeCtrl *t, uint8_t *p, uint16_t nsq,
                                uint16_t ncq)
{
    NvmeLmNvmeState *hdr = (NvmeLmNvmeState *)p;
    NvmeLmSqState *sqs = (NvmeLmSqState *)(p + sizeof(*hdr));
    NvmeLmCqState *cqs = (NvmeLmCqState *)(sqs + nsq);
    unsigned k;

    hdr->ver = cpu_to_le16(NVME_LM_NVMECS_VERSION);
    hdr->niosq = cpu_to_le16(nsq);
    hdr->niocq = cpu_to_le16(ncq);

    k = 0;
    for (unsigned i = 1; i <= t->params.max_ioqpairs && k < nsq; i++) {
        NvmeSQueue *sq = t->sq[i];

        if (!sq) {
            continue;
        }

        sqs[k].prp1 = cpu_to_le64(sq->dma_addr);
        sqs[k].qsize = cpu_to_le16(sq->size - 1);
        sqs[k].qid = cpu_to_le16(sq->sqid);
        sqs[k].cqid = cpu_to_le16(sq->cqid);
        sqs[k].attr = cpu_to_le16(NVME_LM_QA_PC);
        sqs[k].head = cpu_to_le16(sq->head);
        sqs[k].tail = cpu_to_le16(sq->tail);
        k++;
    }

    k = 0;
    for (unsigned i = 1; i <= t->params.max_ioqpairs && k < ncq; i++) {
        NvmeCQueue *cq = t->cq[i];
        uint32_t attr;
        uint8_t s0pt;

        if (!cq) {
            continue;
        }

        /*
         * S0PT is the phase tag held in slot 0.  cq->phase is the tag of
         * the next post at cq->tail; with tail 0 slot 0 still holds the
         * previous pass.
         */
        s0pt = cq->tail ? cq->phase : !cq->phase;
        attr = NVME_LM_QA_PC | (cq->irq_enabled ? NVME_LM_CQA_IEN : 0) |
               (s0pt ? NVME_LM_CQA_S0PT : 0) |
               ((uint32_t)cq->vector << NVME_LM_CQA_IV_SHIFT);

        cqs[k].prp1 = cpu_to_le64(cq->dma_addr);
        cqs[k].qsize = cpu_to_le16(cq->size - 1);
        cqs[k].qid = cpu_to_le16(cq->cqid);
        cqs[k].head = cpu_to_le16(cq->head);
        cqs[k].tail = cpu_to_le16(cq->tail);
        cqs[k].attr = cpu_to_le32(attr);
        k++;
    }
}

static void nvme_lm_fill_vs(NvmeCtrl *t, uint8_t *p, uint64_t size,
                            const NvmeLmVsCounts *c)
{
    NvmeLmVsHdr *h = (NvmeLmVsHdr *)p;
    NvmeLmVsHdr2 *h2 = (NvmeLmVsHdr2 *)(p + sizeof(*h));
    uint32_t naer = c->naer, nevt = c->nevt, ncqe = c->ncqe;
    uint16_t *cids = (uint16_t *)(p + c->hdrlen);
    NvmeLmVsEvent *evts = (NvmeLmVsEvent *)(p + c->hdrlen +
                                            ROUND_UP(naer * 2, 4));
    NvmeLmVsCqe *cqes = (NvmeLmVsCqe *)(evts + nevt);
    uint8_t *chns = (uint8_t *)(cqes + ncqe);
    NvmeLmVsErrRec *errs = (NvmeLmVsErrRec *)(chns + 4 * c->nchns);
    NvmeAsyncEvent *event;
    uint16_t flags = 0;
    uint32_t k;
    bool en = nvme_lm_enabled(t);

    if (t->dbbuf_enabled) {
        flags |= NVME_LM_VS_DBBUF;
    }
    if (t->qs_created) {
        flags |= NVME_LM_VS_QS_CREATED;
    }
    if (t->lm->state == NVME_LM_SUSPENDED) {
        flags |= NVME_LM_VS_SUSPENDED;
    }
    if (t->host_timestamp) {
        flags |= NVME_LM_VS_TS_HOST;
    }

    h->magic = cpu_to_le32(NVME_LM_VS_MAGIC);
    h->version = cpu_to_le16(NVME_LM_VS_VERSION);
    h->hdrlen = cpu_to_le16(c->hdrlen);
    h->size = cpu_to_le32(size);
    h->cntlid = cpu_to_le16(t->cntlid);
    h->flags = cpu_to_le16(flags);
    h->cc = cpu_to_le32(ldl_le_p(&t->bar.cc));
    h->aqa = cpu_to_le32(ldl_le_p(&t->bar.aqa));
    h->asq = cpu_to_le64(ldq_le_p(&t->bar.asq));
    h->acq = cpu_to_le64(ldq_le_p(&t->bar.acq));
    h->intms = cpu_to_le32(ldl_le_p(&t->bar.intms));
    h->csts = cpu_to_le32(ldl_le_p(&t->bar.csts));
    if (en) {
        h->asq_head = cpu_to_le16(t->admin_sq.head);
        h->asq_tail = cpu_to_le16(t->admin_sq.tail);
        h->acq_head = cpu_to_le16(t->admin_cq.head);
        h->acq_tail = cpu_to_le16(t->admin_cq.tail);
        h->acq_phase = t->admin_cq.phase;
    }
    h->aer_mask = t->aer_mask;
    h->naer = cpu_to_le16(naer);
    h->nevt = cpu_to_le16(nevt);
    h->ncqe = cpu_to_le32(ncqe);
    h->conf_ioqpairs = cpu_to_le16(t->conf_ioqpairs);
    h->conf_msix_qsize = cpu_to_le16(t->conf_msix_qsize);
    h->irq_status = cpu_to_le32(t->irq_status);
    if (t->dbbuf_enabled) {
        h->dbbuf_dbs = cpu_to_le64(t->dbbuf_dbs);
        h->dbbuf_eis = cpu_to_le64(t->dbbuf_eis);
    }
    h->async_config = cpu_to_le32(t->features.async_config);
    h->temp_thresh_hi = cpu_to_le16(t->features.temp_thresh_hi);
    h->temp_thresh_low = cpu_to_le16(t->features.temp_thresh_low);
    h->timestamp = cpu_to_le64(nvme_lm_timestamp(t));
    h->vwc = nvme_lm_vwc(t);
    h->dn = t->dn & 1;
    h->hbs_acre = t->features.hbs.acre;
    h->hbs_etdas = t->features.hbs.etdas;
    h->hbs_lbafee = t->features.hbs.lbafee;
    h->hbs_cdfe = t->features.hbs.cdfe;
    h->arbitration = cpu_to_le32(NVME_ARB_AB_NOLIMIT);
    h->int_coalescing = 0;
    if (t->conf_ioqpairs) {
        h->num_queues = cpu_to_le32((t->conf_ioqpairs - 1) |
                                    ((t->conf_ioqpairs - 1) << 16));
    }

    for (k = 0; k < naer; k++) {
        cids[k] = t->aer_reqs[k]->cqe.cid;
    }

    k = 0;
    QTAILQ_FOREACH(event, &t->aer_queue, entry) {
        if (k == nevt) {
            break;
        }

        evts[k].type = event->result.event_type;
        evts[k].info = event->result.event_info;
        evts[k].lid = event->result.log_page;
        evts[k].dw1 = cpu_to_le32(event->dw1);
        k++;
    }

    k = 0;
    for (unsigned i = 0; i <= t->params.max_ioqpairs; i++) {
        NvmeCQueue *cq = t->cq[i];
        NvmeRequest *req;

        if (!cq) {
            continue;
        }

        QTAILQ_FOREACH(req, &cq->req_list, entry) {
            if (k == ncqe) {
                break;
            }

            cqes[k].cqid = cpu_to_le16(cq->cqid);
            cqes[k].sqid = cpu_to_le16(req->sq->sqid);
            cqes[k].cid = req->cqe.cid;
            cqes[k].status = cpu_to_le16(req->status);
            cqes[k].dw0 = req->cqe.result;
            cqes[k].dw1 = req->cqe.dw1;
            k++;
        }
    }

    h2->nchns = cpu_to_le16(c->nchns);
    h2->nerr = cpu_to_le16(c->nerr);

    /* the Changed Namespace List, ascending (not cleared by the Get) */
    k = 0;
    for (unsigned long i = find_next_bit(t->changed_nsids,
                                         NVME_CHANGED_NSID_SIZE, 1);
         i < NVME_CHANGED_NSID_SIZE && k < c->nchns;
         i = find_next_bit(t->changed_nsids, NVME_CHANGED_NSID_SIZE, i + 1)) {
        stl_le_p(chns + 4 * k++, i);
    }

    /* Error Recovery of every attached namespace, ascending NSID */
    k = 0;
    for (unsigned i = 1; i <= NVME_MAX_NAMESPACES && k < c->nerr; i++) {
        NvmeNamespace *ns = nvme_ns(t, i);

        if (ns) {
            errs[k].nsid = cpu_to_le32(i);
            errs[k].err_rec = cpu_to_le32(ns->features.err_rec);
            k++;
        }
    }
}

/* The whole Controller State data structure; *plen is its size */
static uint8_t *nvme_lm_build_state(NvmeCtrl *t, bool nvmecs, bool vs,
                                    bool csup, uint64_t *plen)
{
    NvmeLmStateHdr *hdr;
    uint16_t nsq = 0, ncq = 0;
    NvmeLmVsCounts c = {};
    uint64_t nvmecs_len = 0, vs_len = 0;
    uint8_t *buf;

    if (nvmecs) {
        nvme_lm_count_ioq(t, &nsq, &ncq);
        nvmecs_len = sizeof(NvmeLmNvmeState) +
                     (uint64_t)(nsq + ncq) * sizeof(NvmeLmSqState);
    }

    if (vs) {
        c.hdrlen = sizeof(NvmeLmVsHdr) + sizeof(NvmeLmVsHdr2);
        c.naer = t->outstanding_aers;
        c.nevt = MIN(t->aer_queued, UINT16_MAX);
        /*
         * Events raised while suspended (an invalid doorbell write...)
         * stay with this controller: the state of a suspended controller
         * is the snapshot of the moment it stopped, for every Get.
         */
        if (t->lm->state == NVME_LM_SUSPENDED) {
            c.nevt = MIN(c.nevt, t->lm->suspend_nevt);
        }
        c.ncqe = nvme_lm_count_pending_cqes(t);
        c.nchns = nvme_lm_count_chns(t);
        c.nerr = nvme_lm_count_ns(t);
        vs_len = nvme_lm_vs_size(&c);
    }

    *plen = sizeof(*hdr) + nvmecs_len + vs_len;
    buf = g_malloc0(*plen);

    hdr = (NvmeLmStateHdr *)buf;
    hdr->ver = 0;
    hdr->csattr = csup ? 0x1 : 0;
    hdr->nvmecss[0] = cpu_to_le64(nvmecs_len / 4);
    hdr->vss[0] = cpu_to_le64(vs_len / 4);

    if (nvmecs) {
        nvme_lm_fill_nvmecs(t, buf + sizeof(*hdr), nsq, ncq);
    }

    if (vs) {
        nvme_lm_fill_vs(t, buf + sizeof(*hdr) + nvmecs_len, vs_len, &c);
    }

    return buf;
}

static uint16_t nvme_lm_get_state(NvmeCtrl *n, NvmeRequest *req)
{
    uint32_t dw10 = le32_to_cpu(req->cmd.cdw10);
    uint32_t dw11 = le32_to_cpu(req->cmd.cdw11);
    uint64_t off = le32_to_cpu(req->cmd.cdw12) |
                   (uint64_t)le32_to_cpu(req->cmd.cdw13) << 32;
    uint32_t uidx = le32_to_cpu(req->cmd.cdw14) & 0x7f;
    uint64_t len = ((uint64_t)le32_to_cpu(req->cmd.cdw15) + 1) * 4;
    uint8_t csvi = (dw10 >> 16) & 0xff;
    uint8_t csuuidi = (dw11 >> 16) & 0xff;
    g_autofree uint8_t *buf = NULL;
    uint64_t total;
    uint16_t status;
    NvmeCtrl *t;
    bool csup;

    if ((dw10 & 0xff) != 0 || uidx) {
        return NVME_INVALID_FIELD | NVME_DNR;
    }

    t = nvme_lm_target(n, dw11 & 0xffff);
    if (!t) {
        return NVME_INVALID_CTRL_ID | NVME_DNR;
    }

    if (csvi > 1 || csuuidi > 1 || (off & 0x3)) {
        return NVME_INVALID_FIELD | NVME_DNR;
    }

    status = nvme_lm_check_mdts(n, len);
    if (status) {
        return status;
    }

    /* the command runs to completion under the BQL */
    csup = t->lm->state == NVME_LM_SUSPENDED;

    buf = nvme_lm_build_state(t, csvi, csuuidi, csup, &total);
    trace_pci_nvme_lm_get_state(t->cntlid, off, len, total, csup);
    if (off >= total) {
        return NVME_INVALID_FIELD | NVME_DNR;
    }

    /*
     * NVMe state without the vendor state cannot carry completions not
     * yet posted nor outstanding AERs: refuse rather than drop them.  The
     * bare header (CSVI = CSUUIDI = 0) describes no state and is returned.
     */
    if (csvi && !csuuidi &&
        (t->outstanding_aers || nvme_lm_count_pending_cqes(t))) {
        return NVME_CMD_SEQ_ERROR | NVME_DNR;
    }

    /*
     * Fault injection of a malformed state: a command that returns the
     * NIOSQ field of the NVMe state gets it off by one (and succeeds).
     */
    if (csvi && off <= NVME_LM_NIOSQ_OFFSET &&
        off + MIN(len, total - off) > NVME_LM_NIOSQ_OFFSET &&
        nvme_lm_fault_hit(n->lm, NVME_LM_FAULT_CORRUPT_STATE)) {
        buf[NVME_LM_NIOSQ_OFFSET]++;
    }

    status = nvme_lm_c2h(n, req, buf + off, MIN(len, total - off));
    if (status) {
        return status;
    }

    req->cqe.result = cpu_to_le32(csup ? 0x1 : 0);

    return NVME_SUCCESS;
}

/* ------------------------------------------------------------------------ */
/* Controller state: parsing, verifying and committing (Set)                */
/* ------------------------------------------------------------------------ */

typedef struct NvmeLmQ {
    uint64_t prp1;
    uint16_t qid;
    uint16_t size;              /* entries */
    uint16_t cqid;              /* SQ only */
    uint16_t head;
    uint16_t tail;
    uint16_t iv;                /* CQ only */
    bool     ien;               /* CQ only */
    uint8_t  phase;             /* CQ only: tag of the next post */
} NvmeLmQ;

typedef struct NvmeLmParsed {
    const NvmeLmVsHdr *vh;      /* NULL: no vendor specific state */
    const uint16_t *cids;
    const NvmeLmVsEvent *evts;
    const NvmeLmVsCqe *cqes;
    const uint8_t *chns;        /* version 2: NSIDs, 4 bytes each */
    const NvmeLmVsErrRec *errs; /* version 2 */
    uint32_t naer, nevt, ncqe;
    uint32_t nchns, nerr;
    uint16_t ioqpairs;          /* I/O queue pairs after commit */

    bool nvmecs;
    uint16_t nsq, ncq;
    NvmeLmQ *sqs;
    NvmeLmQ *cqs;

    bool en;                    /* enabled after commit */
    uint32_t cc;                /* CC after commit */
    uint32_t psz;               /* memory page size after commit */
} NvmeLmParsed;

static void nvme_lm_set_reset(NvmeLmSetSeq *seq)
{
    g_free(seq->buf);
    memset(seq, 0, sizeof(*seq));
}

/* Upper bound of the Controller State data structure for this target */
static uint64_t nvme_lm_state_max(NvmeCtrl *t)
{
    uint64_t nq = t->conf_ioqpairs;
    uint64_t qent = (uint64_t)NVME_CAP_MQES(ldq_le_p(&t->bar.cap)) + 1;
    uint64_t nvmecs = sizeof(NvmeLmNvmeState) + 2 * nq * sizeof(NvmeLmSqState);
    NvmeLmVsCounts c = {
        .hdrlen = sizeof(NvmeLmVsHdr) + sizeof(NvmeLmVsHdr2),
        .naer = t->params.aerl + 1,
        .nevt = MIN(t->params.aer_max_queued, UINT16_MAX),
        .nchns = NVME_MAX_NAMESPACES,
        .nerr = NVME_MAX_NAMESPACES,
    };
    uint64_t vs = nvme_lm_vs_size(&c) +
                  (4096 + nq * qent) * sizeof(NvmeLmVsCqe);

    return sizeof(NvmeLmStateHdr) + nvmecs + vs;
}

static const NvmeLmQ *nvme_lm_find_q(const NvmeLmQ *qs, uint16_t nr,
                                     uint16_t qid)
{
    for (uint16_t i = 0; i < nr; i++) {
        if (qs[i].qid == qid) {
            return &qs[i];
        }
    }

    return NULL;
}

#define NVME_LM_BAD(fmt, ...) \
    do { \
        if (trace_event_get_state_backends(TRACE_PCI_NVME_LM_BAD_STATE)) { \
            g_autofree char *why_ = g_strdup_printf(fmt, ## __VA_ARGS__); \
            trace_pci_nvme_lm_bad_state(why_); \
        } \
        qemu_log_mask(LOG_GUEST_ERROR, "nvme-lm: set state: " fmt "\n", \
                      ## __VA_ARGS__); \
    } while (0)

static uint16_t nvme_lm_parse_vs(NvmeCtrl *t, const uint8_t *p, uint64_t len,
                                 NvmeLmParsed *ps)
{
    const NvmeLmVsHdr *h = (const NvmeLmVsHdr *)p;
    const NvmeLmVsHdr2 *h2 = (const NvmeLmVsHdr2 *)(p + sizeof(*h));
    uint64_t cap = ldq_le_p(&t->bar.cap);
    NvmeLmVsCounts c = {};
    uint32_t cc, aqa, asqs, acqs, nq, prev;
    uint16_t flags, version;

    if (len < sizeof(*h) || le32_to_cpu(h->magic) != NVME_LM_VS_MAGIC) {
        NVME_LM_BAD("unknown vendor specific state format");
        return NVME_INVALID_FIELD | NVME_DNR;
    }

    version = le16_to_cpu(h->version);
    c.hdrlen = le16_to_cpu(h->hdrlen);

    if (!((version == NVME_LM_VS_VERSION_1 && c.hdrlen == sizeof(*h)) ||
          (version == NVME_LM_VS_VERSION &&
           c.hdrlen == sizeof(*h) + sizeof(*h2) && len >= c.hdrlen &&
           !h2->rsvd132))) {
        NVME_LM_BAD("unknown vendor specific state version %u", version);
        return NVME_INVALID_FIELD | NVME_DNR;
    }

    c.naer = ps->naer = le16_to_cpu(h->naer);
    c.nevt = ps->nevt = le16_to_cpu(h->nevt);
    c.ncqe = ps->ncqe = le32_to_cpu(h->ncqe);
    if (version == NVME_LM_VS_VERSION) {
        c.nchns = ps->nchns = le16_to_cpu(h2->nchns);
        c.nerr = ps->nerr = le16_to_cpu(h2->nerr);
    }

    if (le32_to_cpu(h->size) != len || nvme_lm_vs_size(&c) != len) {
        NVME_LM_BAD("vendor specific state size mismatch");
        return NVME_INVALID_FIELD | NVME_DNR;
    }

    if (ps->naer > t->params.aerl + 1 || ps->nevt > t->params.aer_max_queued) {
        NVME_LM_BAD("too many AERs (%u) or events (%u)", ps->naer, ps->nevt);
        return NVME_INVALID_FIELD | NVME_DNR;
    }

    if (le16_to_cpu(h->conf_ioqpairs) > t->conf_ioqpairs ||
        le16_to_cpu(h->conf_msix_qsize) > t->conf_msix_qsize) {
        NVME_LM_BAD("target has fewer queue or interrupt resources");
        return NVME_INVALID_FIELD | NVME_DNR;
    }

    /* Number of Queues as the source reported it: from its queue pairs */
    ps->ioqpairs = le16_to_cpu(h->conf_ioqpairs);
    nq = ps->ioqpairs ? (ps->ioqpairs - 1) | ((ps->ioqpairs - 1) << 16) : 0;
    if (le32_to_cpu(h->num_queues) != nq) {
        NVME_LM_BAD("Number of Queues 0x%x does not match %u queue pairs",
                    le32_to_cpu(h->num_queues), ps->ioqpairs);
        return NVME_INVALID_FIELD | NVME_DNR;
    }

    ps->vh = h;
    ps->cids = (const uint16_t *)(p + c.hdrlen);
    ps->evts = (const NvmeLmVsEvent *)(p + c.hdrlen +
                                       ROUND_UP(ps->naer * 2, 4));
    ps->cqes = (const NvmeLmVsCqe *)(ps->evts + ps->nevt);
    ps->chns = (const uint8_t *)(ps->cqes + ps->ncqe);
    ps->errs = (const NvmeLmVsErrRec *)(ps->chns + 4 * ps->nchns);

    for (uint32_t i = 0; i < ps->nevt; i++) {
        if (ps->evts[i].type > NVME_AER_TYPE_VENDOR_SPECIFIC) {
            NVME_LM_BAD("bad event type %u", ps->evts[i].type);
            return NVME_INVALID_FIELD | NVME_DNR;
        }
    }

    /* Changed Namespace List: valid NSIDs, strictly ascending */
    prev = 0;
    for (uint32_t i = 0; i < ps->nchns; i++) {
        uint32_t nsid = ldl_le_p(ps->chns + 4 * i);

        if (nsid <= prev || nsid > NVME_MAX_NAMESPACES) {
            NVME_LM_BAD("changed namespace list: bad NSID %u", nsid);
            return NVME_INVALID_FIELD | NVME_DNR;
        }
        prev = nsid;
    }

    /*
     * Error Recovery: strictly ascending NSIDs of namespaces attached to
     * the target; DULBE only where the namespace supports it (Set
     * Features keeps 0 elsewhere).
     */
    prev = 0;
    for (uint32_t i = 0; i < ps->nerr; i++) {
        uint32_t nsid = le32_to_cpu(ps->errs[i].nsid);
        uint32_t err_rec = le32_to_cpu(ps->errs[i].err_rec);
        NvmeNamespace *ns;

        if (nsid <= prev || nsid > NVME_MAX_NAMESPACES) {
            NVME_LM_BAD("error recovery: bad NSID %u", nsid);
            return NVME_INVALID_FIELD | NVME_DNR;
        }
        prev = nsid;

        ns = nvme_ns(t, nsid);
        if (!ns || (err_rec && !NVME_ID_NS_NSFEAT_DULBE(ns->id_ns.nsfeat))) {
            NVME_LM_BAD("error recovery: namespace %u not attached or "
                        "without DULBE support", nsid);
            return NVME_INVALID_FIELD | NVME_DNR;
        }
    }

    cc = le32_to_cpu(h->cc);
    aqa = le32_to_cpu(h->aqa);
    flags = le16_to_cpu(h->flags);
    ps->cc = cc;
    ps->en = NVME_CC_EN(cc);

    if (!ps->en) {
        if (ps->naer || ps->ncqe || (flags & NVME_LM_VS_DBBUF)) {
            NVME_LM_BAD("disabled controller with queue state");
            return NVME_INVALID_FIELD | NVME_DNR;
        }

        ps->psz = t->page_size;
        return NVME_SUCCESS;
    }

    if (pci_is_vf(PCI_DEVICE(t)) && !nvme_sctrl(t)->scs) {
        /* an offline secondary cannot be enabled */
        return NVME_CMD_SEQ_ERROR | NVME_DNR;
    }

    asqs = NVME_AQA_ASQS(aqa) + 1;
    acqs = NVME_AQA_ACQS(aqa) + 1;
    ps->psz = 1u << (NVME_CC_MPS(cc) + 12);

    if (NVME_CC_MPS(cc) < NVME_CAP_MPSMIN(cap) ||
        NVME_CC_MPS(cc) > NVME_CAP_MPSMAX(cap) ||
        !(NVME_CAP_CSS(cap) & (1 << NVME_CC_CSS(cc))) ||
        asqs < 2 || acqs < 2 ||
        (le64_to_cpu(h->asq) & (ps->psz - 1)) ||
        (le64_to_cpu(h->acq) & (ps->psz - 1))) {
        NVME_LM_BAD("bad CC/AQA/ASQ/ACQ");
        return NVME_INVALID_FIELD | NVME_DNR;
    }

    if (le16_to_cpu(h->asq_head) >= asqs || le16_to_cpu(h->asq_tail) >= asqs ||
        le16_to_cpu(h->acq_head) >= acqs || le16_to_cpu(h->acq_tail) >= acqs ||
        h->acq_phase > 1) {
        NVME_LM_BAD("bad admin queue position");
        return NVME_INVALID_FIELD | NVME_DNR;
    }

    if ((flags & NVME_LM_VS_DBBUF) &&
        ((le64_to_cpu(h->dbbuf_dbs) & (ps->psz - 1)) ||
         (le64_to_cpu(h->dbbuf_eis) & (ps->psz - 1)))) {
        NVME_LM_BAD("misaligned doorbell buffer");
        return NVME_INVALID_FIELD | NVME_DNR;
    }

    return NVME_SUCCESS;
}

static uint16_t nvme_lm_parse_q(NvmeCtrl *t, NvmeLmParsed *ps, bool sq,
                                const void *ent, uint16_t prev_qid,
                                NvmeLmQ *q)
{
    uint32_t mqes = NVME_CAP_MQES(ldq_le_p(&t->bar.cap));
    uint16_t qsize, attr;

    if (sq) {
        const NvmeLmSqState *s = ent;

        q->prp1 = le64_to_cpu(s->prp1);
        qsize = le16_to_cpu(s->qsize);
        q->qid = le16_to_cpu(s->qid);
        q->cqid = le16_to_cpu(s->cqid);
        attr = le16_to_cpu(s->attr);
        q->head = le16_to_cpu(s->head);
        q->tail = le16_to_cpu(s->tail);
    } else {
        const NvmeLmCqState *c = ent;
        uint32_t cattr = le32_to_cpu(c->attr);

        q->prp1 = le64_to_cpu(c->prp1);
        qsize = le16_to_cpu(c->qsize);
        q->qid = le16_to_cpu(c->qid);
        q->head = le16_to_cpu(c->head);
        q->tail = le16_to_cpu(c->tail);
        attr = cattr & 0xffff;
        q->ien = !!(cattr & NVME_LM_CQA_IEN);
        q->iv = cattr >> NVME_LM_CQA_IV_SHIFT;
        /* phase of the next post, from the tag held in slot 0 */
        q->phase = !!(cattr & NVME_LM_CQA_S0PT);
        if (!q->tail) {
            q->phase = !q->phase;
        }
    }

    if (!q->qid || q->qid <= prev_qid || q->qid > ps->ioqpairs) {
        NVME_LM_BAD("%s qid %u out of order or beyond resources",
                    sq ? "SQ" : "CQ", q->qid);
        return NVME_INVALID_FIELD | NVME_DNR;
    }

    if (!qsize || qsize > mqes) {
        NVME_LM_BAD("queue %u: bad QSIZE %u", q->qid, qsize);
        return NVME_INVALID_FIELD | NVME_DNR;
    }

    q->size = qsize + 1;

    if (!(attr & NVME_LM_QA_PC) || (q->prp1 & (ps->psz - 1))) {
        NVME_LM_BAD("queue %u: not contiguous or misaligned", q->qid);
        return NVME_INVALID_FIELD | NVME_DNR;
    }

    if (q->head >= q->size || q->tail >= q->size) {
        NVME_LM_BAD("queue %u: head/tail beyond QSIZE", q->qid);
        return NVME_INVALID_FIELD | NVME_DNR;
    }

    if (!sq && (q->iv >= t->conf_msix_qsize ||
                (q->iv >= 32 && !msix_enabled(PCI_DEVICE(t))))) {
        NVME_LM_BAD("CQ %u: bad interrupt vector %u", q->qid, q->iv);
        return NVME_INVALID_FIELD | NVME_DNR;
    }

    return NVME_SUCCESS;
}

static uint16_t nvme_lm_parse_nvmecs(NvmeCtrl *t, const uint8_t *p,
                                     uint64_t len, NvmeLmParsed *ps)
{
    const NvmeLmNvmeState *h = (const NvmeLmNvmeState *)p;
    const NvmeLmSqState *sqs;
    const NvmeLmCqState *cqs;
    uint32_t cc = ps->vh ? ps->cc : ldl_le_p(&t->bar.cc);
    uint16_t prev;
    uint16_t status;

    if (len < sizeof(*h) || le16_to_cpu(h->ver) != NVME_LM_NVMECS_VERSION) {
        NVME_LM_BAD("unknown NVMe controller state version");
        return NVME_INVALID_FIELD | NVME_DNR;
    }

    ps->nvmecs = true;
    ps->nsq = le16_to_cpu(h->niosq);
    ps->ncq = le16_to_cpu(h->niocq);

    if (len != sizeof(*h) + (uint64_t)(ps->nsq + ps->ncq) *
        sizeof(NvmeLmSqState)) {
        NVME_LM_BAD("NVMECSS does not match NIOSQ/NIOCQ");
        return NVME_INVALID_FIELD | NVME_DNR;
    }

    if (ps->nsq > ps->ioqpairs || ps->ncq > ps->ioqpairs) {
        NVME_LM_BAD("more queues than the target has resources for");
        return NVME_INVALID_FIELD | NVME_DNR;
    }

    if (!ps->nsq && !ps->ncq) {
        return NVME_SUCCESS;
    }

    if (!ps->en) {
        /* I/O queues need an enabled controller */
        return NVME_CMD_SEQ_ERROR | NVME_DNR;
    }

    if (NVME_CC_IOSQES(cc) != NVME_SQES || NVME_CC_IOCQES(cc) != NVME_CQES) {
        NVME_LM_BAD("I/O queue entry sizes not configured");
        return NVME_INVALID_FIELD | NVME_DNR;
    }

    sqs = (const NvmeLmSqState *)(p + sizeof(*h));
    cqs = (const NvmeLmCqState *)(sqs + ps->nsq);
    ps->sqs = g_new0(NvmeLmQ, ps->nsq);
    ps->cqs = g_new0(NvmeLmQ, ps->ncq);

    prev = 0;
    for (uint16_t i = 0; i < ps->ncq; i++) {
        status = nvme_lm_parse_q(t, ps, false, &cqs[i], prev, &ps->cqs[i]);
        if (status) {
            return status;
        }
        prev = ps->cqs[i].qid;
    }

    prev = 0;
    for (uint16_t i = 0; i < ps->nsq; i++) {
        status = nvme_lm_parse_q(t, ps, true, &sqs[i], prev, &ps->sqs[i]);
        if (status) {
            return status;
        }
        prev = ps->sqs[i].qid;

        if (!nvme_lm_find_q(ps->cqs, ps->ncq, ps->sqs[i].cqid)) {
            NVME_LM_BAD("SQ %u bound to missing CQ %u", ps->sqs[i].qid,
                        ps->sqs[i].cqid);
            return NVME_INVALID_FIELD | NVME_DNR;
        }
    }

    return NVME_SUCCESS;
}

/* Pending completions must name queues that exist after the commit */
static uint16_t nvme_lm_check_cqes(NvmeCtrl *t, NvmeLmParsed *ps)
{
    uint32_t asqs = NVME_AQA_ASQS(le32_to_cpu(ps->vh->aqa)) + 1;
    g_autofree uint32_t *used = g_new0(uint32_t, t->params.max_ioqpairs + 1);

    used[0] = ps->naer;

    for (uint32_t i = 0; i < ps->ncqe; i++) {
        const NvmeLmVsCqe *c = &ps->cqes[i];
        uint16_t cqid = le16_to_cpu(c->cqid);
        uint16_t sqid = le16_to_cpu(c->sqid);
        uint32_t limit;

        if (le16_to_cpu(c->status) > 0x7fff ||
            sqid > t->params.max_ioqpairs) {
            return NVME_INVALID_FIELD | NVME_DNR;
        }

        if (!sqid) {
            if (cqid) {
                return NVME_INVALID_FIELD | NVME_DNR;
            }
            limit = asqs;
        } else {
            const NvmeLmQ *sq = ps->nvmecs ?
                nvme_lm_find_q(ps->sqs, ps->nsq, sqid) : NULL;

            if (!sq || sq->cqid != cqid) {
                return NVME_INVALID_FIELD | NVME_DNR;
            }
            limit = sq->size;
        }

        if (++used[sqid] > limit) {
            return NVME_INVALID_FIELD | NVME_DNR;
        }
    }

    return used[0] > asqs ? NVME_INVALID_FIELD | NVME_DNR : NVME_SUCCESS;
}

static void nvme_lm_apply_features(NvmeCtrl *t, const NvmeLmVsHdr *h)
{
    NvmeIdCtrl *id = &t->id_ctrl;
    NvmeAtomic *atomic = &t->atomic;
    uint16_t flags = le16_to_cpu(h->flags);
    uint64_t ts = le64_to_cpu(h->timestamp);
    uint64_t now = qemu_clock_get_ms(QEMU_CLOCK_VIRTUAL);

    t->features.async_config = le32_to_cpu(h->async_config);
    t->features.temp_thresh_hi = le16_to_cpu(h->temp_thresh_hi);
    t->features.temp_thresh_low = le16_to_cpu(h->temp_thresh_low);

    if (flags & NVME_LM_VS_TS_HOST) {
        t->host_timestamp = ts;
        t->timestamp_set_qemu_clock_ms = now;
    } else {
        t->host_timestamp = 0;
        t->timestamp_set_qemu_clock_ms = now - ts;
    }

    t->dn = h->dn & 1;
    atomic->atomic_max_write_size = (t->dn ? le16_to_cpu(id->awupf) :
                                     le16_to_cpu(id->awun)) + 1;
    atomic->atomic_writes = atomic->atomic_max_write_size != 1;

    t->features.hbs.acre = h->hbs_acre;
    t->features.hbs.etdas = h->hbs_etdas;
    t->features.hbs.lbafee = h->hbs_lbafee;
    t->features.hbs.cdfe = h->hbs_cdfe;

    for (unsigned i = 1; i <= NVME_MAX_NAMESPACES; i++) {
        NvmeNamespace *ns = nvme_ns(t, i);
        bool vwc = h->vwc & 1;

        if (!ns) {
            continue;
        }

        ns->id_ns.nlbaf = ns->nlbaf - 1;
        if (!t->features.hbs.lbafee) {
            ns->id_ns.nlbaf = MIN(ns->id_ns.nlbaf, 15);
        }

        if (blk_enable_write_cache(ns->blkconf.blk) != vwc) {
            if (!vwc) {
                blk_flush(ns->blkconf.blk);
            }
            blk_set_enable_write_cache(ns->blkconf.blk, vwc);
        }
    }

    if (flags & NVME_LM_VS_QS_CREATED) {
        t->qs_created = true;
    }

    t->aer_mask = h->aer_mask;
    t->irq_status = le32_to_cpu(h->irq_status);
}

static NvmeRequest *nvme_lm_take_req(NvmeSQueue *sq)
{
    NvmeRequest *req = QTAILQ_FIRST(&sq->req_list);

    QTAILQ_REMOVE(&sq->req_list, req, entry);
    nvme_lm_req_init(req);

    return req;
}

/* Everything has been verified: install it.  Errors here are internal. */
static uint16_t nvme_lm_apply(NvmeCtrl *t, NvmeLmParsed *ps)
{
    NvmeLm *tl = t->lm;

    if (ps->vh) {
        const NvmeLmVsHdr *h = ps->vh;
        uint16_t flags = le16_to_cpu(h->flags);
        uint32_t csts;

        /* replace the whole controller: a Controller Level Reset first */
        nvme_ctrl_reset(t, NVME_RESET_CONTROLLER);

        stl_le_p(&t->bar.aqa, le32_to_cpu(h->aqa));
        stq_le_p(&t->bar.asq, le64_to_cpu(h->asq));
        stq_le_p(&t->bar.acq, le64_to_cpu(h->acq));
        stl_le_p(&t->bar.intms, le32_to_cpu(h->intms));
        t->bar.intmc = t->bar.intms;
        stl_le_p(&t->bar.cc, ps->cc);

        /* after the reset: 0, or CFS for an offline secondary */
        csts = ldl_le_p(&t->bar.csts) |
               (le32_to_cpu(h->csts) & (CSTS_SHST_MASK << CSTS_SHST_SHIFT));

        if (ps->en) {
            if (nvme_start_ctrl(t)) {
                stl_le_p(&t->bar.csts, NVME_CSTS_FAILED);
                return NVME_INTERNAL_DEV_ERROR;
            }

            csts = NVME_CSTS_READY |
                   (le32_to_cpu(h->csts) & (CSTS_SHST_MASK << CSTS_SHST_SHIFT));

            t->admin_sq.head = le16_to_cpu(h->asq_head);
            t->admin_sq.tail = le16_to_cpu(h->asq_tail);
            t->admin_cq.head = le16_to_cpu(h->acq_head);
            t->admin_cq.tail = le16_to_cpu(h->acq_tail);
            t->admin_cq.phase = h->acq_phase;
            if (t->admin_cq.head != t->admin_cq.tail) {
                t->cq_pending++;
            }

            if (flags & NVME_LM_VS_DBBUF) {
                t->dbbuf_dbs = le64_to_cpu(h->dbbuf_dbs);
                t->dbbuf_eis = le64_to_cpu(h->dbbuf_eis);
                t->dbbuf_enabled = true;
                t->admin_sq.db_addr = t->dbbuf_dbs;
                t->admin_sq.ei_addr = t->dbbuf_eis;
                t->admin_cq.db_addr = t->dbbuf_dbs + (1 << 2);
                t->admin_cq.ei_addr = t->dbbuf_eis + (1 << 2);
            }
        }

        stl_le_p(&t->bar.csts, csts);
        nvme_lm_apply_features(t, h);

        /*
         * The source's I/O queue pairs (<= the target's): Number of
         * Queues reports and Create I/O SQ/CQ allow what the source's
         * host was granted, until a function level reset gives the
         * target its own resources back.
         */
        t->conf_ioqpairs = ps->ioqpairs;

        /* version 1 carries no list: empty */
        bitmap_zero(t->changed_nsids, NVME_CHANGED_NSID_SIZE);
        for (uint32_t i = 0; i < ps->nchns; i++) {
            set_bit(ldl_le_p(ps->chns + 4 * i), t->changed_nsids);
        }

        for (uint32_t i = 0; i < ps->nerr; i++) {
            NvmeNamespace *ns = nvme_ns(t, le32_to_cpu(ps->errs[i].nsid));

            /* verified attached; a nested bottom half may have detached it */
            if (ns) {
                ns->features.err_rec = le32_to_cpu(ps->errs[i].err_rec);
            }
        }
    }

    /* completion queues before the submission queues bound to them */
    for (uint16_t i = 0; i < ps->ncq; i++) {
        NvmeLmQ *q = &ps->cqs[i];
        NvmeCQueue *cq = g_malloc0(sizeof(*cq));

        nvme_init_cq(cq, t, q->prp1, q->qid, q->iv, q->size, q->ien);
        cq->head = q->head;
        cq->tail = q->tail;
        cq->phase = q->phase;
        if (cq->irq_enabled && cq->head != cq->tail) {
            t->cq_pending++;
        }
        t->qs_created = true;
    }

    for (uint16_t i = 0; i < ps->nsq; i++) {
        NvmeLmQ *q = &ps->sqs[i];
        NvmeSQueue *sq = g_malloc0(sizeof(*sq));

        nvme_init_sq(sq, t, q->prp1, q->qid, q->cqid, q->size);
        sq->head = q->head;
        sq->tail = q->tail;
    }

    if (ps->vh) {
        for (uint32_t i = 0; i < ps->naer; i++) {
            NvmeRequest *req = nvme_lm_take_req(&t->admin_sq);

            QTAILQ_INSERT_TAIL(&t->admin_sq.out_req_list, req, entry);
            req->cmd.opcode = NVME_ADM_CMD_ASYNC_EV_REQ;
            req->cmd.cid = ps->cids[i];
            req->cqe.cid = ps->cids[i];
            t->aer_reqs[t->outstanding_aers++] = req;
        }

        for (uint32_t i = 0; i < ps->nevt; i++) {
            NvmeAsyncEvent *event = g_new0(NvmeAsyncEvent, 1);

            event->result.event_type = ps->evts[i].type;
            event->result.event_info = ps->evts[i].info;
            event->result.log_page = ps->evts[i].lid;
            event->dw1 = le32_to_cpu(ps->evts[i].dw1);
            QTAILQ_INSERT_TAIL(&t->aer_queue, event, entry);
            t->aer_queued++;
        }

        for (uint32_t i = 0; i < ps->ncqe; i++) {
            const NvmeLmVsCqe *c = &ps->cqes[i];
            uint16_t sqid = le16_to_cpu(c->sqid);
            NvmeSQueue *sq = sqid ? t->sq[sqid] : &t->admin_sq;
            NvmeCQueue *cq = t->cq[le16_to_cpu(c->cqid)];
            NvmeRequest *req = nvme_lm_take_req(sq);

            req->cqe.cid = c->cid;
            req->cmd.cid = c->cid;
            req->cqe.result = c->dw0;
            req->cqe.dw1 = c->dw1;
            req->status = le16_to_cpu(c->status);
            QTAILQ_INSERT_TAIL(&cq->req_list, req, entry);
        }
    }

    switch (tl->state) {
    case NVME_LM_ACTIVE:
        nvme_lm_kick(t);
        break;
    case NVME_LM_SUSPENDING:
        /* a Suspend is draining: restored completions are posted first */
        for (unsigned i = 0; i <= t->params.max_ioqpairs; i++) {
            if (t->cq[i] && !QTAILQ_EMPTY(&t->cq[i]->req_list)) {
                qemu_bh_schedule(t->cq[i]->bh);
            }
        }
        qemu_bh_schedule(tl->quiesce_bh);
        break;
    case NVME_LM_SUSPENDED:
        /* everything starts on Resume */
        break;
    }

    return NVME_SUCCESS;
}

static uint16_t nvme_lm_commit(NvmeCtrl *t, NvmeLmSetSeq *seq)
{
    const NvmeLmStateHdr *hdr = (const NvmeLmStateHdr *)seq->buf;
    uint64_t nvmecs_len = le64_to_cpu(hdr->nvmecss[0]) * 4;
    uint64_t vs_len = le64_to_cpu(hdr->vss[0]) * 4;
    const uint8_t *nvmecs = seq->buf + sizeof(*hdr);
    const uint8_t *vs = nvmecs + nvmecs_len;
    NvmeLmParsed ps = {};
    uint16_t status;

    if (seq->len != sizeof(*hdr) + nvmecs_len + vs_len) {
        NVME_LM_BAD("incomplete controller state");
        return NVME_INVALID_FIELD | NVME_DNR;
    }

    /* NVMe state requires a target without I/O queues */
    if (nvme_lm_has_ioq(t)) {
        NVME_LM_BAD("target has I/O queues");
        return NVME_INVALID_FIELD | NVME_DNR;
    }

    ps.en = nvme_lm_enabled(t);
    ps.cc = ldl_le_p(&t->bar.cc);
    ps.psz = t->page_size;
    ps.ioqpairs = t->conf_ioqpairs;

    if (vs_len) {
        status = nvme_lm_parse_vs(t, vs, vs_len, &ps);
        if (status) {
            goto out;
        }
    }

    if (nvmecs_len) {
        status = nvme_lm_parse_nvmecs(t, nvmecs, nvmecs_len, &ps);
        if (status) {
            goto out;
        }
    }

    if (ps.vh) {
        status = nvme_lm_check_cqes(t, &ps);
        if (status) {
            NVME_LM_BAD("bad pending completion list");
            goto out;
        }
    }

    status = nvme_lm_apply(t, &ps);

out:
    g_free(ps.sqs);
    g_free(ps.cqs);
    return status;
}

/* Header checks, once the first 48 bytes are in */
static uint16_t nvme_lm_check_hdr(NvmeCtrl *t, NvmeLmSetSeq *seq,
                                  uint64_t *total)
{
    const NvmeLmStateHdr *hdr = (const NvmeLmStateHdr *)seq->buf;
    uint64_t nvmecss = le64_to_cpu(hdr->nvmecss[0]);
    uint64_t vss = le64_to_cpu(hdr->vss[0]);
    uint64_t max = nvme_lm_state_max(t);

    if (le16_to_cpu(hdr->ver) != 0 || hdr->nvmecss[1] || hdr->vss[1] ||
        nvmecss > max / 4 || vss > max / 4) {
        return NVME_INVALID_FIELD | NVME_DNR;
    }

    if ((!seq->csvi && nvmecss) || (seq->csvi && !nvmecss) ||
        (!seq->csuuidi && vss) || (seq->csuuidi && !vss)) {
        return NVME_INVALID_FIELD | NVME_DNR;
    }

    *total = sizeof(*hdr) + (nvmecss + vss) * 4;
    if (*total > max || seq->len > *total) {
        return NVME_INVALID_FIELD | NVME_DNR;
    }

    return NVME_SUCCESS;
}

static bool nvme_lm_set_allowed(NvmeCtrl *t)
{
    NvmeSecCtrlEntry *sctrl = nvme_sctrl(t);

    return t->lm->state == NVME_LM_SUSPENDED ||
           NVME_CC_EN(ldl_le_p(&t->bar.cc)) ||
           (sctrl && !sctrl->scs);
}

static uint16_t nvme_lm_set_state(NvmeCtrl *n, NvmeRequest *req)
{
    uint32_t dw10 = le32_to_cpu(req->cmd.cdw10);
    uint32_t dw11 = le32_to_cpu(req->cmd.cdw11);
    uint64_t off = le32_to_cpu(req->cmd.cdw12) |
                   (uint64_t)le32_to_cpu(req->cmd.cdw13) << 32;
    uint32_t numd = le32_to_cpu(req->cmd.cdw15);
    uint64_t len = (uint64_t)numd * 4;
    uint8_t seqind = (dw10 >> 16) & 0x3;
    uint8_t csvi = (dw11 >> 16) & 0xff;
    uint8_t csuuidi = dw11 >> 24;
    uint64_t total = 0, max;
    NvmeLmSetSeq *seq;
    uint16_t status;
    NvmeCtrl *t;

    t = nvme_lm_target(n, dw11 & 0xffff);
    if (!t || !nvme_lm_set_allowed(t)) {
        return NVME_INVALID_CTRL_ID | NVME_DNR;
    }

    if (t->lm->in_commit) {
        return NVME_CMD_SEQ_ERROR | NVME_DNR;
    }

    seq = &t->lm->set;
    trace_pci_nvme_lm_set_state(t->cntlid, seqind, off, len);

    if (seqind == NVME_LM_SEQIND_FIRST || seqind == NVME_LM_SEQIND_ONLY) {
        nvme_lm_set_reset(seq);
        seq->active = true;
        seq->csvi = csvi;
        seq->csuuidi = csuuidi;
    } else if (!seq->active) {
        return NVME_CMD_SEQ_ERROR | NVME_DNR;
    }

    status = NVME_INVALID_FIELD | NVME_DNR;

    if (csvi > 1 || csuuidi > 1 || (!csvi && !csuuidi) ||
        csvi != seq->csvi || csuuidi != seq->csuuidi) {
        goto fail;
    }

    if ((!numd && seqind != NVME_LM_SEQIND_LAST) || (off & 0x3)) {
        goto fail;
    }

    max = nvme_lm_state_max(t);
    if (off > seq->len || off > max || len > max - off) {
        goto fail;
    }

    if (seq->len >= sizeof(NvmeLmStateHdr)) {
        status = nvme_lm_check_hdr(t, seq, &total);
        if (status || off + len > total) {
            status = NVME_INVALID_FIELD | NVME_DNR;
            goto fail;
        }
    }

    if (len) {
        status = nvme_lm_check_mdts(n, len);
        if (status) {
            goto fail;
        }

        /* the transfer helper takes 32 bits (reachable only with MDTS 0) */
        if (len > UINT32_MAX) {
            status = NVME_INVALID_FIELD | NVME_DNR;
            goto fail;
        }

        if (off + len > seq->len) {
            seq->buf = g_realloc(seq->buf, off + len);
        }

        status = nvme_lm_h2c(n, req, seq->buf + off, len);
        if (status) {
            goto fail;
        }

        seq->len = MAX(seq->len, off + len);
    }

    if (seq->len >= sizeof(NvmeLmStateHdr)) {
        status = nvme_lm_check_hdr(t, seq, &total);
        if (status) {
            goto fail;
        }
    }

    if (seqind == NVME_LM_SEQIND_LAST || seqind == NVME_LM_SEQIND_ONLY) {
        /*
         * The sequence ends here whatever the outcome.  Detach it first:
         * the commit resets the target, which drains the block backends
         * and may run other bottom halves meanwhile.
         */
        NvmeLmSetSeq done = *seq;

        memset(seq, 0, sizeof(*seq));

        if (done.len >= sizeof(NvmeLmStateHdr)) {
            t->lm->in_commit = true;
            status = nvme_lm_commit(t, &done);
            t->lm->in_commit = false;
        } else {
            status = NVME_INVALID_FIELD | NVME_DNR;
        }
        trace_pci_nvme_lm_set_state_commit(t->cntlid, done.len, status);

        nvme_lm_set_reset(&done);
        return status;
    }

    return NVME_SUCCESS;

fail:
    nvme_lm_set_reset(seq);
    return status;
}

static uint16_t nvme_lm_migration_send(NvmeCtrl *n, NvmeRequest *req)
{
    uint32_t dw10 = le32_to_cpu(req->cmd.cdw10);

    if (le32_to_cpu(req->cmd.cdw14) & 0x7f) {
        return NVME_INVALID_FIELD | NVME_DNR;
    }

    switch (dw10 & 0xff) {
    case NVME_LM_SEND_SUSPEND:
        return nvme_lm_suspend(n, req);
    case NVME_LM_SEND_RESUME:
        return nvme_lm_resume(n, req);
    case NVME_LM_SEND_SET_STATE:
        return nvme_lm_set_state(n, req);
    default:
        return NVME_INVALID_FIELD | NVME_DNR;
    }
}

/* ------------------------------------------------------------------------ */
/* Track Send / Track Receive                                               */
/* ------------------------------------------------------------------------ */

static uint16_t nvme_lm_log_user_data(NvmeCtrl *n, NvmeRequest *req)
{
    uint32_t dw10 = le32_to_cpu(req->cmd.cdw10);
    uint32_t dw11 = le32_to_cpu(req->cmd.cdw11);
    uint8_t lact = (dw10 >> 16) & 0xf;
    NvmeCdq *q;

    q = nvme_lm_cdq_find(n, dw11 & 0xffff);
    if (!q || !q->target) {
        return NVME_INVALID_CDQ | NVME_DNR;
    }

    if (lact > 1) {
        return NVME_INVALID_FIELD | NVME_DNR;
    }

    if (q->target->lm->state != NVME_LM_ACTIVE) {
        return NVME_CTRL_SUSPENDED | NVME_DNR;
    }

    if (lact) {
        if (q->logging) {
            return NVME_INVALID_CDQ | NVME_DNR;
        }

        if (nvme_lm_cdq_used(q) == q->nslots - 1) {
            return NVME_CDQ_FULL | NVME_DNR;
        }

        q->logging = true;
        nvme_lm_cdq_post_marker(q, NVME_LM_ESA_FIRST);
    } else if (q->logging) {
        nvme_lm_cdq_post_marker(q, NVME_LM_ESA_STOPPED);
        q->logging = false;
    }

    return NVME_SUCCESS;
}

/* Descriptors in use by every tracked controller of every MMC */
static uint32_t nvme_lm_subsys_tracked(NvmeCtrl *n)
{
    NvmeSubsystem *subsys = n->subsys;
    uint32_t count = 0;

    for (unsigned i = 0; i < ARRAY_SIZE(subsys->ctrls); i++) {
        NvmeCtrl *c = nvme_subsys_ctrl(subsys, i);

        if (!c || !nvme_lm_is_mmc(c)) {
            continue;
        }

        for (unsigned v = 0; v < c->params.sriov_max_vfs; v++) {
            NvmeCtrl *vf = nvme_lm_vf_obj(c, v);

            if (vf && vf->lm && vf->lm->track) {
                count += vf->lm->track->nr;
            }
        }
    }

    return count;
}

/* Granules needed for descriptors [0, nr) at granularity g */
static uint64_t nvme_lm_granules(const NvmeLmMrtd *d, uint32_t nr,
                                 uint8_t rg, uint8_t g, uint32_t *fit)
{
    uint64_t total = 0;

    *fit = 0;
    for (uint32_t i = 0; i < nr; i++) {
        uint64_t saddr = le64_to_cpu(d[i].saddr);
        uint64_t size = (uint64_t)le32_to_cpu(d[i].len) << (12 + rg);
        uint64_t first = saddr >> (12 + g);
        uint64_t last = (saddr + size - 1) >> (12 + g);

        total += last - first + 1;
        if (total <= NVME_LM_TRACK_MAX_BITS) {
            *fit = i + 1;
        }
    }

    return total;
}

static int nvme_lm_range_cmp(const void *a, const void *b)
{
    const NvmeLmRange *ra = a, *rb = b;

    return ra->saddr < rb->saddr ? -1 : ra->saddr > rb->saddr;
}

static uint16_t nvme_lm_track_memory(NvmeCtrl *n, NvmeRequest *req)
{
    NvmeIdCtrl *id = &n->id_ctrl;
    uint32_t dw10 = le32_to_cpu(req->cmd.cdw10);
    uint32_t dw11 = le32_to_cpu(req->cmd.cdw11);
    bool tact = (dw10 >> 16) & 0x1;
    g_autofree uint8_t *buf = NULL;
    NvmeLmTrackMem hdr;
    const NvmeLmMrtd *d;
    NvmeLmTrack *tr;
    uint32_t rnmrtd, fit, avail;
    uint64_t size, granules;
    uint16_t status;
    unsigned shift;
    NvmeCtrl *t;

    t = nvme_lm_target(n, dw11 & 0xffff);
    if (!t) {
        return NVME_INVALID_CTRL_ID | NVME_DNR;
    }

    if (t->lm->state != NVME_LM_ACTIVE) {
        return NVME_CTRL_SUSPENDED | NVME_DNR;
    }

    if (!tact) {
        trace_pci_nvme_lm_track_stop(t->cntlid, !!t->lm->track);
        nvme_lm_track_free(t->lm->track);
        t->lm->track = NULL;
        return NVME_SUCCESS;
    }

    if (t->lm->track) {
        return NVME_INVALID_CTRL_ID | NVME_DNR;
    }

    status = nvme_lm_h2c(n, req, &hdr, sizeof(hdr));
    if (status) {
        return status;
    }

    rnmrtd = le32_to_cpu(hdr.rnmrtd);
    if (hdr.ver != 0 || hdr.rmrtg < id->minmrtg || hdr.rmrtg > id->maxmrtg ||
        !rnmrtd || rnmrtd > le16_to_cpu(id->cmmrtd) ||
        rnmrtd > le16_to_cpu(id->nmmrtd)) {
        return NVME_INVALID_FIELD | NVME_DNR;
    }

    avail = le16_to_cpu(id->nmmrtd) -
            MIN(nvme_lm_subsys_tracked(n), le16_to_cpu(id->nmmrtd));
    if (rnmrtd > avail) {
        /* descriptors left in the subsystem budget */
        req->cqe.result = cpu_to_le32(hdr.rmrtg);
        req->cqe.dw1 = cpu_to_le32(avail);
        return NVME_NOT_ENOUGH_RESOURCES | NVME_DNR;
    }

    size = sizeof(hdr) + (uint64_t)rnmrtd * sizeof(NvmeLmMrtd);
    status = nvme_lm_check_mdts(n, size);
    if (status) {
        return status;
    }

    buf = g_malloc(size);
    status = nvme_lm_h2c(n, req, buf, size);
    if (status) {
        return status;
    }

    shift = 12 + hdr.rmrtg;
    d = (const NvmeLmMrtd *)(buf + sizeof(hdr));

    for (uint32_t i = 0; i < rnmrtd; i++) {
        uint64_t saddr = le64_to_cpu(d[i].saddr);
        uint64_t len = le32_to_cpu(d[i].len);

        if (!len || (saddr & ((1ULL << shift) - 1)) ||
            len > (UINT64_MAX >> shift) ||
            saddr > UINT64_MAX - (len << shift)) {
            return NVME_INVALID_FIELD | NVME_DNR;
        }
    }

    granules = nvme_lm_granules(d, rnmrtd, hdr.rmrtg, hdr.rmrtg, &fit);
    if (granules > NVME_LM_TRACK_MAX_BITS) {
        uint8_t g = hdr.rmrtg;

        /*
         * Too fine: report the finest granularity (at most MAXMRTG) that
         * would fit, and how many descriptors fit at that granularity.
         */
        while (g < id->maxmrtg) {
            g++;
            if (nvme_lm_granules(d, rnmrtd, hdr.rmrtg, g, &fit) <=
                NVME_LM_TRACK_MAX_BITS) {
                break;
            }
        }

        nvme_lm_granules(d, rnmrtd, hdr.rmrtg, g, &fit);
        req->cqe.result = cpu_to_le32(g);
        req->cqe.dw1 = cpu_to_le32(fit);
        return NVME_NOT_ENOUGH_RESOURCES | NVME_DNR;
    }

    tr = g_new0(NvmeLmTrack, 1);
    tr->gran = hdr.rmrtg;
    tr->shift = shift;
    tr->nr = rnmrtd;
    tr->ranges = g_new0(NvmeLmRange, rnmrtd);

    for (uint32_t i = 0; i < rnmrtd; i++) {
        NvmeLmRange *r = &tr->ranges[i];

        r->saddr = le64_to_cpu(d[i].saddr);
        r->nbits = le32_to_cpu(d[i].len);
        r->end = r->saddr + (r->nbits << shift);
    }

    qsort(tr->ranges, tr->nr, sizeof(NvmeLmRange), nvme_lm_range_cmp);

    for (uint32_t i = 1; i < tr->nr; i++) {
        if (tr->ranges[i].saddr < tr->ranges[i - 1].end) {
            nvme_lm_track_free(tr);
            return NVME_INVALID_FIELD | NVME_DNR;
        }
    }

    for (uint32_t i = 0; i < tr->nr; i++) {
        tr->ranges[i].bitmap = bitmap_new(tr->ranges[i].nbits);
    }

    t->lm->track = tr;
    trace_pci_nvme_lm_track_start(t->cntlid, tr->nr, tr->shift);

    return NVME_SUCCESS;
}

static uint16_t nvme_lm_track_send(NvmeCtrl *n, NvmeRequest *req)
{
    switch (le32_to_cpu(req->cmd.cdw10) & 0xff) {
    case NVME_LM_TRACK_LOG_USER_DATA:
        return nvme_lm_log_user_data(n, req);
    case NVME_LM_TRACK_MEMORY:
        return nvme_lm_track_memory(n, req);
    default:
        return NVME_INVALID_FIELD | NVME_DNR;
    }
}

typedef struct NvmeLmRun {
    uint32_t range;
    uint64_t bit;
    uint64_t nbits;
} NvmeLmRun;

/*
 * Collect up to max runs of dirty granules, starting where the previous
 * report stopped so that a hot region cannot starve the others.  Returns
 * the number of runs; *more tells whether anything is left unreported.
 */
static uint32_t nvme_lm_collect(NvmeLmTrack *tr, NvmeLmRun *runs,
                                uint32_t max, bool *more)
{
    uint32_t count = 0;
    uint32_t ri = tr->cur_range < tr->nr ? tr->cur_range : 0;
    uint64_t bit = tr->cur_range < tr->nr ? tr->cur_bit : 0;
    uint32_t visited = 0;

    *more = false;

    /* tr->nr + 1 visits: the first range may be resumed mid-way */
    while (visited <= tr->nr) {
        NvmeLmRange *r = &tr->ranges[ri];
        uint64_t limit = r->nbits;

        if (visited == tr->nr) {
            /* back at the start range: only the part before the cursor */
            limit = MIN(tr->cur_bit, r->nbits);
            bit = 0;
        }

        while (bit < limit) {
            uint64_t s = find_next_bit(r->bitmap, limit, bit);
            uint64_t e;

            if (s >= limit) {
                break;
            }

            if (count == max) {
                *more = true;
                tr->cur_range = ri;
                tr->cur_bit = s;
                return count;
            }

            e = find_next_zero_bit(r->bitmap, limit, s);
            if (e - s > UINT32_MAX) {
                e = s + UINT32_MAX;
            }

            runs[count].range = ri;
            runs[count].bit = s;
            runs[count].nbits = e - s;
            count++;
            bit = e;
        }

        visited++;
        ri = (ri + 1) % tr->nr;
        bit = 0;
    }

    tr->cur_range = 0;
    tr->cur_bit = 0;

    return count;
}

static uint16_t nvme_lm_track_recv(NvmeCtrl *n, NvmeRequest *req)
{
    uint32_t dw10 = le32_to_cpu(req->cmd.cdw10);
    uint32_t dw11 = le32_to_cpu(req->cmd.cdw11);
    uint64_t len = ((uint64_t)le32_to_cpu(req->cmd.cdw12) + 1) * 4;
    g_autofree NvmeLmRun *runs = NULL;
    g_autofree uint8_t *buf = NULL;
    NvmeLmTracked *hdr;
    NvmeLmTmcd *desc;
    NvmeLmTrack *tr;
    uint32_t max, count;
    uint16_t cntlid = dw11 & 0xffff;
    uint16_t status;
    bool more;
    NvmeCtrl *t;

    if ((dw10 & 0xff) != 0) {
        return NVME_INVALID_FIELD | NVME_DNR;
    }

    t = nvme_lm_target(n, cntlid);
    if (!t || !t->lm->track) {
        return NVME_INVALID_CTRL_ID | NVME_DNR;
    }

    if (len < sizeof(NvmeLmTracked)) {
        return NVME_INVALID_FIELD | NVME_DNR;
    }

    status = nvme_lm_check_mdts(n, len);
    if (status) {
        return status;
    }

    tr = t->lm->track;
    max = MIN((len - sizeof(NvmeLmTracked)) / sizeof(NvmeLmTmcd),
              NVME_LM_TRACK_MAX_REPORT);
    runs = g_new(NvmeLmRun, MAX(max, 1));

    {
        /* collection moves the cursor; undo it if the transfer fails */
        uint32_t cur_range = tr->cur_range;
        uint64_t cur_bit = tr->cur_bit;

        count = nvme_lm_collect(tr, runs, max, &more);

        /* a header-only buffer can only say "nothing to report" */
        if (!max && more) {
            tr->cur_range = cur_range;
            tr->cur_bit = cur_bit;
            return NVME_INVALID_FIELD | NVME_DNR;
        }

        buf = g_malloc0(sizeof(NvmeLmTracked) + count * sizeof(NvmeLmTmcd));
        hdr = (NvmeLmTracked *)buf;
        desc = (NvmeLmTmcd *)(buf + sizeof(*hdr));

        hdr->ver = 0;
        hdr->attrb = (more ? NVME_LM_TMC_MTR : 0) |
                     (t->lm->state == NVME_LM_SUSPENDED ? NVME_LM_TMC_SUSP : 0);
        hdr->cntlid = cpu_to_le16(cntlid);
        hdr->ntmcd = cpu_to_le32(count);
        hdr->rpmpg = cpu_to_le16(tr->gran);

        for (uint32_t i = 0; i < count; i++) {
            NvmeLmRange *r = &tr->ranges[runs[i].range];

            desc[i].saddr = cpu_to_le64(r->saddr +
                                        (runs[i].bit << tr->shift));
            desc[i].len = cpu_to_le32(runs[i].nbits);
        }

        status = nvme_lm_c2h(n, req, buf, sizeof(NvmeLmTracked) +
                             count * sizeof(NvmeLmTmcd));
        if (status) {
            tr->cur_range = cur_range;
            tr->cur_bit = cur_bit;
            return status;
        }
    }

    trace_pci_nvme_lm_track_report(cntlid, count, more);

    /* read and clear: only what has been reported */
    for (uint32_t i = 0; i < count; i++) {
        bitmap_clear(tr->ranges[runs[i].range].bitmap, runs[i].bit,
                     runs[i].nbits);
    }

    return NVME_SUCCESS;
}

/* ------------------------------------------------------------------------ */
/* Admin command and Identify entry points                                  */
/* ------------------------------------------------------------------------ */

uint16_t nvme_lm_admin_cmd(NvmeCtrl *n, NvmeRequest *req)
{
    NvmeLm *lm = n->lm;
    uint8_t sel = le32_to_cpu(req->cmd.cdw10) & 0xff;

    if (!nvme_lm_is_mmc(n)) {
        return NVME_INVALID_OPCODE | NVME_DNR;
    }

    if (nvme_lm_fault_hit(lm, nvme_lm_fault_kind(req->cmd.opcode, sel))) {
        return lm->fault_status;
    }

    switch (req->cmd.opcode) {
    case NVME_ADM_CMD_MIGRATION_SEND:
        return nvme_lm_migration_send(n, req);
    case NVME_ADM_CMD_MIGRATION_RECV:
        return nvme_lm_get_state(n, req);
    case NVME_ADM_CMD_TRACK_SEND:
        return nvme_lm_track_send(n, req);
    case NVME_ADM_CMD_TRACK_RECV:
        return nvme_lm_track_recv(n, req);
    case NVME_ADM_CMD_CDQ:
        return nvme_lm_cdq(n, req);
    default:
        return NVME_INVALID_OPCODE | NVME_DNR;
    }
}

/* An Identify of any CNS sent to the MMC: 0, or the injected status */
uint16_t nvme_lm_identify_fault(NvmeCtrl *n)
{
    if (!nvme_lm_is_mmc(n) ||
        !nvme_lm_fault_hit(n->lm, NVME_LM_FAULT_IDENTIFY)) {
        return NVME_SUCCESS;
    }

    return n->lm->fault_status;
}

uint16_t nvme_lm_identify_csf(NvmeCtrl *n, NvmeRequest *req)
{
    uint8_t id[NVME_IDENTIFY_DATA_SIZE] = {};

    if (!nvme_lm_is_mmc(n)) {
        return NVME_INVALID_FIELD | NVME_DNR;
    }

    if (nvme_lm_fault_hit(n->lm, NVME_LM_FAULT_IDENTIFY_CSF)) {
        return n->lm->fault_status;
    }

    id[0] = 1;                  /* NV: one NVMe controller state version */
    id[1] = 1;                  /* NUUID: one vendor specific state UUID */
    stw_le_p(&id[2], NVME_LM_NVMECS_VERSION);
    memcpy(&id[4], nvme_lm_vs_uuid, sizeof(nvme_lm_vs_uuid));

    return nvme_lm_c2h(n, req, id, sizeof(id));
}

/* ------------------------------------------------------------------------ */
/* Resets                                                                   */
/* ------------------------------------------------------------------------ */

/*
 * VF @vf_index of @pf went away (VF Enable cleared or NumVFs lowered): the
 * memory the MMC kept for it, its tracking bitmaps and a Set Controller
 * State buffer received in part, is given back at once instead of at the
 * next reset of the MMC.
 */
void nvme_lm_vf_disabled(NvmeCtrl *pf, unsigned vf_index)
{
    NvmeCtrl *vf = nvme_lm_vf_obj(pf, vf_index);
    NvmeLm *vl = vf ? vf->lm : NULL;

    if (!vl || !nvme_lm_is_mmc(pf)) {
        return;
    }

    trace_pci_nvme_lm_vf_disabled(vf->cntlid, !!vl->track, vl->set.len);
    nvme_lm_track_free(vl->track);
    vl->track = NULL;
    nvme_lm_set_reset(&vl->set);
}

void nvme_lm_ctrl_reset(NvmeCtrl *n, NvmeResetType rst)
{
    NvmeLm *lm = n->lm;
    NvmeCtrl *mmc;

    if (!lm || lm->in_commit) {
        return;
    }

    lm->ctrl_resets++;
    trace_pci_nvme_lm_ctrl_reset(n->cntlid, lm->mmc,
                                 nvme_lm_state_name(lm->state));

    if (lm->mmc) {
        /*
         * Reset of the MMC: its CDQs are deleted, all memory tracking
         * stops, Set Controller State sequences and Suspend commands in
         * progress are dropped (the latter are cancelled with the admin
         * queue) and every secondary controller is resumed.
         */
        while (!QTAILQ_EMPTY(&lm->cdqs)) {
            nvme_lm_cdq_free(QTAILQ_FIRST(&lm->cdqs));
        }

        for (unsigned i = 0; i < n->params.sriov_max_vfs; i++) {
            NvmeCtrl *vf = nvme_lm_vf_obj(n, i);
            NvmeLm *vl = vf ? vf->lm : NULL;

            if (!vl) {
                continue;
            }

            nvme_lm_track_free(vl->track);
            vl->track = NULL;
            nvme_lm_set_reset(&vl->set);
            g_slist_free_full(vl->suspend_reqs, g_free);
            vl->suspend_reqs = NULL;
            nvme_lm_hold_end(vl);

            if (vl->state != NVME_LM_ACTIVE) {
                vl->state = NVME_LM_ACTIVE;
                nvme_lm_kick(vf);
            }
        }

        return;
    }

    /*
     * Controller Level Reset of a migratable controller: it is no longer
     * suspended.  A Suspend still waiting for in-flight commands completes
     * once the reset has cancelled them.
     */
    switch (lm->state) {
    case NVME_LM_SUSPENDED:
        lm->state = NVME_LM_ACTIVE;
        break;
    case NVME_LM_SUSPENDING:
        /*
         * lm-hold-over-reset: the Suspend completes when its hold ends,
         * after the reset, and the target is then suspended again.
         */
        mmc = nvme_lm_mmc_of(n);
        if (!mmc || !mmc->lm->hold_over_reset) {
            nvme_lm_hold_end(lm);
        }
        qemu_bh_schedule(lm->quiesce_bh);
        break;
    default:
        break;
    }
}

/* ------------------------------------------------------------------------ */
/* Properties and life cycle                                                */
/* ------------------------------------------------------------------------ */

static bool nvme_lm_prop_get_hmlms(Object *obj, Error **errp)
{
    return NVME(obj)->lm->hmlms;
}

static void nvme_lm_prop_set_hmlms(Object *obj, bool value, Error **errp)
{
    if (DEVICE(obj)->realized) {
        error_setg(errp, "hmlms can only be set before the device is realized");
        return;
    }

    NVME(obj)->lm->hmlms = value;
}

static char *nvme_lm_prop_get_fault_cmd(Object *obj, Error **errp)
{
    return g_strdup(nvme_lm_fault_names[NVME(obj)->lm->fault_cmd]);
}

static void nvme_lm_prop_set_fault_cmd(Object *obj, const char *value,
                                       Error **errp)
{
    for (int i = 0; i < NVME_LM_FAULT__MAX; i++) {
        if (!strcmp(value, nvme_lm_fault_names[i])) {
            NVME(obj)->lm->fault_cmd = i;
            return;
        }
    }

    error_setg(errp, "lm-fault-cmd must be one of none, suspend, resume, "
               "get-state, set-state, track-send, track-recv, identify-csf, "
               "corrupt-state, identify");
}

/* "suspend=1 resume=0 ...": what a test needs to fail each command once */
static char *nvme_lm_prop_get_cmds_seen(Object *obj, Error **errp)
{
    NvmeLm *lm = NVME(obj)->lm;
    GString *s = g_string_new(NULL);

    for (int i = NVME_LM_FAULT_NONE + 1; i < NVME_LM_FAULT__MAX; i++) {
        g_string_append_printf(s, "%s%s=%u", i > 1 ? " " : "",
                               nvme_lm_fault_names[i], lm->fault_seen[i]);
    }

    return g_string_free(s, false);
}

static void nvme_lm_prop_get_uint(Object *obj, Visitor *v, const char *name,
                                  void *opaque, Error **errp)
{
    const NvmeLmUintProp *p = opaque;
    uint32_t value = *nvme_lm_uint_field(NVME(obj)->lm, p);

    visit_type_uint32(v, name, &value, errp);
}

static void nvme_lm_prop_set_uint(Object *obj, Visitor *v, const char *name,
                                  void *opaque, Error **errp)
{
    const NvmeLmUintProp *p = opaque;
    uint32_t value;

    if (!p->runtime && DEVICE(obj)->realized) {
        error_setg(errp, "%s can only be set before the device is realized",
                   name);
        return;
    }

    if (!visit_type_uint32(v, name, &value, errp)) {
        return;
    }

    if (value < p->min || value > p->max) {
        error_setg(errp, "%s must be in [%u, %u]", name, p->min, p->max);
        return;
    }

    *nvme_lm_uint_field(NVME(obj)->lm, p) = value;
}

void nvme_lm_instance_init(Object *obj)
{
    NvmeCtrl *n = NVME(obj);
    NvmeLm *lm = g_new0(NvmeLm, 1);
    ObjectProperty *op;

    lm->n = n;
    lm->state = NVME_LM_ACTIVE;
    QTAILQ_INIT(&lm->cdqs);
    n->lm = lm;

    op = object_property_add_bool(obj, "hmlms", nvme_lm_prop_get_hmlms,
                                  nvme_lm_prop_set_hmlms);
    object_property_set_description(obj, op->name,
        "Host Managed Live Migration: this PF is a Migration Management "
        "Controller for its VFs");

    op = object_property_add_str(obj, "lm-fault-cmd",
                                 nvme_lm_prop_get_fault_cmd,
                                 nvme_lm_prop_set_fault_cmd);
    object_property_set_description(obj, op->name,
        "fault injection: kind of command to fail (none, suspend, resume, "
        "get-state, set-state, track-send, track-recv, identify-csf, "
        "corrupt-state, identify: any Identify of the MMC)");

    op = object_property_add_str(obj, "lm-cmds-seen",
                                 nvme_lm_prop_get_cmds_seen, NULL);
    object_property_set_description(obj, op->name,
        "fault injection: commands of each lm-fault-cmd kind this MMC saw "
        "(statistics)");

    for (size_t i = 0; i < ARRAY_SIZE(nvme_lm_uint_props); i++) {
        const NvmeLmUintProp *p = &nvme_lm_uint_props[i];

        *nvme_lm_uint_field(lm, p) = p->def;
        op = object_property_add(obj, p->name, p->type,
                                 nvme_lm_prop_get_uint, nvme_lm_prop_set_uint,
                                 NULL, (void *)p);
        object_property_set_description(obj, op->name, p->desc);
    }
}

void nvme_lm_instance_finalize(Object *obj)
{
    NvmeCtrl *n = NVME(obj);
    NvmeLm *lm = n->lm;

    if (!lm) {
        return;
    }

    /* CDQs of an MMC: no DMA, the VFs may already be gone */
    while (!QTAILQ_EMPTY(&lm->cdqs)) {
        NvmeCdq *q = QTAILQ_FIRST(&lm->cdqs);

        QTAILQ_REMOVE(&lm->cdqs, q, entry);
        g_free(q->prps);
        g_free(q);
    }

    /* a VF going away before its MMC */
    if (lm->udmq) {
        lm->udmq->target = NULL;
        lm->udmq->logging = false;
    }

    nvme_lm_track_free(lm->track);
    nvme_lm_set_reset(&lm->set);
    g_slist_free_full(lm->suspend_reqs, g_free);

    if (lm->quiesce_bh) {
        qemu_bh_delete(lm->quiesce_bh);
    }

    if (lm->hold_timer) {
        timer_free(lm->hold_timer);
    }

    g_free(lm);
    n->lm = NULL;
}

bool nvme_lm_init_ctrl(NvmeCtrl *n, Error **errp)
{
    NvmeLm *lm = n->lm;
    NvmeIdCtrl *id = &n->id_ctrl;
    uint16_t oacs;

    lm->quiesce_bh = qemu_bh_new_guarded(nvme_lm_quiesce_bh, n,
                                         &DEVICE(n)->mem_reentrancy_guard);
    lm->hold_timer = timer_new_ms(QEMU_CLOCK_VIRTUAL, nvme_lm_hold_timer_cb, n);

    if (pci_is_vf(PCI_DEVICE(n))) {
        /*
         * A VF's Function Level Reset is done when the config write that
         * starts it returns: the VF reports Immediate Readiness, and the
         * host does not wait the 100 ms after an FLR that PCIe allows a
         * function without it (every VFIO_DEVICE_RESET is such an FLR).
         */
        pci_word_test_and_set_mask(PCI_DEVICE(n)->config + PCI_STATUS,
                                   PCI_STATUS_IMM_READY);
    }

    if (pci_is_vf(PCI_DEVICE(n)) || !lm->hmlms) {
        /* migratable controllers never report HMLMS */
        lm->hmlms = false;
        return true;
    }

    if (lm->minmrtg > lm->maxmrtg) {
        error_setg(errp, "lm.minmrtg must not exceed lm.maxmrtg");
        return false;
    }

    if (lm->cmmrtd > lm->nmmrtd || lm->mcudmq > lm->mnsudmq ||
        lm->mcmr > lm->nmcmr) {
        error_setg(errp, "a per controller lm limit exceeds its subsystem "
                   "limit (cmmrtd/nmmrtd, mcudmq/mnsudmq, mcmr/nmcmr)");
        return false;
    }

    lm->mmc = true;

    oacs = le16_to_cpu(id->oacs) | NVME_OACS_HMLMS;
    id->oacs = cpu_to_le16(oacs);

    id->cmmrtd = cpu_to_le16(lm->cmmrtd);
    id->nmmrtd = cpu_to_le16(lm->nmmrtd);
    id->minmrtg = lm->minmrtg;
    id->maxmrtg = lm->maxmrtg;
    id->trattr = NVME_LM_TRATTR_THMCS | NVME_LM_TRATTR_TUDCS;
    id->mcudmq = cpu_to_le16(lm->mcudmq);
    id->mnsudmq = cpu_to_le16(lm->mnsudmq);
    id->mcmr = cpu_to_le16(lm->mcmr);
    id->nmcmr = cpu_to_le16(lm->nmcmr);
    id->mcdqpc = cpu_to_le16(lm->mcdqpc);

    n->cse.acs[NVME_ADM_CMD_TRACK_SEND] = NVME_CMD_EFF_CSUPP;
    n->cse.acs[NVME_ADM_CMD_TRACK_RECV] = NVME_CMD_EFF_CSUPP;
    n->cse.acs[NVME_ADM_CMD_MIGRATION_SEND] = NVME_CMD_EFF_CSUPP;
    n->cse.acs[NVME_ADM_CMD_MIGRATION_RECV] = NVME_CMD_EFF_CSUPP;
    n->cse.acs[NVME_ADM_CMD_CDQ] = NVME_CMD_EFF_CSUPP;

    return true;
}
