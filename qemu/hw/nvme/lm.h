/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * QEMU NVM Express: Host Managed Live Migration (TP4159)
 *
 * A PF created with "hmlms=on" is a Migration Management Controller (MMC):
 * it implements Migration Send/Receive, Track Send/Receive, Controller Data
 * Queue and Identify CNS 20h on behalf of its secondary controllers (the
 * VFs), which are the migratable controllers.  See
 * Documentation/device-model.rst of the nvme-vfio-pci project for the
 * interface (properties, vendor specific state layout, decisions).
 *
 * This header is the contract between ctrl.c (hooks) and lm.c (model).
 */

#ifndef HW_NVME_LM_H
#define HW_NVME_LM_H

#include "system/dma.h"
#include "nvme.h"

/*
 * ctrl.c functions used by lm.c.  They are static in upstream QEMU; the
 * hook patch makes them global and this header declares them.
 */
void nvme_ctrl_reset(NvmeCtrl *n, NvmeResetType rst);
int nvme_start_ctrl(NvmeCtrl *n);
void nvme_init_sq(NvmeSQueue *sq, NvmeCtrl *n, uint64_t dma_addr,
                  uint16_t sqid, uint16_t cqid, uint16_t size);
void nvme_init_cq(NvmeCQueue *cq, NvmeCtrl *n, uint64_t dma_addr,
                  uint16_t cqid, uint16_t vector, uint16_t size,
                  uint16_t irq_enabled);
void nvme_enqueue_req_completion(NvmeCQueue *cq, NvmeRequest *req);
void nvme_process_aers(void *opaque);
void nvme_irq_assert(NvmeCtrl *n, NvmeCQueue *cq);

/* Life cycle: instance_init, instance_finalize, realize (after init_ctrl) */
void nvme_lm_instance_init(Object *obj);
void nvme_lm_instance_finalize(Object *obj);
bool nvme_lm_init_ctrl(NvmeCtrl *n, Error **errp);

/*
 * Admin commands of the MMC: Track Send (3Dh), Track Receive (3Eh),
 * Migration Send (41h), Migration Receive (42h), Controller Data Queue
 * (45h); Identify CNS 20h; Get/Set Features FID 21h.
 */
uint16_t nvme_lm_admin_cmd(NvmeCtrl *n, NvmeRequest *req);
uint16_t nvme_lm_identify_csf(NvmeCtrl *n, NvmeRequest *req);
/* fault injection (lm-fault-cmd=identify): 0 or the status to fail with */
uint16_t nvme_lm_identify_fault(NvmeCtrl *n);
uint16_t nvme_lm_get_feature_cdq(NvmeCtrl *n, NvmeRequest *req);
uint16_t nvme_lm_set_feature_cdq(NvmeCtrl *n, NvmeRequest *req);

/*
 * Suspend gating of a migratable controller.
 *
 * nvme_lm_fetch_blocked(): true while a Suspend is in progress or the
 * controller is suspended: no SQ entry is fetched, no AER is completed.
 * nvme_lm_quiesced(): true once suspended: no DMA, no interrupt at all.
 * nvme_lm_cqes_posted(): called after every CQ posting pass, drives the
 * completion of a Suspend that waits for in-flight commands.
 */
bool nvme_lm_fetch_blocked(NvmeCtrl *n);
bool nvme_lm_quiesced(NvmeCtrl *n);
void nvme_lm_cqes_posted(NvmeCtrl *n);

/* Called first thing in nvme_ctrl_reset() (CLR / FLR / disable). */
void nvme_lm_ctrl_reset(NvmeCtrl *n, NvmeResetType rst);
bool nvme_lm_abort(NvmeCtrl *mmc, uint16_t cid);
void nvme_lm_vf_disabled(NvmeCtrl *pf, unsigned vf_index);

/* User data logging: every completion, and every deallocated DSM range. */
void nvme_lm_req_completed(NvmeCtrl *n, NvmeRequest *req);
void nvme_lm_dealloc_done(NvmeCtrl *n, NvmeNamespace *ns, uint64_t slba,
                          uint32_t nlb);

/*
 * Host memory write tracking (Track Memory Changes).  Every write a
 * controller makes to host memory is reported by the bus address (IOVA)
 * the controller used.
 */
void nvme_lm_track_write(NvmeCtrl *n, hwaddr addr, uint64_t len);
void nvme_lm_track_sg(NvmeCtrl *n, QEMUSGList *qsg, uint64_t len);
BlockAIOCB *nvme_lm_dma_blk_read(NvmeCtrl *n, BlockBackend *blk,
                                 QEMUSGList *qsg, int64_t offset,
                                 uint32_t align, BlockCompletionFunc *cb,
                                 void *opaque);

#endif /* HW_NVME_LM_H */
