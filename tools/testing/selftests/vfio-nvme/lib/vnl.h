/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * vnl: a small userspace NVMe-over-VFIO library for the vfio-nvme selftests.
 *
 * A device is opened through VFIO (iommufd cdev or legacy group/container),
 * gets one DMA arena mapped at a fixed IOVA, and is driven as an NVMe
 * controller: registers through the BAR0 region, queues in the arena.
 */
#ifndef VNL_H
#define VNL_H

#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

enum vnl_iommu_mode {
	VNL_IOMMUFD,	/* /dev/vfio/devices/vfioN + /dev/iommu */
	VNL_CONTAINER,	/* /dev/vfio/<group> + /dev/vfio/vfio, type1v2 */
};

#define VNL_MAX_IRQS	8
#define VNL_PAGE	4096u

struct vnl_dev {
	char bdf[32];
	enum vnl_iommu_mode mode;
	int device_fd;
	int iommufd;
	int container_fd;
	int group_fd;
	uint32_t ioas_id;
	uint32_t devid;
	uint64_t cfg_off;
	uint64_t bar0_off;
	uint64_t bar0_size;
	/* the VF token given at open (vnl_dev_open_token()), if any */
	const uint8_t *vf_token;
	int irq_fds[VNL_MAX_IRQS];
	int nirqs;
	/* DMA arena, bump allocated */
	uint8_t *dma_va;
	uint64_t dma_iova;
	size_t dma_size;
	size_t dma_used;
};

/* Error text of the last failing vnl call in this thread. */
extern __thread char vnl_err[256];

int vnl_dev_open(struct vnl_dev *d, const char *bdf, enum vnl_iommu_mode mode,
		 uint64_t iova, size_t dma_size);
int vnl_dev_open_token(struct vnl_dev *d, const char *bdf,
		       enum vnl_iommu_mode mode, const uint8_t token[16],
		       uint64_t iova, size_t dma_size);
int vnl_vf_of_vfio_pf(char *vf, size_t len);
int vnl_set_vf_token(const char *pf_bdf, const uint8_t token[16]);
int vnl_bind(const char *bdf, const char *driver);
void vnl_dev_close(struct vnl_dev *d);
int vnl_dev_map_arena_of(struct vnl_dev *d, const struct vnl_dev *src);
int vnl_dev_reset(struct vnl_dev *d);
int vnl_cfg_read(struct vnl_dev *d, unsigned int off, void *buf, size_t len);
int vnl_cfg_write(struct vnl_dev *d, unsigned int off, const void *buf,
		  size_t len);
int vnl_cfg_find_cap(struct vnl_dev *d, uint8_t cap_id);
uint32_t vnl_read32(struct vnl_dev *d, unsigned int off);
uint64_t vnl_read64(struct vnl_dev *d, unsigned int off);
void vnl_write32(struct vnl_dev *d, unsigned int off, uint32_t v);
void vnl_write64(struct vnl_dev *d, unsigned int off, uint64_t v);
void *vnl_dma_alloc(struct vnl_dev *d, size_t size, uint64_t *iova);
int vnl_msix_enable(struct vnl_dev *d, int nvec);
int vnl_irq_count(struct vnl_dev *d, int vec, int timeout_ms);

/* ---- NVMe ---- */

struct vnl_sqe {
	uint8_t opc;
	uint8_t flags;
	uint16_t cid;
	uint32_t nsid;
	uint32_t cdw2;
	uint32_t cdw3;
	uint64_t mptr;
	uint64_t prp1;
	uint64_t prp2;
	uint32_t cdw10;
	uint32_t cdw11;
	uint32_t cdw12;
	uint32_t cdw13;
	uint32_t cdw14;
	uint32_t cdw15;
};

struct vnl_cqe {
	uint32_t dw0;
	uint32_t dw1;
	uint16_t sqhd;
	uint16_t sqid;
	uint16_t cid;
	uint16_t status;	/* bit 0 phase, 15:1 status field */
};

static_assert(sizeof(struct vnl_sqe) == 64, "SQE is 64 bytes");
static_assert(sizeof(struct vnl_cqe) == 16, "CQE is 16 bytes");

struct vnl_queue {
	uint16_t qid;
	uint16_t depth;
	uint16_t sq_tail;
	uint16_t cq_head;
	uint8_t phase;
	uint16_t next_cid;
	struct vnl_sqe *sq;
	struct vnl_cqe *cq;	/* written by the device: read with atomics */
	uint64_t sq_iova;
	uint64_t cq_iova;
};

struct vnl_ctrl {
	struct vnl_dev *dev;
	uint64_t cap;
	unsigned int dstrd;
	uint16_t cntlid;
	uint32_t lba_size;
	struct vnl_queue aq;
	struct vnl_queue ioq;
	void *buf;		/* one page for admin data */
	uint64_t buf_iova;
	int timeout_ms;
};

/* register offsets */
#define NVME_REG_CAP	0x00
#define NVME_REG_VS	0x08
#define NVME_REG_INTMS	0x0c
#define NVME_REG_CC	0x14
#define NVME_REG_CSTS	0x1c
#define NVME_REG_AQA	0x24
#define NVME_REG_ASQ	0x28
#define NVME_REG_ACQ	0x30
#define NVME_REG_DB	0x1000

/* opcodes */
#define NVME_ADM_CREATE_SQ	0x01
#define NVME_ADM_CREATE_CQ	0x05
#define NVME_ADM_IDENTIFY	0x06
#define NVME_ADM_SET_FEATURES	0x09
#define NVME_ADM_VIRT_MGMT	0x1c
#define NVME_CMD_WRITE		0x01
#define NVME_CMD_READ		0x02

/* status helpers: status field = CQE DW3 bits 31:17 */
#define VNL_SC(st)	(((st) >> 1) & 0xff)
#define VNL_SCT(st)	(((st) >> 9) & 0x7)

uint64_t vnl_now_ms(void);
int vnl_ctrl_enable(struct vnl_ctrl *c, struct vnl_dev *d, uint16_t aq_depth);
void vnl_ctrl_disable(struct vnl_ctrl *c);
uint64_t vnl_db_offset(struct vnl_ctrl *c, uint16_t qid, bool cq);
void vnl_submit(struct vnl_ctrl *c, struct vnl_queue *q, struct vnl_sqe *sqe);
int vnl_wait(struct vnl_ctrl *c, struct vnl_queue *q, struct vnl_cqe *cqe);
int vnl_cmd(struct vnl_ctrl *c, struct vnl_queue *q, struct vnl_sqe *sqe,
	    struct vnl_cqe *cqe);
int vnl_identify(struct vnl_ctrl *c, uint8_t cns, uint32_t nsid, uint16_t cntid,
		 void *out);
int vnl_create_ioq(struct vnl_ctrl *c, uint16_t qid, uint16_t depth,
		   bool ien, uint16_t iv);
int vnl_rw(struct vnl_ctrl *c, uint8_t opc, uint32_t nsid, uint64_t slba,
	   uint16_t nlb, uint64_t iova);

/* ---- PF side: NVMe admin passthrough on the PF's /dev/nvmeN ---- */

int vnl_pf_of_vf(const char *vf_bdf, char *pf_bdf, size_t len, int *vfn);
int vnl_pf_ctrl_name(const char *pf_bdf, char *out, size_t len);
int vnl_pf_open(const char *pf_bdf);
int vnl_pf_reset(const char *pf_bdf);
void vnl_fill_pattern(uint8_t *p, size_t len, uint32_t seed);
int vnl_probe_driver(const char *bdf);
int vnl_write_file(const char *path, const char *val);
long vnl_debugfs_stat(const char *bdf, const char *name);
int vnl_pf_admin(int fd, uint8_t opc, uint32_t cdw10, uint32_t cdw11,
		 void *data, uint32_t len, uint32_t *result);
int vnl_pf_scid(int fd, int vfn, uint16_t *scid);
int vnl_vfs_bound_to(const char *driver, char bdfs[][32], int max);

#define VNL_RIG_MAX	8

/* the VFs the rig bound to a driver, their PF and controller IDs */
struct vnl_rig {
	char bdf[VNL_RIG_MAX][32];
	int nvf;
	char pf[32];
	int pffd;			/* the PF's /dev/nvmeN */
	int vfn[VNL_RIG_MAX];		/* 1-based VF numbers */
	uint16_t scid[VNL_RIG_MAX];	/* from the PF's CNS 15h */
};

int vnl_rig_open(struct vnl_rig *r, const char *driver);
void vnl_rig_close(struct vnl_rig *r);
int vnl_rig_open_vfs(const struct vnl_rig *r, struct vnl_dev *dev, int n,
		     size_t arena);
int vnl_pf_vf_bdf(const char *pf_bdf, int vfidx, char *vf_bdf, size_t len);
int vnl_pf_vf_online(int fd, const char *pf_bdf, int vfidx, int nvq, int nvi,
		     uint16_t *scid);
int vnl_sysfs_write(const char *bdf, const char *attr, const char *val);
int vnl_pf_state(const char *pf_bdf, char *buf, size_t len);
bool vnl_pf_live(const char *pf_bdf);
int vnl_wait_nvme_live(const char *pf_bdf);
int vnl_pf_setup_vfs(const char *pf_bdf, int nvfs, int nvq, int nvi,
		     const char *driver);

/* ---- TP4159 through the PF (lib/lm.c) ---- */

#define VNL_OPC_TRACK_SEND	0x3d
#define VNL_OPC_TRACK_RECV	0x3e
#define VNL_OPC_MIG_SEND	0x41
#define VNL_OPC_MIG_RECV	0x42
#define VNL_OPC_CDQ		0x45

enum { VNL_SEQ_MIDDLE, VNL_SEQ_FIRST, VNL_SEQ_LAST, VNL_SEQ_ONLY };

int vnl_pf_cmd64(int fd, uint8_t opc, uint32_t nsid, const uint32_t cdw[6],
		 void *data, uint32_t len, uint64_t *res);
int vnl_pf_cmd(int fd, uint8_t opc, uint32_t nsid, const uint32_t cdw[6],
	       void *data, uint32_t len, uint32_t *dw0);
int vnl_lm_suspend(int fd, uint16_t cntlid, int stype, bool dudmq);
int vnl_lm_resume(int fd, uint16_t cntlid);
int vnl_lm_get_state(int fd, uint16_t cntlid, uint8_t csvi, uint8_t csuuidi,
		     uint64_t offset, void *buf, uint32_t len, uint32_t *dw0);
int vnl_lm_get_state_all(int fd, uint16_t cntlid, uint8_t csvi,
			 uint8_t csuuidi, uint32_t chunk, uint8_t **out,
			 size_t *outlen, bool *csup);
int vnl_lm_set_state(int fd, uint16_t cntlid, uint8_t csvi, uint8_t csuuidi,
		     int seqind, uint64_t offset, const void *buf, uint32_t len);
int vnl_lm_set_state_all(int fd, uint16_t cntlid, uint8_t csvi,
			 uint8_t csuuidi, uint32_t chunk, const uint8_t *buf,
			 size_t len);
struct vnl_range {
	uint64_t addr;
	uint64_t len;	/* bytes */
};

int vnl_lm_track_mem(int fd, uint16_t cntlid, bool start, uint8_t rmrtg,
		     const struct vnl_range *ranges, uint32_t n, uint32_t *dw0,
		     uint32_t *dw1);
int vnl_lm_track_recv(int fd, uint16_t cntlid, void *buf, uint32_t len);

/* ---- VFIO migration uAPI (lib/mig.c) ---- */

/* the states, short */
#define S_ERROR		VFIO_DEVICE_STATE_ERROR
#define S_STOP		VFIO_DEVICE_STATE_STOP
#define S_RUNNING	VFIO_DEVICE_STATE_RUNNING
#define S_STOP_COPY	VFIO_DEVICE_STATE_STOP_COPY
#define S_RESUMING	VFIO_DEVICE_STATE_RESUMING
#define S_RUNNING_P2P	VFIO_DEVICE_STATE_RUNNING_P2P
#define S_PRE_COPY	VFIO_DEVICE_STATE_PRE_COPY
#define S_PRE_COPY_P2P	VFIO_DEVICE_STATE_PRE_COPY_P2P

int vnl_mig_flags(struct vnl_dev *d, uint64_t *flags);
int vnl_mig_set_state(struct vnl_dev *d, uint32_t state, int *data_fd);
int vnl_mig_get_state(struct vnl_dev *d);
int vnl_mig_data_size(struct vnl_dev *d, uint64_t *size);
int vnl_mig_precopy_info(int fd, uint64_t *initial, uint64_t *dirty,
			 uint32_t *flags);
int vnl_mig_read(int fd, uint8_t **buf, size_t *len, size_t piece);
int vnl_mig_write(int fd, const uint8_t *buf, size_t len, size_t piece);
int vnl_dma_log_start(struct vnl_dev *d, uint64_t *page_size,
		      const struct vnl_range *ranges, uint32_t n);
int vnl_dma_log_stop(struct vnl_dev *d);
int vnl_dma_log_report(struct vnl_dev *d, uint64_t iova, uint64_t len,
		       uint64_t page_size, uint64_t *bitmap);

/* ---- the rig's QEMU monitor (lib/hmp.c) ---- */

int vnl_hmp(const char *cmd, char *out, size_t len);
int vnl_qom_set(const char *id, const char *prop, const char *val);
int vnl_qom_get_uint(const char *id, const char *prop, unsigned long *val);
int vnl_lm_fault_at(const char *pf_id, const char *kind, unsigned int skip,
		    unsigned int count, unsigned int status);
int vnl_lm_cmds_seen(const char *pf_id, const char *kind, unsigned long *n);
int vnl_lm_fault(const char *pf_id, const char *kind, unsigned int count,
		 unsigned int status);

/* Virtualization Management (1Ch) actions and resource types */
#define VNL_VM_OFFLINE	0x7
#define VNL_VM_ASSIGN	0x8
#define VNL_VM_ONLINE	0x9
#define VNL_VM_RT_VQ	0
#define VNL_VM_RT_VI	1

/* $VNL_TIMEOUT_SCALE (1 to 100), 1 when unset or out of range */
static inline long vnl_timeout_scale(void)
{
	const char *env = getenv("VNL_TIMEOUT_SCALE");
	long scale = env ? strtol(env, NULL, 10) : 1;

	return scale >= 1 && scale <= 100 ? scale : 1;
}

/*
 * VNL_HARNESS_MAIN - TEST_HARNESS_MAIN with every test's timeout multiplied
 * by vnl_timeout_scale(): the rig's debug kernel (KASAN, kmemleak, debug
 * objects under TCG) runs the same tests several times slower than the
 * timeouts were set for.  Only for files that include kselftest_harness.h.
 */
#define VNL_HARNESS_MAIN						\
	int main(int argc, char **argv)					\
	{								\
		struct __fixture_metadata *f;				\
		struct __test_metadata *t;				\
		long scale = vnl_timeout_scale();			\
									\
		for (f = __fixture_list; scale > 1 && f; f = f->next)	\
			for (t = f->tests; t; t = t->next)		\
				t->timeout *= scale;			\
		exit(test_harness_run(argc, argv));			\
	}

#endif /* VNL_H */
