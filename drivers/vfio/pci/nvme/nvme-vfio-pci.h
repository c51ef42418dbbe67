/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * nvme-vfio-pci: vfio-pci variant driver for NVMe SR-IOV virtual functions.
 * Private definitions shared by the driver's files.
 */
#ifndef NVME_VFIO_PCI_H
#define NVME_VFIO_PCI_H

#include <linux/atomic.h>
#include <linux/mutex.h>
#include <linux/notifier.h>
#include <linux/nvme-pci.h>
#include <linux/sizes.h>
#include <linux/types.h>
#include <linux/uuid.h>
#include <linux/vfio_pci_core.h>
#include <linux/workqueue.h>
#include <linux/xarray.h>

struct nvmevf_migf;

/**
 * enum nvmevf_cmd_kind - the PF commands the statistics count apart
 * @NVMEVF_CK_IDENTIFY: Identify (the VF's identity, secondary controllers)
 * @NVMEVF_CK_SUSPEND: Migration Send, Suspend
 * @NVMEVF_CK_RESUME: Migration Send, Resume
 * @NVMEVF_CK_SET: Migration Send, Set Controller State
 * @NVMEVF_CK_GET: Migration Receive, Get Controller State
 * @NVMEVF_CK_TRACK_SEND: Track Send
 * @NVMEVF_CK_TRACK_RECV: Track Receive
 * @NVMEVF_CK_NUM: number of kinds
 */
enum nvmevf_cmd_kind {
	NVMEVF_CK_IDENTIFY,
	NVMEVF_CK_SUSPEND,
	NVMEVF_CK_RESUME,
	NVMEVF_CK_SET,
	NVMEVF_CK_GET,
	NVMEVF_CK_TRACK_SEND,
	NVMEVF_CK_TRACK_RECV,
	NVMEVF_CK_NUM,
};

/**
 * struct nvmevf_cmd_stats - accounting of the commands sent to the PF
 * @commands: commands issued
 * @errors: commands that failed (NVMe status or errno)
 * @last_status: return of the last nvme_pci_vf_*() operation: 0, a positive
 *	NVMe status or a negative errno
 * @by_kind: @commands by enum nvmevf_cmd_kind
 */
struct nvmevf_cmd_stats {
	u64 commands;
	u64 errors;
	int last_status;
	u64 by_kind[NVMEVF_CK_NUM];
};

/**
 * enum nvmevf_phase - migration phases whose last duration is kept
 * @NVMEVF_PH_SUSPEND: Suspend (RUNNING -> RUNNING_P2P, PRE_COPY -> PRE_COPY_P2P)
 * @NVMEVF_PH_RESUME: Resume (the reverse arcs)
 * @NVMEVF_PH_PRECOPY: building the initial data (RUNNING -> PRE_COPY)
 * @NVMEVF_PH_STOP_COPY: reading the controller state (-> STOP_COPY)
 * @NVMEVF_PH_RESUMING: collecting the destination's identity (STOP -> RESUMING)
 * @NVMEVF_PH_LOAD: validation and Set Controller State (RESUMING -> STOP)
 * @NVMEVF_PH_DATA_SIZE: VFIO_DEVICE_FEATURE_MIG_DATA_SIZE
 * @NVMEVF_PH_NUM: number of phases
 */
enum nvmevf_phase {
	NVMEVF_PH_SUSPEND,
	NVMEVF_PH_RESUME,
	NVMEVF_PH_PRECOPY,
	NVMEVF_PH_STOP_COPY,
	NVMEVF_PH_RESUMING,
	NVMEVF_PH_LOAD,
	NVMEVF_PH_DATA_SIZE,
	NVMEVF_PH_NUM,
};

/**
 * struct nvmevf_lm_stats - migration statistics, shown in debugfs
 * @cmd: PF commands issued by the migration code (under state_mutex)
 * @failed_arcs: FSM arcs that failed (ERROR or not)
 * @last_error: errno of the last failed arc
 * @deferred_resumes: Resumes after a reset that nvme-pci refused (-EBUSY:
 *	an earlier command for the VF still with the controller), sent again
 *	on the PF event that ends the wait
 * @duration_ns: last duration of each enum nvmevf_phase
 * @bytes_saved: bytes read from save files
 * @bytes_precopy: of these, bytes read before the end of the precopy data
 * @bytes_loaded: bytes written to resume files
 * @last_data_size: the last MIG_DATA_SIZE answer
 * @files_holding: migration files whose data buffers are still allocated
 *	(a disabled file frees them unless a read()/write() is copying)
 */
struct nvmevf_lm_stats {
	struct nvmevf_cmd_stats cmd;
	u64 failed_arcs;
	int last_error;
	u64 deferred_resumes;
	u64 duration_ns[NVMEVF_PH_NUM];
	atomic64_t bytes_saved;
	atomic64_t bytes_precopy;
	atomic64_t bytes_loaded;
	u64 last_data_size;
	atomic_t files_holding;
};

/**
 * struct nvmevf_track_caps - the PF's tracking limits (Identify Controller)
 * @cmmrtd: descriptors one controller can have tracked
 * @nmmrtd: descriptors the subsystem can have tracked
 * @minmrtg: finest granularity code (2^n * 4 KiB)
 * @maxmrtg: coarsest granularity code
 * @trattr: NVME_LM_TRATTR_*
 */
struct nvmevf_track_caps {
	u16 cmmrtd;
	u16 nmmrtd;
	u8 minmrtg;
	u8 maxmrtg;
	u8 trattr;
};

/**
 * struct nvmevf_dirty - DMA logging of one VF (dirty.c), under state_mutex
 * @caps: the PF's limits, read at probe
 * @rxlen: Track Receive buffer size
 * @active: tracking started (VFIO's view)
 * @stop_pending: a stop the PF refused while the VF was suspended (39h),
 *	sent once the VF runs again
 * @lost: the PF was reset or removed while tracking: reports fail with
 *	-EIO until logging is stopped
 * @rmrtg: granularity code in use
 * @ranges: the tracked ranges, granule aligned
 * @nranges: their number
 * @rxbuf: Track Receive buffer
 * @pending: reported granules that belong to other windows: chunk index
 *	-> bitmap of NVMEVF_CHUNK_BITS granules
 * @pending_chunks: chunks in @pending
 * @starts: successful starts
 * @receives: Track Receive commands
 * @granules: granules the PF reported
 * @reported: granules handed to VFIO
 * @reads: log_read_and_clear calls
 * @read_ns: time spent in them, bitmap pinning by the core excluded
 * @recv_ns: the part of @read_ns spent waiting for Track Receive (device)
 * @tracked_bytes: bytes of the ranges of the last start
 * @skipped: reports served from the pending set alone
 * @drained_suspended: a Track Receive of the suspended VF returned SUSP = 1
 *	and MTR = 0: nothing new until the VF resumes
 */
struct nvmevf_dirty {
	struct nvmevf_track_caps caps;
	u32 rxlen;
	bool active;
	bool stop_pending;
	bool lost;
	u8 rmrtg;
	struct nvme_lm_range *ranges;
	u32 nranges;
	void *rxbuf;
	struct xarray pending;
	u64 pending_chunks;
	u64 starts;
	u64 receives;
	u64 granules;
	u64 reported;
	u64 reads;
	u64 read_ns;
	u64 recv_ns;
	u64 tracked_bytes;
	u64 skipped;
	bool drained_suspended;
};

/* bits of nvmevf_pci_core_device::lm_flags */
#define NVMEVF_LM_PF_EVENT	0	/* PF reset/removal not yet handled */
#define NVMEVF_LM_RESUME_WAIT	1	/* a Resume after reset waits for a PF event */

/**
 * struct nvmevf_pci_core_device - one NVMe VF bound to the driver
 * @core_device: the vfio-pci core device, first member
 * @pf: the VF's PF (the Migration Management Controller)
 * @scid: the VF's controller ID as the PF lists it (valid if @has_scid)
 * @has_scid: @scid was resolved at probe
 * @pf_nb: notifier for PF resets
 * @has_pf_nb: @pf_nb is registered with the PF
 * @pf_events: count of each enum nvme_pci_pf_event seen for @pf
 * @max_transfer: the PF's largest transfer of one command (bytes)
 * @migratable: decided at probe; migration_flags and mig_ops are set
 * @csvi: index of NVMe controller state version 0 in the PF's CNS 20h
 * @csuuidi: index of @vs_uuid in the PF's CNS 20h
 * @vs_uuid: the vendor specific state format used (the PF's first)
 * @nn: the PF's Identify Controller NN: no NSID above it exists
 * @nns_seen: namespaces attached at the last identity collection (sizes
 *	the compat record in MIG_DATA_SIZE before the stream exists)
 * @nvq: VQ resources of the VF at the last identity collection (CNS 15h)
 * @nvi: VI resources of the VF, likewise
 * @state_mutex: serialises the FSM, the files and MIG_DATA_SIZE
 * @mig_state: current VFIO migration state (under @state_mutex)
 * @is_open: the vfio device is open (under @state_mutex)
 * @lost: the failing arc or commit left the controller in an unknown state:
 *	the device goes to ERROR (under @state_mutex)
 * @resume_pending: a reset happened; the best-effort Resume that makes
 *	RUNNING mean running is still to be sent (under @state_mutex)
 * @resetting: between reset_prepare and reset_done: no PF command is sent
 *	for the VF, arcs, MIG_DATA_SIZE and DMA logging fail with -EBUSY
 *	(under @state_mutex)
 * @saving: the save file, in PRE_COPY(_P2P) and STOP_COPY
 * @resuming: the resume file, in RESUMING
 * @lm_flags: NVMEVF_LM_PF_EVENT, set from the PF notifier;
 *	NVMEVF_LM_RESUME_WAIT, under @state_mutex, read by the notifier
 * @pf_work: handles a PF event under @state_mutex
 * @reset_work: sends the Resume that follows a reset of the VF
 * @stats: migration statistics
 * @dirty: DMA logging
 */
struct nvmevf_pci_core_device {
	struct vfio_pci_core_device core_device;
	struct pci_dev *pf;
	u16 scid;
	bool has_scid;
	struct notifier_block pf_nb;
	bool has_pf_nb;
	atomic_t pf_events[NVME_PCI_PF_VF_CMD_ENDED + 1];
	u32 max_transfer;

	bool migratable;
	u8 csvi;
	u8 csuuidi;
	uuid_t vs_uuid;
	u32 nn;
	u16 nns_seen;
	u16 nvq;
	u16 nvi;
	struct mutex state_mutex;	/* FSM, files, PF commands */
	enum vfio_device_mig_state mig_state;
	bool is_open;
	bool lost;
	bool resume_pending;
	bool resetting;
	struct nvmevf_migf *saving;
	struct nvmevf_migf *resuming;
	unsigned long lm_flags;
	struct work_struct pf_work;
	struct work_struct reset_work;
	struct nvmevf_lm_stats stats;
	struct nvmevf_dirty dirty;
};

static inline struct nvmevf_pci_core_device *
nvmevf_of(struct vfio_device *vdev)
{
	return container_of(vdev, struct nvmevf_pci_core_device,
			    core_device.vdev);
}

/*
 * ---- Migration stream (Documentation/stream.rst) ----
 *
 * A stream header, then records: a record header followed by @size bytes.
 * Little endian throughout.
 */
#define NVMEVF_STREAM_MAGIC	"NVMEVFLM"	/* 8 bytes, no NUL */
#define NVMEVF_STREAM_VERSION	2
/* the NVMe controller state version the driver parses */
#define NVMEVF_NVME_STATE_VERSION	0

/**
 * struct nvmevf_stream_hdr - first 16 bytes of a stream
 * @magic: NVMEVF_STREAM_MAGIC
 * @version: NVMEVF_STREAM_VERSION of the writer
 * @reserved: written as 0, ignored
 */
struct nvmevf_stream_hdr {
	u8 magic[8];
	__le32 version;
	__le32 reserved;
} __packed;
static_assert(sizeof(struct nvmevf_stream_hdr) == 16);

/**
 * enum nvmevf_rec_tag - record tags
 * @NVMEVF_REC_COMPAT: struct nvmevf_compat, the first known record
 * @NVMEVF_REC_CTRL_STATE: the Controller State data structure as read by
 *	Get Controller State (header, NVMe state, vendor state)
 * @NVMEVF_REC_END: end of the stream, no payload
 */
enum nvmevf_rec_tag {
	NVMEVF_REC_COMPAT	= 1,
	NVMEVF_REC_CTRL_STATE	= 2,
	NVMEVF_REC_END		= 3,
};

/* record flags: a reader that does not know the tag skips the record */
#define NVMEVF_REC_F_OPTIONAL	BIT(0)

/**
 * struct nvmevf_rec_hdr - header of every record
 * @tag: enum nvmevf_rec_tag
 * @flags: NVMEVF_REC_F_OPTIONAL; other bits written as 0, ignored
 * @size: bytes of payload that follow
 */
struct nvmevf_rec_hdr {
	__le32 tag;
	__le32 flags;
	__le64 size;
} __packed;
static_assert(sizeof(struct nvmevf_rec_hdr) == 16);

/* struct nvmevf_compat_ns::flags: FLBAS bit 4, metadata at the end of LBAs */
#define NVMEVF_NS_F_EXT_LBA	BIT(0)

/**
 * struct nvmevf_compat_ns - identity of a namespace attached to the VF
 * @nsid: namespace ID
 * @lbads: LBA data size (2^n bytes) of the formatted LBA format
 * @flags: NVMEVF_NS_F_EXT_LBA
 * @ms: metadata size of the formatted LBA format
 * @nsze: namespace size in logical blocks
 * @nguid: namespace globally unique identifier
 * @eui64: IEEE extended unique identifier
 * @uuid: namespace UUID (Namespace Identification Descriptor type 3h), all
 *	zero when the PF reports none
 *
 * NSID, LBA format, metadata and NSZE are the structure of the namespace
 * and must always match; NGUID, EUI64 and UUID are its identity, checked
 * unless the ns_identity module parameter relaxes it.
 */
struct nvmevf_compat_ns {
	__le32 nsid;
	u8 lbads;
	u8 flags;
	__le16 ms;
	__le64 nsze;
	u8 nguid[16];
	u8 eui64[8];
	u8 uuid[16];
} __packed;
static_assert(sizeof(struct nvmevf_compat_ns) == 56);

/**
 * struct nvmevf_compat - payload of NVMEVF_REC_COMPAT
 * @vendor: PCI vendor ID of the VF
 * @device: PCI device ID of the VF
 * @max_transfer: the PF's largest admin transfer in bytes (informational)
 * @nvq: VQ resources of the VF (CNS 15h NVQ, admin queue included)
 * @nvi: VI resources of the VF (CNS 15h NVI)
 * @state_version: NVMe controller state version of the state record
 * @nns: number of @ns entries, at most NVMEVF_MAX_NS
 * @vs_uuid: vendor specific state format of the state record
 * @ns: namespaces attached to the VF, ascending NSID
 */
struct nvmevf_compat {
	__le16 vendor;
	__le16 device;
	__le32 max_transfer;
	__le16 nvq;
	__le16 nvi;
	__le16 state_version;
	__le16 nns;
	u8 vs_uuid[16];
	struct nvmevf_compat_ns ns[];
} __packed;
static_assert(sizeof(struct nvmevf_compat) == 32);

/* limits (Documentation/stream.rst) */
#define NVMEVF_MAX_NS		64
#define NVMEVF_COMPAT_MAX	(sizeof(struct nvmevf_compat) + \
				 NVMEVF_MAX_NS * sizeof(struct nvmevf_compat_ns))
#define NVMEVF_STATE_MAX	SZ_64M
#define NVMEVF_STREAM_MAX	(NVMEVF_STATE_MAX + SZ_1M)

/**
 * struct nvmevf_dev_info - what the compat record describes, of one VF
 * @csf: the PF's Identify CNS 20h data
 * @vendor: PCI vendor ID
 * @device: PCI device ID
 * @max_transfer: the PF's largest admin transfer in bytes
 * @nvq: VQ resources (CNS 15h)
 * @nvi: VI resources (CNS 15h)
 * @state_version: NVMe controller state version used
 * @vs_uuid: vendor specific state format used
 * @nns: entries in @ns
 * @check_identity: the compat check also compares the namespaces' NGUID,
 *	EUI64 and UUID (the ns_identity module parameter)
 * @ns: namespaces attached to the VF, ascending NSID
 */
struct nvmevf_dev_info {
	u8 csf[SZ_4K];
	u16 vendor;
	u16 device;
	u32 max_transfer;
	u16 nvq;
	u16 nvi;
	u16 state_version;
	uuid_t vs_uuid;
	unsigned int nns;
	bool check_identity;
	struct nvmevf_compat_ns ns[NVMEVF_MAX_NS];
};

/**
 * enum nvmevf_rd_phase - where a stream reader is
 * @NVMEVF_RD_STREAM_HDR: reading the stream header
 * @NVMEVF_RD_REC_HDR: reading a record header
 * @NVMEVF_RD_PAYLOAD: reading the payload of a known record
 * @NVMEVF_RD_SKIP: skipping the payload of an unknown optional record
 * @NVMEVF_RD_END: the end record was read; nothing more is accepted
 * @NVMEVF_RD_ERROR: the stream was rejected
 */
enum nvmevf_rd_phase {
	NVMEVF_RD_STREAM_HDR,
	NVMEVF_RD_REC_HDR,
	NVMEVF_RD_PAYLOAD,
	NVMEVF_RD_SKIP,
	NVMEVF_RD_END,
	NVMEVF_RD_ERROR,
};

/**
 * struct nvmevf_why - why a stream check failed, for the kernel log
 * @msg: the reason, NUL-terminated
 */
struct nvmevf_why {
	char msg[112];
};

/**
 * struct nvmevf_reader - incremental parser of a migration stream
 * @phase: enum nvmevf_rd_phase
 * @err: the errno that rejected the stream (in NVMEVF_RD_ERROR)
 * @dst: the destination VF the stream is checked against
 * @total: bytes accepted so far
 * @hdr: stream or record header being assembled
 * @hdr_have: bytes of @hdr received
 * @tag: tag of the current record
 * @size: payload size of the current record
 * @have: payload bytes of the current record received
 * @payload: where the current record's payload goes
 * @compat: the compat record's payload
 * @compat_len: its size
 * @state: the controller state record's payload
 * @state_len: its size
 * @compat_ok: @compat is complete and matches @dst
 * @state_ok: @state is complete and fits @dst
 * @csvi: the destination's index of the stream's NVMe state version
 * @csuuidi: the destination's index of the stream's vendor state format
 * @why: why the stream was refused
 */
struct nvmevf_reader {
	enum nvmevf_rd_phase phase;
	int err;
	const struct nvmevf_dev_info *dst;
	u64 total;
	union {
		struct nvmevf_stream_hdr stream;
		struct nvmevf_rec_hdr rec;
		u8 raw[16];
	} hdr;
	u32 hdr_have;
	u32 tag;
	u64 size;
	u64 have;
	u8 *payload;
	u8 *compat;
	size_t compat_len;
	u8 *state;
	size_t state_len;
	bool compat_ok;
	bool state_ok;
	u8 csvi;
	u8 csuuidi;
	struct nvmevf_why why;
};

/* cmds.c: parsers and helpers */
u32 nvmevf_chunk_len(u64 total, u64 done, u32 max_transfer);
int nvmevf_parse_csf(const void *buf, size_t len, u16 version,
		     const uuid_t *uuid, u8 *csvi, u8 *csuuidi);
int nvmevf_csf_uuid(const void *buf, size_t len, unsigned int index,
		    uuid_t *uuid);
int nvmevf_nsid_list_parse(const void *buf, size_t len, u32 start);
int nvmevf_id_ns_parse(const void *buf, size_t len, u32 nsid,
		       struct nvmevf_compat_ns *ns);
int nvmevf_status_to_errno(int status);
bool nvmevf_status_sent(int status);
int nvmevf_ns_desc_uuid(const void *buf, size_t len, u8 *uuid);
int nvmevf_account(struct nvmevf_cmd_stats *st, enum nvmevf_cmd_kind kind,
		   int status);
int nvmevf_pf_done(struct nvmevf_cmd_stats *st, enum nvmevf_cmd_kind kind,
		   int status);
extern const char * const nvmevf_cmd_kind_names[NVMEVF_CK_NUM];

/* stream.c: stream encoding and validation (pure, KUnit tested) */
void nvmevf_stream_hdr_fill(struct nvmevf_stream_hdr *h);
void nvmevf_rec_hdr_fill(struct nvmevf_rec_hdr *h, u32 tag, u32 flags,
			 u64 size);
size_t nvmevf_compat_size(unsigned int nns);
void nvmevf_compat_fill(struct nvmevf_compat *c,
			const struct nvmevf_dev_info *info);
int nvmevf_compat_check(const void *buf, size_t len,
			const struct nvmevf_dev_info *dst, u8 *csvi,
			u8 *csuuidi, struct nvmevf_why *why);
int nvmevf_state_size(const struct nvme_lm_state_hdr *hdr, u64 *total);
int nvmevf_state_check(const void *buf, size_t len, u16 nvq, u16 nvi,
		       struct nvmevf_why *why);
void nvmevf_reader_init(struct nvmevf_reader *rd,
			const struct nvmevf_dev_info *dst);
void nvmevf_reader_free(struct nvmevf_reader *rd);
int nvmevf_reader_fail(struct nvmevf_reader *rd, int err);
ssize_t nvmevf_reader_window(struct nvmevf_reader *rd, size_t want,
			     void **dst);
int nvmevf_reader_advance(struct nvmevf_reader *rd, size_t n);
int nvmevf_reader_finish(struct nvmevf_reader *rd);

/* lm.c: the device side, called from main.c */
void nvmevf_lm_init_dev(struct nvmevf_pci_core_device *nvmevf);
void nvmevf_lm_release_dev(struct nvmevf_pci_core_device *nvmevf);
void nvmevf_lm_probe(struct nvmevf_pci_core_device *nvmevf);
void nvmevf_lm_remove(struct nvmevf_pci_core_device *nvmevf);
void nvmevf_lm_debugfs_init(struct nvmevf_pci_core_device *nvmevf);
void nvmevf_lm_open(struct nvmevf_pci_core_device *nvmevf);
void nvmevf_lm_close(struct nvmevf_pci_core_device *nvmevf);
void nvmevf_lm_reset_prepare(struct nvmevf_pci_core_device *nvmevf);
void nvmevf_lm_reset_done(struct nvmevf_pci_core_device *nvmevf);
void nvmevf_lm_pf_event(struct nvmevf_pci_core_device *nvmevf,
			unsigned long event);

/* dirty.c: DMA logging, built when the kernel has CONFIG_IOMMUFD_DRIVER */
#if IS_ENABLED(CONFIG_IOMMUFD_DRIVER)
void nvmevf_dirty_init(struct nvmevf_pci_core_device *nvmevf);
void nvmevf_dirty_probe(struct nvmevf_pci_core_device *nvmevf,
			const struct nvme_id_ctrl *id, u32 max_transfer);
void nvmevf_dirty_flush_stop_locked(struct nvmevf_pci_core_device *nvmevf);
void nvmevf_dirty_resumed_locked(struct nvmevf_pci_core_device *nvmevf);
void nvmevf_dirty_reset_locked(struct nvmevf_pci_core_device *nvmevf,
			       bool send);
void nvmevf_dirty_pf_lost_locked(struct nvmevf_pci_core_device *nvmevf);
#if IS_ENABLED(CONFIG_KUNIT)
u32 nvmevf_ranges_fit(struct nvme_lm_range *r, u32 n, u64 gran, bool pow2,
		      u32 max);
#endif
#else
static inline void nvmevf_dirty_init(struct nvmevf_pci_core_device *nvmevf)
{
}

static inline void nvmevf_dirty_probe(struct nvmevf_pci_core_device *nvmevf,
				      const struct nvme_id_ctrl *id,
				      u32 max_transfer)
{
}

static inline void
nvmevf_dirty_flush_stop_locked(struct nvmevf_pci_core_device *nvmevf)
{
}

static inline void
nvmevf_dirty_resumed_locked(struct nvmevf_pci_core_device *nvmevf)
{
}

static inline void
nvmevf_dirty_reset_locked(struct nvmevf_pci_core_device *nvmevf, bool send)
{
}

static inline void
nvmevf_dirty_pf_lost_locked(struct nvmevf_pci_core_device *nvmevf)
{
}
#endif

#endif /* NVME_VFIO_PCI_H */
