/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * QTest of the NVMe Host Managed Live Migration model (hw/nvme/lm.c)
 *
 * The test is the host: it brings up the PF (the Migration Management
 * Controller) and two of its VFs through config space and BAR0 alone, no
 * guest kernel, and drives every TP4159 command the model implements.  The
 * Set Controller State fuzzer feeds mutated states to a suspended VF and
 * checks after each one that QEMU is alive, the PF is untouched and the VF
 * comes up and answers Identify again.
 *
 * Environment: NVME_LM_FUZZ_CASES (default 500), NVME_LM_FUZZ_SEED.
 */

#include "qemu/osdep.h"
#include "libqtest.h"
#include "block/nvme.h"
#include "hw/pci/pci_regs.h"
#include "qemu/cutils.h"
#include "qemu/units.h"
#include "qemu/timer.h"

#define ECAM_BASE       0xb0000000ULL
#define PF_DEVFN        (4 << 3)
#define PF_BAR          0xe0000000ULL
#define VF_BAR          0xe1000000ULL
#define RAM_FIRST       0x00100000ULL
#define RAM_END         0x08000000ULL
#define PAGE            4096u
#define NR_VFS          2
#define ADMIN_DEPTH     16
#define IO_DEPTH        16
#define POLL_US         (10 * G_USEC_PER_SEC)

/* status: SCT and SC, without DNR and More */
#define SC(s)           ((s) & 0x7ff)
#define SC_SUCCESS      0x0
#define SC_INVALID_OP   0x1
#define SC_INVALID_FLD  0x2
#define SC_CMD_SEQ      0xc
#define SC_PRP_OFFSET   0x13
#define SC_CTRL_ID      0x11f
#define SC_INVALID_CDQ  0x137
#define SC_NOT_SUSP     0x13a
#define SC_TIMEOUT      0xffff

/* TP4159 encodings (tp4159.md section 2) */
#define MS_SUSPEND      0x0
#define MS_RESUME       0x1
#define MS_SET          0x2
#define STYPE_SUSPEND   (1u << 16)
#define SEQ_MIDDLE      0x0
#define SEQ_FIRST       0x1
#define SEQ_LAST        0x2
#define SEQ_ONLY        0x3
#define HDR_LEN         48

#define VM_OFFLINE      0x7
#define VM_ASSIGN       0x8
#define VM_ONLINE       0x9

typedef struct LmQueue {
    uint64_t sq, cq;
    uint16_t qid, depth, tail, head;
    bool phase;
    uint16_t cid;
} LmQueue;

typedef struct LmCtrl {
    uint64_t bar;
    uint8_t devfn;
    uint16_t cntlid;
    LmQueue aq, ioq;
} LmCtrl;

typedef struct LmTest {
    QTestState *qts;
    char *img;
    uint64_t brk;
    uint64_t buf;               /* PAGE * 4 of data buffer */
    uint16_t sriov;             /* the PF's SR-IOV capability */
    LmCtrl pf, vf[NR_VFS];
} LmTest;

/* ---------------------------------------------------------------------- */
/* Config space (ECAM, bus 0) and memory                                  */
/* ---------------------------------------------------------------------- */

static uint64_t cfg_addr(uint8_t devfn, uint16_t off)
{
    return ECAM_BASE + ((uint64_t)devfn << 12) + off;
}

static uint16_t cfg_readw(LmTest *t, uint8_t devfn, uint16_t off)
{
    return qtest_readw(t->qts, cfg_addr(devfn, off));
}

static uint32_t cfg_readl(LmTest *t, uint8_t devfn, uint16_t off)
{
    return qtest_readl(t->qts, cfg_addr(devfn, off));
}

static void cfg_writew(LmTest *t, uint8_t devfn, uint16_t off, uint16_t v)
{
    qtest_writew(t->qts, cfg_addr(devfn, off), v);
}

static void cfg_writel(LmTest *t, uint8_t devfn, uint16_t off, uint32_t v)
{
    qtest_writel(t->qts, cfg_addr(devfn, off), v);
}

static uint16_t find_cap(LmTest *t, uint8_t devfn, uint8_t id)
{
    uint8_t pos = qtest_readb(t->qts, cfg_addr(devfn, PCI_CAPABILITY_LIST));

    while (pos) {
        if (qtest_readb(t->qts, cfg_addr(devfn, pos)) == id) {
            return pos;
        }
        pos = qtest_readb(t->qts, cfg_addr(devfn, pos + 1));
    }
    return 0;
}

static uint16_t find_ext_cap(LmTest *t, uint8_t devfn, uint16_t id)
{
    uint16_t pos = PCI_CFG_SPACE_SIZE;

    while (pos) {
        uint32_t h = cfg_readl(t, devfn, pos);

        if (PCI_EXT_CAP_ID(h) == id) {
            return pos;
        }
        pos = PCI_EXT_CAP_NEXT(h);
    }
    return 0;
}

static uint64_t mem_alloc(LmTest *t, uint64_t size)
{
    uint64_t a = t->brk;

    t->brk += ROUND_UP(size, PAGE);
    g_assert_cmphex(t->brk, <=, RAM_END);
    qtest_memset(t->qts, a, 0, ROUND_UP(size, PAGE));
    return a;
}

static uint32_t reg_read(LmTest *t, LmCtrl *c, uint32_t off)
{
    return qtest_readl(t->qts, c->bar + off);
}

static void reg_write(LmTest *t, LmCtrl *c, uint32_t off, uint32_t v)
{
    qtest_writel(t->qts, c->bar + off, v);
}

/* ---------------------------------------------------------------------- */
/* NVMe queues                                                            */
/* ---------------------------------------------------------------------- */

static void queue_init(LmTest *t, LmQueue *q, uint16_t qid, uint16_t depth)
{
    memset(q, 0, sizeof(*q));
    q->qid = qid;
    q->depth = depth;
    q->phase = true;
    q->sq = mem_alloc(t, depth * sizeof(NvmeCmd));
    q->cq = mem_alloc(t, depth * sizeof(NvmeCqe));
}

static void queue_reuse(LmTest *t, LmQueue *q)
{
    q->tail = q->head = 0;
    q->phase = true;
    qtest_memset(t->qts, q->cq, 0, q->depth * sizeof(NvmeCqe));
}

static uint16_t submit(LmTest *t, LmCtrl *c, LmQueue *q, NvmeCmd *cmd)
{
    cmd->cid = cpu_to_le16(++q->cid);
    qtest_memwrite(t->qts, q->sq + q->tail * sizeof(*cmd), cmd, sizeof(*cmd));
    q->tail = (q->tail + 1) % q->depth;
    reg_write(t, c, 0x1000 + 8 * q->qid, q->tail);
    return q->cid;
}

/*
 * Wait for the next completion of @q for up to @us microseconds of wall
 * time.  The virtual clock is stepped meanwhile so that the model's timers
 * run.  Returns the status (SCT/SC/DNR), or SC_TIMEOUT.
 */
static uint16_t reap_within(LmTest *t, LmCtrl *c, LmQueue *q, NvmeCqe *out,
                            int64_t us)
{
    int64_t end = g_get_monotonic_time() + us;
    NvmeCqe cqe;
    unsigned n = 0;

    for (;;) {
        qtest_memread(t->qts, q->cq + q->head * sizeof(cqe), &cqe, sizeof(cqe));
        if ((le16_to_cpu(cqe.status) & 1) == q->phase) {
            break;
        }
        if (g_get_monotonic_time() > end) {
            return SC_TIMEOUT;
        }
        if (++n % 16 == 0) {
            qtest_clock_step(t->qts, 100 * SCALE_US);
        }
    }
    q->head = (q->head + 1) % q->depth;
    if (!q->head) {
        q->phase = !q->phase;
    }
    reg_write(t, c, 0x1000 + 8 * q->qid + 4, q->head);
    if (out) {
        *out = cqe;
    }
    return le16_to_cpu(cqe.status) >> 1;
}

static uint16_t cmd_on(LmTest *t, LmCtrl *c, LmQueue *q, NvmeCmd *cmd,
                       uint32_t *dw0)
{
    NvmeCqe cqe = {};
    uint16_t status;

    submit(t, c, q, cmd);
    status = reap_within(t, c, q, &cqe, POLL_US);
    g_assert_cmphex(status, !=, SC_TIMEOUT);
    if (dw0) {
        *dw0 = le32_to_cpu(cqe.result);
    }
    return status;
}

static uint16_t admin(LmTest *t, LmCtrl *c, NvmeCmd *cmd, uint32_t *dw0)
{
    return cmd_on(t, c, &c->aq, cmd, dw0);
}

static void wait_rdy(LmTest *t, LmCtrl *c, uint32_t rdy)
{
    int64_t end = g_get_monotonic_time() + POLL_US;

    while ((reg_read(t, c, 0x1c) & 1) != rdy) {
        g_assert_cmpint(g_get_monotonic_time(), <, end);
        qtest_clock_step(t->qts, 100 * SCALE_US);
    }
}

/* reset the controller and enable it with its admin queue */
static void ctrl_enable(LmTest *t, LmCtrl *c)
{
    reg_write(t, c, 0x14, 0);
    wait_rdy(t, c, 0);
    if (!c->aq.depth) {
        queue_init(t, &c->aq, 0, ADMIN_DEPTH);
    } else {
        queue_reuse(t, &c->aq);
    }
    memset(&c->ioq, 0, sizeof(c->ioq));
    reg_write(t, c, 0x24, (ADMIN_DEPTH - 1) << 16 | (ADMIN_DEPTH - 1));
    qtest_writeq(t->qts, c->bar + 0x28, c->aq.sq);
    qtest_writeq(t->qts, c->bar + 0x30, c->aq.cq);
    reg_write(t, c, 0x14, 6 << 16 | 4 << 20 | 1);
    wait_rdy(t, c, 1);
}

static uint16_t identify(LmTest *t, LmCtrl *c, uint8_t cns, uint64_t buf)
{
    NvmeCmd cmd = {
        .opcode = NVME_ADM_CMD_IDENTIFY,
        .dptr.prp1 = cpu_to_le64(buf),
        .cdw10 = cpu_to_le32(cns),
    };

    return admin(t, c, &cmd, NULL);
}

/* I/O queue pair @qid (contiguous, no interrupts, vector @iv) */
static void create_ioq_at(LmTest *t, LmCtrl *c, uint16_t qid, uint16_t iv)
{
    NvmeCmd cmd = { .opcode = NVME_ADM_CMD_CREATE_CQ };

    queue_init(t, &c->ioq, qid, IO_DEPTH);
    cmd.dptr.prp1 = cpu_to_le64(c->ioq.cq);
    cmd.cdw10 = cpu_to_le32((IO_DEPTH - 1) << 16 | qid);
    cmd.cdw11 = cpu_to_le32((uint32_t)iv << 16 | 1);
    g_assert_cmphex(SC(admin(t, c, &cmd, NULL)), ==, SC_SUCCESS);

    memset(&cmd, 0, sizeof(cmd));
    cmd.opcode = NVME_ADM_CMD_CREATE_SQ;
    cmd.dptr.prp1 = cpu_to_le64(c->ioq.sq);
    cmd.cdw10 = cpu_to_le32((IO_DEPTH - 1) << 16 | qid);
    cmd.cdw11 = cpu_to_le32((uint32_t)qid << 16 | 1);
    g_assert_cmphex(SC(admin(t, c, &cmd, NULL)), ==, SC_SUCCESS);
}

static void create_ioq(LmTest *t, LmCtrl *c)
{
    create_ioq_at(t, c, 1, 0);
}

static uint16_t rw(LmTest *t, LmCtrl *c, uint8_t opc, uint64_t lba,
                   uint64_t buf)
{
    NvmeCmd cmd = {
        .opcode = opc,
        .nsid = cpu_to_le32(1),
        .dptr.prp1 = cpu_to_le64(buf),
        .cdw10 = cpu_to_le32(lba),
        .cdw11 = cpu_to_le32(lba >> 32),
    };

    return cmd_on(t, c, &c->ioq, &cmd, NULL);
}

/* ---------------------------------------------------------------------- */
/* Bring-up: PF, SR-IOV, Virtualization Management                         */
/* ---------------------------------------------------------------------- */

static uint16_t virt_mgmt(LmTest *t, uint16_t cntlid, uint8_t act, uint8_t rt,
                          uint16_t nr)
{
    NvmeCmd cmd = {
        .opcode = NVME_ADM_CMD_VIRT_MNGMT,
        .cdw10 = cpu_to_le32((uint32_t)cntlid << 16 | rt << 8 | act),
        .cdw11 = cpu_to_le32(nr),
    };

    return admin(t, &t->pf, &cmd, NULL);
}

static void vf_flr(LmTest *t, LmCtrl *vf)
{
    uint16_t exp = find_cap(t, vf->devfn, PCI_CAP_ID_EXP);
    uint16_t ctl;

    g_assert_cmpint(exp, !=, 0);
    ctl = cfg_readw(t, vf->devfn, exp + PCI_EXP_DEVCTL);
    cfg_writew(t, vf->devfn, exp + PCI_EXP_DEVCTL,
               ctl | PCI_EXP_DEVCTL_BCR_FLR);
    /* QEMU maps a VF's BARs only with Memory Space set in its own COMMAND */
    cfg_writew(t, vf->devfn, PCI_COMMAND,
               PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
}

/*
 * Virtualization Management: offline, @nvq VQ and @nvi VI resources, an FLR
 * (the controller takes its resources then), online; then enable the VF.
 */
static void vf_online_res(LmTest *t, LmCtrl *vf, uint16_t nvq, uint16_t nvi)
{
    g_assert_cmphex(virt_mgmt(t, vf->cntlid, VM_OFFLINE, 0, 0), ==, 0);
    g_assert_cmphex(virt_mgmt(t, vf->cntlid, VM_ASSIGN, 0, nvq), ==, 0);
    g_assert_cmphex(virt_mgmt(t, vf->cntlid, VM_ASSIGN, 1, nvi), ==, 0);
    vf_flr(t, vf);
    g_assert_cmphex(virt_mgmt(t, vf->cntlid, VM_ONLINE, 0, 0), ==, 0);
    ctrl_enable(t, vf);
}

/* 4 VQ (3 I/O queue pairs) and 2 VI */
static void vf_online(LmTest *t, LmCtrl *vf)
{
    vf_online_res(t, vf, 4, 2);
}

/* VF Enable with NR_VFS VFs, each VF's secondary controller online */
static void vfs_enable(LmTest *t)
{
    uint16_t sriov = t->sriov, off, stride;
    uint64_t list = mem_alloc(t, PAGE);
    g_autofree uint8_t *sl = g_malloc(PAGE);
    uint64_t vfsz;
    int i;

    /* size and place VF BAR0, then NumVFs and VF Enable + VF MSE */
    cfg_writel(t, PF_DEVFN, sriov + PCI_SRIOV_BAR, 0xffffffff);
    vfsz = cfg_readl(t, PF_DEVFN, sriov + PCI_SRIOV_BAR) & ~0xfu;
    vfsz = (uint32_t)(~vfsz + 1);
    g_assert_cmphex(vfsz, >=, PAGE);
    cfg_writel(t, PF_DEVFN, sriov + PCI_SRIOV_BAR, (uint32_t)VF_BAR);
    cfg_writel(t, PF_DEVFN, sriov + PCI_SRIOV_BAR + 4, VF_BAR >> 32);
    cfg_writew(t, PF_DEVFN, sriov + PCI_SRIOV_NUM_VF, NR_VFS);
    cfg_writew(t, PF_DEVFN, sriov + PCI_SRIOV_CTRL,
               PCI_SRIOV_CTRL_VFE | PCI_SRIOV_CTRL_MSE);
    off = cfg_readw(t, PF_DEVFN, sriov + PCI_SRIOV_VF_OFFSET);
    stride = cfg_readw(t, PF_DEVFN, sriov + PCI_SRIOV_VF_STRIDE);

    /* the secondary controllers: SCID by VFN from CNS 15h */
    g_assert_cmphex(identify(t, &t->pf, NVME_ID_CNS_SECONDARY_CTRL_LIST,
                             list), ==, 0);
    qtest_memread(t->qts, list, sl, PAGE);
    for (i = 0; i < NR_VFS; i++) {
        LmCtrl *vf = &t->vf[i];
        unsigned j;

        vf->devfn = PF_DEVFN + off + i * stride;
        vf->bar = VF_BAR + i * vfsz;
        vf->cntlid = 0;
        for (j = 0; j < sl[0]; j++) {
            uint8_t *e = sl + 32 + 32 * j;

            if (lduw_le_p(e + 8) == i + 1) {
                vf->cntlid = lduw_le_p(e);
            }
        }
        g_assert_cmpint(vf->cntlid, !=, 0);
        vf_online(t, vf);
    }
}

/* QEMU with the test's PF and VFs, @args and NVME_LM_QEMU_ARGS added */
static void lm_start_args(LmTest *t, const char *args)
{
    const char *extra = g_getenv("NVME_LM_QEMU_ARGS");
    int fd;

    memset(t, 0, sizeof(*t));
    fd = g_file_open_tmp("nvme-lm-test-XXXXXX", &t->img, NULL);
    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(ftruncate(fd, 1 * MiB), ==, 0);
    close(fd);

    t->qts = qtest_initf("-machine q35 -m 256M -nodefaults "
        "-drive file=%s,if=none,id=d0,format=raw "
        "-device nvme-subsys,id=subsys0 "
        "-device nvme,id=nvme0,bus=pcie.0,addr=4.0,multifunction=on,"
        "serial=lmqtest,subsys=subsys0,sriov_max_vfs=2,"
        "sriov_vq_flexible=8,sriov_vi_flexible=4,max_ioqpairs=10,"
        "hmlms=on,lm.cmmrtd=2,lm.nmmrtd=4 "
        "-device nvme-ns,drive=d0,bus=nvme0,nsid=1 %s %s",
        t->img, args, extra ? extra : "");
    t->brk = RAM_FIRST;
    t->buf = mem_alloc(t, 4 * PAGE);

    /* MCH PCIEXBAR: ECAM at ECAM_BASE, 256 buses */
    qtest_outl(t->qts, 0xcf8, 0x80000060);
    qtest_outl(t->qts, 0xcfc, (uint32_t)ECAM_BASE | 1);

    t->pf.devfn = PF_DEVFN;
    t->pf.bar = PF_BAR;
    g_assert_cmphex(cfg_readw(t, PF_DEVFN, PCI_CLASS_DEVICE), ==, 0x0108);
    cfg_writel(t, PF_DEVFN, PCI_BASE_ADDRESS_0, (uint32_t)PF_BAR);
    cfg_writel(t, PF_DEVFN, PCI_BASE_ADDRESS_1, PF_BAR >> 32);
    cfg_writew(t, PF_DEVFN, PCI_COMMAND,
               PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
    ctrl_enable(t, &t->pf);

    t->sriov = find_ext_cap(t, PF_DEVFN, PCI_EXT_CAP_ID_SRIOV);
    g_assert_cmpint(t->sriov, !=, 0);
    vfs_enable(t);
}

static void lm_start(LmTest *t)
{
    lm_start_args(t, "");
}

static void lm_end(LmTest *t)
{
    /* the PF was never reset behind the test's back */
    g_assert_cmphex(reg_read(t, &t->pf, 0x1c) & 3, ==, 1);
    qtest_quit(t->qts);
    unlink(t->img);
    g_free(t->img);
}

/* ---------------------------------------------------------------------- */
/* TP4159 commands                                                         */
/* ---------------------------------------------------------------------- */

static uint16_t mig_send(LmTest *t, uint8_t sel, uint32_t mos, uint32_t dw11,
                         uint64_t buf, uint32_t numd, uint64_t off)
{
    NvmeCmd cmd = {
        .opcode = NVME_ADM_CMD_MIGRATION_SEND,
        .dptr.prp1 = cpu_to_le64(buf),
        .dptr.prp2 = cpu_to_le64(ROUND_DOWN(buf, PAGE) + PAGE),
        .cdw10 = cpu_to_le32(mos << 16 | sel),
        .cdw11 = cpu_to_le32(dw11),
        .cdw12 = cpu_to_le32(off),
        .cdw13 = cpu_to_le32(off >> 32),
        .cdw15 = cpu_to_le32(numd),
    };

    return admin(t, &t->pf, &cmd, NULL);
}

static uint16_t suspend(LmTest *t, LmCtrl *vf)
{
    return mig_send(t, MS_SUSPEND, 0, STYPE_SUSPEND | vf->cntlid, 0, 0, 0);
}

static uint16_t resume(LmTest *t, LmCtrl *vf)
{
    return mig_send(t, MS_RESUME, 0, vf->cntlid, 0, 0, 0);
}

/* Set Controller State: @len bytes of @buf (guest) at @off, CSVI=CSUUIDI=1 */
static uint16_t set_state(LmTest *t, LmCtrl *vf, uint8_t seqind,
                          uint64_t buf, uint32_t len, uint64_t off)
{
    return mig_send(t, MS_SET, seqind, 1u << 24 | 1u << 16 | vf->cntlid,
                    buf, DIV_ROUND_UP(len, 4), off);
}

/* Get Controller State (CSVI 1, CSUUIDI 1): @len bytes at @off */
static uint16_t get_state(LmTest *t, LmCtrl *vf, uint64_t buf, uint32_t len,
                          uint64_t off, uint32_t *dw0)
{
    NvmeCmd cmd = {
        .opcode = NVME_ADM_CMD_MIGRATION_RECV,
        .dptr.prp1 = cpu_to_le64(buf),
        .dptr.prp2 = cpu_to_le64(ROUND_DOWN(buf, PAGE) + PAGE),
        .cdw10 = cpu_to_le32(1 << 16),
        .cdw11 = cpu_to_le32(1 << 16 | vf->cntlid),
        .cdw12 = cpu_to_le32(off),
        .cdw13 = cpu_to_le32(off >> 32),
        .cdw15 = cpu_to_le32(len / 4 - 1),
    };

    return admin(t, &t->pf, &cmd, dw0);
}

/* the whole state of a suspended VF into @out (at most 2 pages) */
static uint32_t get_whole_state(LmTest *t, LmCtrl *vf, uint8_t *out)
{
    uint32_t total, dw0 = 0;

    g_assert_cmphex(get_state(t, vf, t->buf, HDR_LEN, 0, &dw0), ==, 0);
    g_assert_cmphex(dw0 & 1, ==, 1);    /* CSUP: suspended throughout */
    qtest_memread(t->qts, t->buf, out, HDR_LEN);
    total = HDR_LEN + 4 * (ldq_le_p(out + 16) + ldq_le_p(out + 32));
    g_assert_cmpuint(total, <=, 2 * PAGE);
    g_assert_cmphex(get_state(t, vf, t->buf, total - HDR_LEN, HDR_LEN, &dw0),
                    ==, 0);
    qtest_memread(t->qts, t->buf, out + HDR_LEN, total - HDR_LEN);
    return total;
}

static uint16_t cdq_create(LmTest *t, uint16_t cntlid, bool pc, uint64_t prp1,
                           uint32_t slots, uint32_t *cdqid)
{
    NvmeCmd cmd = {
        .opcode = NVME_ADM_CMD_CDQ,
        .dptr.prp1 = cpu_to_le64(prp1),
        .cdw10 = 0,
        .cdw11 = cpu_to_le32((uint32_t)cntlid << 16 | pc),
        .cdw12 = cpu_to_le32(slots * 8),
    };

    return admin(t, &t->pf, &cmd, cdqid);
}

static uint16_t cdq_delete(LmTest *t, uint16_t cdqid)
{
    NvmeCmd cmd = {
        .opcode = NVME_ADM_CMD_CDQ,
        .cdw10 = cpu_to_le32(1),
        .cdw11 = cpu_to_le32(cdqid),
    };

    return admin(t, &t->pf, &cmd, NULL);
}

static uint16_t track_send(LmTest *t, uint8_t sel, uint32_t mos, uint32_t dw11,
                           uint64_t buf)
{
    NvmeCmd cmd = {
        .opcode = NVME_ADM_CMD_TRACK_SEND,
        .dptr.prp1 = cpu_to_le64(buf),
        .cdw10 = cpu_to_le32(mos << 16 | sel),
        .cdw11 = cpu_to_le32(dw11),
    };

    return admin(t, &t->pf, &cmd, NULL);
}

static uint16_t track_recv(LmTest *t, uint16_t cntlid, uint64_t buf,
                           uint32_t len)
{
    NvmeCmd cmd = {
        .opcode = NVME_ADM_CMD_TRACK_RECV,
        .dptr.prp1 = cpu_to_le64(buf),
        .cdw11 = cpu_to_le32(cntlid),
        .cdw12 = cpu_to_le32(len / 4 - 1),
    };

    return admin(t, &t->pf, &cmd, NULL);
}

/* ---------------------------------------------------------------------- */
/* Tests                                                                   */
/* ---------------------------------------------------------------------- */

/* Identify: the PF is an MMC, a VF is not; LM commands only on the MMC */
static void test_identify(void)
{
    LmTest t;
    uint8_t id[PAGE];
    NvmeCmd cmd = { .opcode = NVME_ADM_CMD_MIGRATION_RECV };

    lm_start(&t);
    g_assert_cmphex(identify(&t, &t.pf, NVME_ID_CNS_CTRL, t.buf), ==, 0);
    qtest_memread(t.qts, t.buf, id, PAGE);
    g_assert_cmphex(lduw_le_p(id + 256) & NVME_OACS_HMLMS, !=, 0);
    g_assert_cmpuint(lduw_le_p(id + 570), ==, 2);       /* CMMRTD */
    g_assert_cmpuint(lduw_le_p(id + 572), ==, 4);       /* NMMRTD */
    g_assert_cmphex(id[576] & 1, ==, 1);                /* TRATTR.THMCS */

    g_assert_cmphex(identify(&t, &t.pf, NVME_ID_CNS_CTRL_STATE_FMTS, t.buf),
                    ==, 0);
    qtest_memread(t.qts, t.buf, id, PAGE);
    g_assert_cmpuint(id[0], ==, 1);                     /* NV */
    g_assert_cmpuint(id[1], ==, 1);                     /* NUUID */
    g_assert_cmphex(lduw_le_p(id + 2), ==, 0);          /* version 0 */

    g_assert_cmphex(identify(&t, &t.vf[0], NVME_ID_CNS_CTRL, t.buf), ==, 0);
    qtest_memread(t.qts, t.buf, id, PAGE);
    g_assert_cmphex(lduw_le_p(id + 256) & NVME_OACS_HMLMS, ==, 0);
    g_assert_cmphex(SC(identify(&t, &t.vf[0], NVME_ID_CNS_CTRL_STATE_FMTS,
                                t.buf)), ==, SC_INVALID_FLD);
    cmd.cdw11 = cpu_to_le32(t.vf[1].cntlid);
    g_assert_cmphex(SC(admin(&t, &t.vf[0], &cmd, NULL)), ==, SC_INVALID_OP);

    /* a VF's FLR is done at once: Immediate Readiness, also after an FLR */
    g_assert_cmphex(cfg_readw(&t, t.vf[0].devfn, PCI_STATUS) &
                    PCI_STATUS_IMM_READY, ==, PCI_STATUS_IMM_READY);
    vf_flr(&t, &t.vf[0]);
    g_assert_cmphex(cfg_readw(&t, t.vf[0].devfn, PCI_STATUS) &
                    PCI_STATUS_IMM_READY, ==, PCI_STATUS_IMM_READY);
    lm_end(&t);
}

/* Suspend stops fetching, Resume restarts it; the refusals the spec names */
static void test_suspend_resume(void)
{
    LmTest t;
    LmCtrl *vf = &t.vf[0];
    NvmeCmd cmd = {
        .opcode = NVME_ADM_CMD_IDENTIFY,
        .cdw10 = cpu_to_le32(NVME_ID_CNS_CTRL),
    };
    uint32_t dw0 = 0;

    lm_start(&t);
    g_assert_cmphex(suspend(&t, vf), ==, 0);
    g_assert_cmphex(suspend(&t, vf), ==, 0);        /* already suspended */
    g_assert_cmphex(get_state(&t, vf, t.buf, HDR_LEN, 0, &dw0), ==, 0);
    g_assert_cmphex(dw0 & 1, ==, 1);

    /* a command submitted to the suspended VF is not fetched */
    cmd.dptr.prp1 = cpu_to_le64(t.buf + PAGE);
    submit(&t, vf, &vf->aq, &cmd);
    g_assert_cmphex(reap_within(&t, vf, &vf->aq, NULL, 200 * 1000), ==,
                    SC_TIMEOUT);
    g_assert_cmphex(resume(&t, vf), ==, 0);
    g_assert_cmphex(reap_within(&t, vf, &vf->aq, NULL, POLL_US), ==, 0);
    g_assert_cmphex(SC(resume(&t, vf)), ==, SC_NOT_SUSP);

    /* not a migratable controller of this MMC: the PF, unknown IDs */
    g_assert_cmphex(SC(mig_send(&t, MS_SUSPEND, 0, STYPE_SUSPEND, 0, 0, 0)),
                    ==, SC_CTRL_ID);
    g_assert_cmphex(SC(mig_send(&t, MS_SUSPEND, 0, STYPE_SUSPEND | 0x7ff0,
                                0, 0, 0)), ==, SC_CTRL_ID);
    /* reserved SEL and STYPE */
    g_assert_cmphex(SC(mig_send(&t, 3, 0, vf->cntlid, 0, 0, 0)), ==,
                    SC_INVALID_FLD);
    g_assert_cmphex(SC(mig_send(&t, MS_SUSPEND, 0, 2 << 16 | vf->cntlid,
                                0, 0, 0)), ==, SC_INVALID_FLD);
    /* Suspend Notification is only a notice */
    g_assert_cmphex(mig_send(&t, MS_SUSPEND, 0, vf->cntlid, 0, 0, 0), ==, 0);
    g_assert_cmphex(SC(resume(&t, vf)), ==, SC_NOT_SUSP);
    /* Set Controller State without a first chunk */
    g_assert_cmphex(suspend(&t, vf), ==, 0);
    g_assert_cmphex(SC(set_state(&t, vf, SEQ_MIDDLE, t.buf, 64, 64)), ==,
                    SC_CMD_SEQ);
    g_assert_cmphex(resume(&t, vf), ==, 0);
    g_assert_cmphex(identify(&t, vf, NVME_ID_CNS_CTRL, t.buf), ==, 0);
    lm_end(&t);
}

/*
 * The model's trace points (hw/nvme/trace-events) fire on a Suspend, its
 * completion, Get Controller State, a refused Set Controller State and a
 * Resume: QEMU started with -trace pci_nvme_lm_* logs each of them.
 */
static void test_trace(void)
{
    g_autofree char *log = NULL, *args = NULL, *text = NULL;
    LmTest t;
    LmCtrl *vf = &t.vf[0];
    int fd;

    fd = g_file_open_tmp("nvme-lm-trace-XXXXXX", &log, NULL);
    g_assert_cmpint(fd, >=, 0);
    close(fd);
    args = g_strdup_printf("-trace enable=pci_nvme_lm_* -D %s", log);

    lm_start_args(&t, args);
    g_assert_cmphex(suspend(&t, vf), ==, 0);
    g_assert_cmphex(get_state(&t, vf, t.buf, HDR_LEN, 0, NULL), ==, 0);
    /* one chunk shorter than the state header: refused at the commit */
    g_assert_cmphex(SC(set_state(&t, vf, SEQ_ONLY, t.buf, 16, 0)), ==,
                    SC_INVALID_FLD);
    g_assert_cmphex(resume(&t, vf), ==, 0);
    lm_end(&t);

    g_assert_true(g_file_get_contents(log, &text, NULL, NULL));
    unlink(log);
    {
        char *want[] = {
            g_strdup_printf("pci_nvme_lm_suspend cntlid %u stype 1 dudmq 0,"
                            " controller active", vf->cntlid),
            g_strdup_printf("pci_nvme_lm_suspended cntlid %u suspended: 1 "
                            "Suspend commands, completed 1", vf->cntlid),
            g_strdup_printf("pci_nvme_lm_get_state cntlid %u offset 0 len %u",
                            vf->cntlid, HDR_LEN),
            g_strdup_printf("pci_nvme_lm_set_state cntlid %u seqind 3 "
                            "offset 0 len 16", vf->cntlid),
            g_strdup_printf("pci_nvme_lm_set_state_commit cntlid %u state of"
                            " 16 bytes: status 0x4002", vf->cntlid),
            g_strdup_printf("pci_nvme_lm_resume cntlid %u", vf->cntlid),
        };

        for (unsigned i = 0; i < G_N_ELEMENTS(want); i++) {
            if (!strstr(text, want[i])) {
                g_test_message("trace log:\n%s", text);
                g_test_message("missing: %s", want[i]);
                g_test_fail();
            }
            g_free(want[i]);
        }
    }
}

/*
 * Get in pieces from the suspended source, Set in pieces into the
 * suspended destination, Resume: the destination carries on with the
 * source's admin and I/O queues where the source left them.
 */
static void test_state_roundtrip(void)
{
    LmTest t;
    LmCtrl *src = &t.vf[0], *dst = &t.vf[1];
    g_autofree uint8_t *st = g_malloc(2 * PAGE);
    g_autofree uint8_t *st2 = g_malloc(2 * PAGE);
    uint32_t len, split;
    LmCtrl moved;

    lm_start(&t);
    create_ioq(&t, src);
    qtest_memset(t.qts, t.buf + 2 * PAGE, 0x5a, PAGE);
    g_assert_cmphex(rw(&t, src, NVME_CMD_WRITE, 3, t.buf + 2 * PAGE), ==, 0);
    g_assert_cmphex(suspend(&t, src), ==, 0);
    len = get_whole_state(&t, src, st);
    g_assert_cmpuint(len, >, HDR_LEN);

    /* the same bytes again in dword pieces at odd offsets */
    for (split = 4; split < len; split += 36) {
        uint32_t n = MIN(36, len - split);

        g_assert_cmphex(get_state(&t, src, t.buf, n, split, NULL), ==, 0);
        qtest_memread(t.qts, t.buf, st2 + split, n);
    }
    g_assert_cmpint(memcmp(st + 4, st2 + 4, len - 4), ==, 0);
    /* reads past the end or unaligned */
    g_assert_cmphex(SC(get_state(&t, src, t.buf, 4, len + 4, NULL)), ==,
                    SC_INVALID_FLD);
    g_assert_cmphex(SC(get_state(&t, src, t.buf, 4, 2, NULL)), ==,
                    SC_INVALID_FLD);

    g_assert_cmphex(suspend(&t, dst), ==, 0);
    split = ROUND_DOWN(len / 2, 4);
    qtest_memwrite(t.qts, t.buf, st, split);
    g_assert_cmphex(set_state(&t, dst, SEQ_FIRST, t.buf, split, 0), ==, 0);
    /* Resume in the middle of a sequence */
    g_assert_cmphex(SC(resume(&t, dst)), ==, SC_CMD_SEQ);
    qtest_memwrite(t.qts, t.buf, st + split, len - split);
    g_assert_cmphex(set_state(&t, dst, SEQ_LAST, t.buf, len - split, split),
                    ==, 0);
    g_assert_cmphex(resume(&t, dst), ==, 0);

    /* the destination, driven through the source's queues */
    moved = *src;
    moved.bar = dst->bar;
    g_assert_cmphex(identify(&t, &moved, NVME_ID_CNS_CTRL, t.buf), ==, 0);
    g_assert_cmphex(rw(&t, &moved, NVME_CMD_READ, 3, t.buf + 3 * PAGE), ==, 0);
    g_assert_cmphex(qtest_readb(t.qts, t.buf + 3 * PAGE + 100), ==, 0x5a);
    lm_end(&t);
}

/* User data logging into a CDQ, Set/Get Features 21h, delete */
static void test_cdq(void)
{
    LmTest t;
    LmCtrl *vf = &t.vf[0];
    uint64_t q;
    uint32_t cdqid = 0;
    uint8_t e[32];
    NvmeCmd feat = { .opcode = NVME_ADM_CMD_GET_FEATURES };

    lm_start(&t);
    create_ioq(&t, vf);
    q = mem_alloc(&t, PAGE);
    g_assert_cmphex(SC(cdq_create(&t, vf->cntlid, true, q + 512, 8, &cdqid)),
                    ==, SC_PRP_OFFSET);
    g_assert_cmphex(SC(cdq_create(&t, vf->cntlid, true, q, 1, &cdqid)), ==,
                    SC_INVALID_FLD);
    g_assert_cmphex(SC(cdq_create(&t, 0x7ff0, true, q, 8, &cdqid)), ==,
                    SC_CTRL_ID);
    g_assert_cmphex(cdq_create(&t, vf->cntlid, true, q, 8, &cdqid), ==, 0);
    g_assert_cmpuint(cdqid & 0xffff, !=, 0);
    /* one User Data Migration Queue per migratable controller */
    g_assert_cmphex(SC(cdq_create(&t, vf->cntlid, true, q, 8, NULL)), ==,
                    SC_INVALID_FLD);

    /* start: an ESA "first" marker, then one entry per write */
    g_assert_cmphex(track_send(&t, 0, 1, cdqid, 0), ==, 0);
    g_assert_cmphex(SC(track_send(&t, 0, 1, cdqid, 0)), ==, SC_INVALID_CDQ);
    g_assert_cmphex(rw(&t, vf, NVME_CMD_WRITE, 5, t.buf), ==, 0);
    qtest_memread(t.qts, q, e, sizeof(e));
    g_assert_cmphex(e[31], ==, 2 << 6 | 1 << 1 | 1);    /* no LBA, first, P */
    qtest_memread(t.qts, q + 32, e, sizeof(e));
    g_assert_cmpuint(ldl_le_p(e), ==, 1);               /* NSID */
    g_assert_cmpuint(ldl_le_p(e + 4), ==, 0);           /* NLB, 0's based */
    g_assert_cmpuint(ldq_le_p(e + 8), ==, 5);           /* SLBA */
    g_assert_cmphex(e[31], ==, 1);                      /* range, P */
    qtest_memread(t.qts, q + 64, e, sizeof(e));
    g_assert_cmphex(e[31], ==, 0);                      /* not posted */

    feat.cdw10 = cpu_to_le32(NVME_CTRL_DATA_QUEUE);
    feat.cdw11 = cpu_to_le32(cdqid);
    feat.dptr.prp1 = cpu_to_le64(t.buf);
    g_assert_cmphex(admin(&t, &t.pf, &feat, NULL), ==, 0);
    g_assert_cmpuint(qtest_readl(t.qts, t.buf), ==, 0); /* HP */
    feat.opcode = NVME_ADM_CMD_SET_FEATURES;
    feat.cdw12 = cpu_to_le32(1);                        /* consumed one */
    g_assert_cmphex(admin(&t, &t.pf, &feat, NULL), ==, 0);
    feat.cdw12 = cpu_to_le32(5);                        /* not posted yet */
    g_assert_cmphex(SC(admin(&t, &t.pf, &feat, NULL)), ==, SC_INVALID_FLD);

    /* stop: an ESA "stopped" marker, nothing logged after it */
    g_assert_cmphex(track_send(&t, 0, 0, cdqid, 0), ==, 0);
    g_assert_cmphex(rw(&t, vf, NVME_CMD_WRITE, 7, t.buf), ==, 0);
    qtest_memread(t.qts, q + 64, e, sizeof(e));
    g_assert_cmphex(e[31], ==, 2 << 6 | 2 << 1 | 1);
    g_assert_cmphex(qtest_readb(t.qts, q + 96 + 31), ==, 0);
    g_assert_cmphex(SC(track_send(&t, 0, 1, 0xfff0, 0)), ==, SC_INVALID_CDQ);
    g_assert_cmphex(cdq_delete(&t, cdqid), ==, 0);
    g_assert_cmphex(SC(cdq_delete(&t, cdqid)), ==, SC_INVALID_CDQ);
    g_assert_cmphex(rw(&t, vf, NVME_CMD_WRITE, 6, t.buf), ==, 0);
    lm_end(&t);
}

/*
 * A CDQ placed over a BAR (the PF's own registers, or a VF's), directly
 * or through a PRP list, is refused with Invalid Field: the model would
 * otherwise post entries as MMIO writes into CC.
 */
static void test_cdq_over_bar(void)
{
    LmTest t;
    LmCtrl *vf = &t.vf[0];
    uint64_t list;
    uint32_t cc;

    lm_start(&t);
    create_ioq(&t, vf);
    cc = reg_read(&t, &t.pf, 0x14);
    g_assert_cmphex(SC(cdq_create(&t, vf->cntlid, true, PF_BAR, 8, NULL)),
                    ==, SC_INVALID_FLD);
    g_assert_cmphex(SC(cdq_create(&t, vf->cntlid, true, t.vf[1].bar, 8,
                                  NULL)), ==, SC_INVALID_FLD);
    list = mem_alloc(&t, PAGE);
    qtest_writeq(t.qts, list, PF_BAR);
    g_assert_cmphex(SC(cdq_create(&t, vf->cntlid, false, list, 8, NULL)),
                    ==, SC_INVALID_FLD);
    /* a queue that ends past RAM */
    g_assert_cmphex(SC(cdq_create(&t, vf->cntlid, true, 256 * MiB - PAGE,
                                  1024, NULL)), ==, SC_INVALID_FLD);

    /* no entry was posted anywhere: the PF and the VF are as they were */
    g_assert_cmphex(track_send(&t, 0, 1, 1, 0) & 0x7ff, ==, SC_INVALID_CDQ);
    g_assert_cmphex(rw(&t, vf, NVME_CMD_WRITE, 1, t.buf), ==, 0);
    g_assert_cmphex(reg_read(&t, &t.pf, 0x14), ==, cc);
    g_assert_cmphex(identify(&t, &t.pf, NVME_ID_CNS_CTRL, t.buf), ==, 0);
    lm_end(&t);
}

/* Track Memory Changes: a VF's DMA writes into a tracked range are reported */
static void test_track_memory(void)
{
    LmTest t;
    LmCtrl *vf = &t.vf[0];
    uint64_t area, d;
    uint8_t h[16], r[16];

    lm_start(&t);
    create_ioq(&t, vf);
    area = mem_alloc(&t, 16 * PAGE);
    d = mem_alloc(&t, PAGE);
    qtest_writeb(t.qts, d, 0);                  /* VER */
    qtest_writeb(t.qts, d + 3, 0);              /* RMRTG: 4 KiB */
    qtest_writel(t.qts, d + 4, 1);              /* RNMRTD */
    qtest_writeq(t.qts, d + 8, area);
    qtest_writel(t.qts, d + 16, 16);            /* 16 granules */
    g_assert_cmphex(SC(track_send(&t, 1, 1, t.pf.cntlid, d)), ==, SC_CTRL_ID);
    g_assert_cmphex(track_send(&t, 1, 1, vf->cntlid, d), ==, 0);
    g_assert_cmphex(SC(track_send(&t, 1, 1, vf->cntlid, d)), ==, SC_CTRL_ID);

    /* nothing yet, then one Read DMA into granule 5 */
    g_assert_cmphex(track_recv(&t, vf->cntlid, t.buf, PAGE), ==, 0);
    qtest_memread(t.qts, t.buf, h, sizeof(h));
    g_assert_cmpuint(ldl_le_p(h + 4), ==, 0);
    g_assert_cmphex(rw(&t, vf, NVME_CMD_READ, 0, area + 5 * PAGE), ==, 0);
    g_assert_cmphex(track_recv(&t, vf->cntlid, t.buf, PAGE), ==, 0);
    qtest_memread(t.qts, t.buf, h, sizeof(h));
    qtest_memread(t.qts, t.buf + 16, r, sizeof(r));
    g_assert_cmpuint(lduw_le_p(h + 2), ==, vf->cntlid);
    g_assert_cmpuint(ldl_le_p(h + 4), ==, 1);
    g_assert_cmphex(ldq_le_p(r), ==, area + 5 * PAGE);
    g_assert_cmpuint(ldl_le_p(r + 8), ==, 1);
    /* read and clear */
    g_assert_cmphex(track_recv(&t, vf->cntlid, t.buf, PAGE), ==, 0);
    g_assert_cmpuint(qtest_readl(t.qts, t.buf + 4), ==, 0);

    g_assert_cmphex(track_send(&t, 1, 0, vf->cntlid, 0), ==, 0);
    g_assert_cmphex(SC(track_recv(&t, vf->cntlid, t.buf, PAGE)), ==,
                    SC_CTRL_ID);
    lm_end(&t);
}

/* NVMECS offsets in a state with one I/O queue pair (tp4159.md 3.3) */
#define ST_SQ0          (HDR_LEN + 8)
#define ST_CQ0          (ST_SQ0 + 24)
#define ST_VS(b)        (HDR_LEN + 4 * ldq_le_p((b) + 16))

/* point the state's queue pair at @qid and its CQ at vector @iv */
static void state_set_ioq(uint8_t *b, uint16_t qid, uint16_t iv)
{
    stw_le_p(b + ST_SQ0 + 10, qid);
    stw_le_p(b + ST_SQ0 + 12, qid);
    stw_le_p(b + ST_CQ0 + 10, qid);
    stw_le_p(b + ST_CQ0 + 18, iv);
}

/*
 * Bounds: a state that needs more queue pairs or interrupt vectors than
 * the destination VF was given is refused, from the source's grant and,
 * with the grant forced down, from each queue's QID, vector and size.
 */
static void test_state_bounds(void)
{
    LmTest t;
    LmCtrl *src = &t.vf[0], *dst = &t.vf[1];
    g_autofree uint8_t *st = g_malloc(2 * PAGE);
    g_autofree uint8_t *b = g_malloc(2 * PAGE);
    uint32_t len, vs;
    uint16_t msix;

    lm_start(&t);
    vf_online_res(&t, dst, 2, 1);               /* 1 I/O queue pair, 1 vector */
    /* vectors other than 0 need MSI-X (all masked: no interrupt is sent) */
    msix = find_cap(&t, src->devfn, PCI_CAP_ID_MSIX);
    g_assert_cmpint(msix, !=, 0);
    cfg_writew(&t, src->devfn, msix + PCI_MSIX_FLAGS,
               PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL);
    create_ioq_at(&t, src, 3, 1);
    g_assert_cmphex(suspend(&t, src), ==, 0);
    len = get_whole_state(&t, src, st);
    g_assert_cmpuint(lduw_le_p(st + HDR_LEN + 2), ==, 1);       /* NIOSQ */
    g_assert_cmpuint(lduw_le_p(st + ST_SQ0 + 10), ==, 3);
    g_assert_cmpuint(lduw_le_p(st + ST_CQ0 + 18), ==, 1);
    vs = ST_VS(st);

    g_assert_cmphex(suspend(&t, dst), ==, 0);
    qtest_memwrite(t.qts, t.buf, st, len);
    g_assert_cmphex(SC(set_state(&t, dst, SEQ_ONLY, t.buf, len, 0)), ==,
                    SC_INVALID_FLD);

    /* the source's grant forced down to what the destination has */
    memcpy(b, st, len);
    stw_le_p(b + vs + 64, 1);                   /* conf_ioqpairs */
    stw_le_p(b + vs + 66, 1);                   /* conf_msix_qsize */
    stl_le_p(b + vs + 120, 0);                  /* Number of Queues */
    qtest_memwrite(t.qts, t.buf, b, len);
    g_assert_cmphex(SC(set_state(&t, dst, SEQ_ONLY, t.buf, len, 0)), ==,
                    SC_INVALID_FLD);            /* QID 3 */
    state_set_ioq(b, 1, 1);
    qtest_memwrite(t.qts, t.buf, b, len);
    g_assert_cmphex(SC(set_state(&t, dst, SEQ_ONLY, t.buf, len, 0)), ==,
                    SC_INVALID_FLD);            /* vector 1 */
    state_set_ioq(b, 1, 0);
    stw_le_p(b + ST_SQ0 + 8, 0xffff);           /* QSIZE beyond MQES */
    qtest_memwrite(t.qts, t.buf, b, len);
    g_assert_cmphex(SC(set_state(&t, dst, SEQ_ONLY, t.buf, len, 0)), ==,
                    SC_INVALID_FLD);
    stw_le_p(b + ST_SQ0 + 8, IO_DEPTH - 1);
    qtest_memwrite(t.qts, t.buf, b, len);
    g_assert_cmphex(set_state(&t, dst, SEQ_ONLY, t.buf, len, 0), ==, 0);

    ctrl_enable(&t, dst);
    g_assert_cmphex(identify(&t, dst, NVME_ID_CNS_CTRL, t.buf), ==, 0);
    g_assert_cmphex(resume(&t, src), ==, 0);
    g_assert_cmphex(rw(&t, src, NVME_CMD_READ, 0, t.buf), ==, 0);
    lm_end(&t);
}

/* Track Memory Changes of @vf over @nr ranges of 4 pages from @area */
static uint16_t track_start(LmTest *t, LmCtrl *vf, uint64_t area, uint32_t nr)
{
    uint64_t d = t->buf + 3 * PAGE;
    uint32_t i;

    qtest_memset(t->qts, d, 0, PAGE);
    qtest_writel(t->qts, d + 4, nr);
    for (i = 0; i < nr; i++) {
        qtest_writeq(t->qts, d + 8 + 12 * i, area + i * 8 * PAGE);
        qtest_writel(t->qts, d + 16 + 12 * i, 4);
    }
    return track_send(t, 1, 1, vf->cntlid, d);
}

/*
 * Clearing VF Enable gives back what the MMC held for the VFs: with both
 * VFs tracked to the subsystem's limit (NMMRTD 4, CMMRTD 2), the same is
 * possible again once the VFs are enabled anew, without a reset of the MMC.
 */
static void test_vf_disable_frees_tracking(void)
{
    LmTest t;
    uint64_t area;

    lm_start(&t);
    area = mem_alloc(&t, 32 * PAGE);
    g_assert_cmphex(SC(track_start(&t, &t.vf[0], area, 3)), ==,
                    SC_INVALID_FLD);                    /* above CMMRTD */
    g_assert_cmphex(track_start(&t, &t.vf[0], area, 2), ==, 0);
    g_assert_cmphex(track_start(&t, &t.vf[1], area, 2), ==, 0);
    /* and a Set Controller State sequence left half way */
    g_assert_cmphex(suspend(&t, &t.vf[1]), ==, 0);
    qtest_memset(t.qts, t.buf, 0, HDR_LEN);
    g_assert_cmphex(set_state(&t, &t.vf[1], SEQ_FIRST, t.buf, 16, 0), ==, 0);

    cfg_writew(&t, PF_DEVFN, t.sriov + PCI_SRIOV_CTRL, 0);
    vfs_enable(&t);
    g_assert_cmphex(track_start(&t, &t.vf[0], area, 2), ==, 0);
    g_assert_cmphex(track_start(&t, &t.vf[1], area, 2), ==, 0);
    g_assert_cmphex(SC(set_state(&t, &t.vf[1], SEQ_LAST, t.buf, 16, 16)),
                    ==, SC_CMD_SEQ);
    g_assert_cmphex(track_send(&t, 1, 0, t.vf[0].cntlid, 0), ==, 0);
    g_assert_cmphex(track_send(&t, 1, 0, t.vf[1].cntlid, 0), ==, 0);
    lm_end(&t);
}

static void qom_set_uint(LmTest *t, const char *prop, unsigned v)
{
    qtest_qmp_assert_success(t->qts, "{'execute': 'qom-set', 'arguments': "
                             "{'path': '/machine/peripheral/nvme0', "
                             "'property': %s, 'value': %u}}", prop, v);
}

/*
 * A Suspend the device holds (lm-suspend-delay) when the MMC is reset goes
 * with the MMC's admin queue: nothing is completed into the new queue, the
 * VF is resumed, and QEMU stays up.
 */
static void test_held_suspend_mmc_reset(void)
{
    LmTest t;
    LmCtrl *vf = &t.vf[0];
    NvmeCmd cmd = {
        .opcode = NVME_ADM_CMD_MIGRATION_SEND,
        .cdw11 = 0,
    };
    NvmeCqe cqe;
    uint16_t cid;

    lm_start(&t);
    qom_set_uint(&t, "lm-suspend-delay", 20000);
    cmd.cdw11 = cpu_to_le32(STYPE_SUSPEND | vf->cntlid);
    submit(&t, &t.pf, &t.pf.aq, &cmd);
    g_assert_cmphex(reap_within(&t, &t.pf, &t.pf.aq, NULL, 100 * 1000), ==,
                    SC_TIMEOUT);

    ctrl_enable(&t, &t.pf);
    qtest_clock_step(t.qts, 30 * NANOSECONDS_PER_SECOND);
    memset(&cmd, 0, sizeof(cmd));
    cmd.opcode = NVME_ADM_CMD_IDENTIFY;
    cmd.dptr.prp1 = cpu_to_le64(t.buf);
    cmd.cdw10 = cpu_to_le32(NVME_ID_CNS_CTRL);
    cid = submit(&t, &t.pf, &t.pf.aq, &cmd);
    g_assert_cmphex(reap_within(&t, &t.pf, &t.pf.aq, &cqe, POLL_US), ==, 0);
    g_assert_cmpuint(le16_to_cpu(cqe.cid), ==, cid);
    g_assert_cmphex(reap_within(&t, &t.pf, &t.pf.aq, NULL, 100 * 1000), ==,
                    SC_TIMEOUT);

    /* a PF reset takes the secondary controllers offline: online again */
    g_assert_cmphex(SC(resume(&t, vf)), ==, SC_NOT_SUSP);
    vf_online(&t, vf);
    g_assert_cmphex(identify(&t, vf, NVME_ID_CNS_CTRL, t.buf), ==, 0);
    qom_set_uint(&t, "lm-suspend-delay", 0);
    g_assert_cmphex(suspend(&t, vf), ==, 0);
    g_assert_cmphex(resume(&t, vf), ==, 0);
    lm_end(&t);
}

/*
 * A Controller Level Reset of the target while its Suspend is held: by
 * default the reset ends the hold and the Suspend completes at once (the
 * target suspended again); with lm-hold-over-reset the Suspend completes
 * only when the hold ends, and the target fetches nothing meanwhile.
 * Either way a Resume sent after the Suspend's completion makes it run.
 */
static void test_hold_over_reset(void)
{
    LmTest t;
    LmCtrl *vf = &t.vf[0];
    NvmeCmd sus = {
        .opcode = NVME_ADM_CMD_MIGRATION_SEND,
    };
    NvmeCmd id = {
        .opcode = NVME_ADM_CMD_IDENTIFY,
        .cdw10 = cpu_to_le32(NVME_ID_CNS_CTRL),
    };

    lm_start(&t);
    sus.cdw11 = cpu_to_le32(STYPE_SUSPEND | vf->cntlid);
    id.dptr.prp1 = cpu_to_le64(t.buf);
    qom_set_uint(&t, "lm-suspend-delay", 20000);

    submit(&t, &t.pf, &t.pf.aq, &sus);
    g_assert_cmphex(reap_within(&t, &t.pf, &t.pf.aq, NULL, 100 * 1000), ==,
                    SC_TIMEOUT);
    ctrl_enable(&t, vf);        /* CC.EN 1 -> 0 -> 1: a CLR */
    g_assert_cmphex(reap_within(&t, &t.pf, &t.pf.aq, NULL, POLL_US), ==, 0);
    submit(&t, vf, &vf->aq, &id);
    g_assert_cmphex(reap_within(&t, vf, &vf->aq, NULL, 100 * 1000), ==,
                    SC_TIMEOUT);
    g_assert_cmphex(resume(&t, vf), ==, 0);
    g_assert_cmphex(reap_within(&t, vf, &vf->aq, NULL, POLL_US), ==, 0);

    qom_set_uint(&t, "lm-hold-over-reset", 1);
    submit(&t, &t.pf, &t.pf.aq, &sus);
    g_assert_cmphex(reap_within(&t, &t.pf, &t.pf.aq, NULL, 100 * 1000), ==,
                    SC_TIMEOUT);
    ctrl_enable(&t, vf);
    g_assert_cmphex(reap_within(&t, &t.pf, &t.pf.aq, NULL, 200 * 1000), ==,
                    SC_TIMEOUT);
    submit(&t, vf, &vf->aq, &id);
    g_assert_cmphex(reap_within(&t, vf, &vf->aq, NULL, 100 * 1000), ==,
                    SC_TIMEOUT);
    qtest_clock_step(t.qts, 30 * NANOSECONDS_PER_SECOND);
    g_assert_cmphex(reap_within(&t, &t.pf, &t.pf.aq, NULL, POLL_US), ==, 0);
    g_assert_cmphex(reap_within(&t, vf, &vf->aq, NULL, 100 * 1000), ==,
                    SC_TIMEOUT);
    g_assert_cmphex(resume(&t, vf), ==, 0);
    g_assert_cmphex(reap_within(&t, vf, &vf->aq, NULL, POLL_US), ==, 0);

    qom_set_uint(&t, "lm-hold-over-reset", 0);
    qom_set_uint(&t, "lm-suspend-delay", 0);
    g_assert_cmphex(suspend(&t, vf), ==, 0);
    g_assert_cmphex(resume(&t, vf), ==, 0);
    lm_end(&t);
}

/* ---------------------------------------------------------------------- */
/* Set Controller State fuzzer                                             */
/* ---------------------------------------------------------------------- */

static const uint32_t boundary[] = {
    0, 1, 2, 3, 4, 0x7f, 0x80, 0xff, 0x100, 0xfff, 0x1000, 0x7fff, 0x8000,
    0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff,
};

static uint32_t pick(GRand *rng)
{
    return boundary[g_rand_int_range(rng, 0, ARRAY_SIZE(boundary))];
}

/* mutate @b (valid state of @len bytes) in place; returns the new length */
static uint32_t mutate(GRand *rng, uint8_t *b, uint32_t len, uint32_t max)
{
    uint32_t i, n, k = len < 8 ? 5 : g_rand_int_range(rng, 0, 8);

    switch (k) {
    case 0:                     /* bit flips */
        n = g_rand_int_range(rng, 1, 9);
        for (i = 0; i < n; i++) {
            b[g_rand_int_range(rng, 0, len)] ^=
                1 << g_rand_int_range(rng, 0, 8);
        }
        break;
    case 1:                     /* a dword at a boundary value */
    case 2:
        i = ROUND_DOWN(g_rand_int_range(rng, 0, len), 4);
        stl_le_p(b + i, pick(rng));
        break;
    case 3:                     /* a word at a boundary value */
        i = ROUND_DOWN(g_rand_int_range(rng, 0, len - 1), 2);
        stw_le_p(b + i, pick(rng));
        break;
    case 4:                     /* truncation */
        len = ROUND_DOWN(g_rand_int_range(rng, 4, len), 4);
        break;
    case 5:                     /* growth with random bytes */
        n = MIN(max, len + 4 * g_rand_int_range(rng, 1, 64));
        for (i = len; i < n; i++) {
            b[i] = g_rand_int(rng);
        }
        len = n;
        break;
    case 6:                     /* a random run of bytes */
        i = g_rand_int_range(rng, 0, len);
        n = MIN(len, i + g_rand_int_range(rng, 1, 32));
        for (; i < n; i++) {
            b[i] = g_rand_int(rng);
        }
        break;
    default:                    /* the header's size fields */
        stq_le_p(b + (g_rand_boolean(rng) ? 16 : 32), pick(rng));
        break;
    }
    return len;
}

/* feed @b to @vf as one or several Set Controller State commands */
static uint16_t fuzz_set(LmTest *t, GRand *rng, LmCtrl *vf, const uint8_t *b,
                         uint32_t len)
{
    uint32_t off = 0, n;
    uint16_t s;

    qtest_memwrite(t->qts, t->buf, b, len);
    if (g_rand_boolean(rng)) {
        return set_state(t, vf, SEQ_ONLY, t->buf, len, 0);
    }
    for (;;) {
        n = ROUND_UP(g_rand_int_range(rng, 1, len + 1), 4);
        n = MIN(n, ROUND_UP(len - off, 4));
        s = set_state(t, vf, off ? (off + n >= len ? SEQ_LAST : SEQ_MIDDLE) :
                      (n >= len ? SEQ_ONLY : SEQ_FIRST), t->buf + off, n, off);
        off += n;
        if (s || off >= len) {
            return s;
        }
    }
}

static void test_set_state_fuzz(void)
{
    const char *env = g_getenv("NVME_LM_FUZZ_CASES");
    const char *seed_env = g_getenv("NVME_LM_FUZZ_SEED");
    unsigned long cases = 500, seed = g_random_int();
    g_autoptr(GRand) rng = NULL;
    g_autofree uint8_t *good = g_malloc(2 * PAGE);
    g_autofree uint8_t *b = g_malloc(2 * PAGE);
    GHashTable *outcomes = g_hash_table_new(NULL, NULL);
    unsigned i, accepted = 0, checks = 0;
    uint32_t len, n;
    LmTest t;
    GHashTableIter it;
    gpointer k, v;

    g_assert(!env || !qemu_strtoul(env, NULL, 0, &cases));
    g_assert(!seed_env || !qemu_strtoul(seed_env, NULL, 0, &seed));
    rng = g_rand_new_with_seed(seed);
    lm_start(&t);
    create_ioq(&t, &t.vf[0]);
    g_assert_cmphex(suspend(&t, &t.vf[0]), ==, 0);
    len = get_whole_state(&t, &t.vf[0], good);

    for (i = 0; i < cases; i++) {
        uint16_t s;

        memcpy(b, good, len);
        n = len;
        if (g_rand_int_range(rng, 0, 32) == 0) {
            n = 4 * g_rand_int_range(rng, 1, PAGE / 2);
            for (uint32_t j = 0; j < n; j++) {
                b[j] = g_rand_int(rng);
            }
        } else {
            unsigned m = g_rand_int_range(rng, 1, 4);

            while (m--) {
                n = mutate(rng, b, n, 2 * PAGE);
            }
        }
        g_assert_cmphex(suspend(&t, &t.vf[1]), ==, 0);
        s = SC(fuzz_set(&t, rng, &t.vf[1], b, n));
        g_hash_table_insert(outcomes, GUINT_TO_POINTER(s + 1),
            GUINT_TO_POINTER(GPOINTER_TO_UINT(
                g_hash_table_lookup(outcomes, GUINT_TO_POINTER(s + 1))) + 1));
        if (!s) {
            accepted++;
        }
        /* the destination comes back with a reset, after every accepted one */
        if (!s || i % 16 == 0 || i == cases - 1) {
            ctrl_enable(&t, &t.vf[1]);
            g_assert_cmphex(identify(&t, &t.vf[1], NVME_ID_CNS_CTRL, t.buf),
                            ==, 0);
            checks++;
        } else {
            g_assert_cmphex(resume(&t, &t.vf[1]), ==, 0);
        }
    }

    g_test_message("set-state fuzz: seed %lu, %lu cases, %u accepted, "
                   "%u recovery checks", seed, cases, accepted, checks);
    g_hash_table_iter_init(&it, outcomes);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        g_test_message("  status 0x%03x: %u", GPOINTER_TO_UINT(k) - 1,
                       GPOINTER_TO_UINT(v));
    }
    g_hash_table_unref(outcomes);

    /* the source is untouched by all of it */
    g_assert_cmphex(resume(&t, &t.vf[0]), ==, 0);
    g_assert_cmphex(rw(&t, &t.vf[0], NVME_CMD_READ, 0, t.buf), ==, 0);
    lm_end(&t);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    qtest_add_func("/nvme-lm/identify", test_identify);
    qtest_add_func("/nvme-lm/suspend-resume", test_suspend_resume);
    qtest_add_func("/nvme-lm/trace", test_trace);
    qtest_add_func("/nvme-lm/state-roundtrip", test_state_roundtrip);
    qtest_add_func("/nvme-lm/state-bounds", test_state_bounds);
    qtest_add_func("/nvme-lm/cdq", test_cdq);
    qtest_add_func("/nvme-lm/cdq-over-bar", test_cdq_over_bar);
    qtest_add_func("/nvme-lm/track-memory", test_track_memory);
    qtest_add_func("/nvme-lm/vf-disable-frees-tracking",
                   test_vf_disable_frees_tracking);
    qtest_add_func("/nvme-lm/held-suspend-mmc-reset",
                   test_held_suspend_mmc_reset);
    qtest_add_func("/nvme-lm/hold-over-reset", test_hold_over_reset);
    qtest_add_func("/nvme-lm/set-state-fuzz", test_set_state_fuzz);
    return g_test_run();
}
