// SPDX-License-Identifier: GPL-2.0-only
/*
 * nvme-vfio-pci: every NVMe live migration (TP4159) command the driver
 * issues is encoded here, and every structure the PF returns is parsed here.
 * The builders only fill a struct nvme_command; nvmevf_submit() sends it to
 * the PF through nvme-pci.
 */
#include <linux/bitfield.h>
#include <linux/cleanup.h>
#include <linux/errno.h>
#include <linux/kernel.h>
#include <linux/nvme.h>
#include <linux/nvme-lm.h>
#include <linux/pci.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/unaligned.h>
#include <linux/uuid.h>
#include <kunit/visibility.h>

#include "nvme-vfio-pci.h"

static void nvmevf_cmd_init(struct nvme_command *c, u8 opcode)
{
	memset(c, 0, sizeof(*c));
	c->common.opcode = opcode;
}

/**
 * nvmevf_cmd_suspend() - Migration Send, Suspend
 * @c: command to fill
 * @cntlid: controller to suspend (the VF's SCID)
 * @stype: NVME_LM_STYPE_SUSPEND or NVME_LM_STYPE_NOTIFY
 * @dudmq: delete the controller's user data migration queue on success
 */
void nvmevf_cmd_suspend(struct nvme_command *c, u16 cntlid,
			enum nvme_lm_stype stype, bool dudmq)
{
	nvmevf_cmd_init(c, nvme_admin_lm_migration_send);
	c->common.cdw10 = cpu_to_le32(NVME_LM_SEND_SEL_SUSPEND);
	c->common.cdw11 = cpu_to_le32((dudmq ? NVME_LM_SUSPEND_DUDMQ : 0) |
				      FIELD_PREP(NVME_LM_SUSPEND_STYPE_MASK, stype) |
				      cntlid);
}
EXPORT_SYMBOL_IF_KUNIT(nvmevf_cmd_suspend);

/**
 * nvmevf_cmd_resume() - Migration Send, Resume
 * @c: command to fill
 * @cntlid: controller to resume
 */
void nvmevf_cmd_resume(struct nvme_command *c, u16 cntlid)
{
	nvmevf_cmd_init(c, nvme_admin_lm_migration_send);
	c->common.cdw10 = cpu_to_le32(NVME_LM_SEND_SEL_RESUME);
	c->common.cdw11 = cpu_to_le32(cntlid);
}
EXPORT_SYMBOL_IF_KUNIT(nvmevf_cmd_resume);

/**
 * nvmevf_cmd_set_state() - Migration Send, Set Controller State (one chunk)
 * @c: command to fill
 * @cntlid: controller whose state is set
 * @csvi: NVMe controller state version index (1-based, 0 = none)
 * @csuuidi: vendor state UUID index (1-based, 0 = none)
 * @seqind: position of this chunk in the sequence
 * @offset: byte offset of the chunk in the Controller State data structure
 * @numd: number of dwords in the chunk (not 0's based)
 */
void nvmevf_cmd_set_state(struct nvme_command *c, u16 cntlid, u8 csvi,
			  u8 csuuidi, enum nvme_lm_seqind seqind, u64 offset,
			  u32 numd)
{
	nvmevf_cmd_init(c, nvme_admin_lm_migration_send);
	c->common.cdw10 = cpu_to_le32(NVME_LM_SEND_SEL_SET_STATE |
				      FIELD_PREP(NVME_LM_SEQIND_MASK, seqind));
	c->common.cdw11 = cpu_to_le32((u32)csuuidi << NVME_LM_SET_CSUUIDI_SHIFT |
				      (u32)csvi << NVME_LM_SET_CSVI_SHIFT |
				      cntlid);
	c->common.cdw12 = cpu_to_le32(lower_32_bits(offset));
	c->common.cdw13 = cpu_to_le32(upper_32_bits(offset));
	c->common.cdw15 = cpu_to_le32(numd);
}
EXPORT_SYMBOL_IF_KUNIT(nvmevf_cmd_set_state);

/**
 * nvmevf_cmd_get_state() - Migration Receive, Get Controller State (one chunk)
 * @c: command to fill
 * @cntlid: controller whose state is read
 * @csvi: NVMe controller state version index (1-based, 0 = none)
 * @csuuidi: vendor state UUID index (1-based, 0 = none)
 * @csuidxp: vendor specific parameter (ignored by the PF if @csuuidi is 0)
 * @offset: byte offset into the Controller State data structure
 * @ndw: number of dwords to return, at least 1 (encoded 0's based)
 */
void nvmevf_cmd_get_state(struct nvme_command *c, u16 cntlid, u8 csvi,
			  u8 csuuidi, u8 csuidxp, u64 offset, u32 ndw)
{
	nvmevf_cmd_init(c, nvme_admin_lm_migration_recv);
	c->common.cdw10 = cpu_to_le32(NVME_LM_RECV_SEL_GET_STATE |
				      (u32)csvi << NVME_LM_GET_CSVI_SHIFT);
	c->common.cdw11 = cpu_to_le32((u32)csuidxp << NVME_LM_GET_CSUIDXP_SHIFT |
				      (u32)csuuidi << NVME_LM_GET_CSUUIDI_SHIFT |
				      cntlid);
	c->common.cdw12 = cpu_to_le32(lower_32_bits(offset));
	c->common.cdw13 = cpu_to_le32(upper_32_bits(offset));
	c->common.cdw15 = cpu_to_le32(ndw - 1);
}
EXPORT_SYMBOL_IF_KUNIT(nvmevf_cmd_get_state);

/**
 * nvmevf_cmd_identify() - Identify of a PF controller data structure
 * @c: command to fill
 * @cns: NVME_ID_CNS_CTRL, NVME_LM_ID_CNS_PRIMARY_CTRL_CAP,
 *	NVME_LM_ID_CNS_SEC_CTRL_LIST or NVME_LM_ID_CNS_CTRL_STATE_FMTS
 * @cntid: CDW10 CNTID (lowest controller listed for CNS 15h), else 0
 */
void nvmevf_cmd_identify(struct nvme_command *c, u8 cns, u16 cntid)
{
	nvmevf_cmd_init(c, nvme_admin_identify);
	c->identify.cns = cns;
	c->identify.ctrlid = cpu_to_le16(cntid);
}
EXPORT_SYMBOL_IF_KUNIT(nvmevf_cmd_identify);

/**
 * nvmevf_cmd_identify_ns() - Identify of a namespace data structure of the PF
 * @c: command to fill
 * @cns: NVME_ID_CNS_NS_PRESENT_LIST (10h, allocated NSIDs above @nsid),
 *	NVME_ID_CNS_NS_PRESENT (11h, Identify Namespace of an allocated NSID)
 *	or NVME_ID_CNS_CTRL_NS_LIST (12h, controllers attached to @nsid, from
 *	@cntid up)
 * @nsid: CDW1 NSID
 * @cntid: CDW10 CNTID (lowest controller listed for CNS 12h), else 0
 */
void nvmevf_cmd_identify_ns(struct nvme_command *c, u8 cns, u32 nsid,
			    u16 cntid)
{
	nvmevf_cmd_identify(c, cns, cntid);
	c->identify.nsid = cpu_to_le32(nsid);
}
EXPORT_SYMBOL_IF_KUNIT(nvmevf_cmd_identify_ns);

/**
 * nvmevf_cmd_track_mem() - Track Send, Track Memory Changes
 * @c: command to fill
 * @cntlid: controller whose host memory writes are tracked
 * @start: true to start tracking (the data is a struct nvme_lm_track_mem),
 *	false to stop (no data)
 */
void nvmevf_cmd_track_mem(struct nvme_command *c, u16 cntlid, bool start)
{
	nvmevf_cmd_init(c, nvme_admin_lm_track_send);
	c->common.cdw10 = cpu_to_le32(NVME_LM_TRACK_SEL_MEMORY_CHANGES |
				      (start ? NVME_LM_TRACK_TACT : 0) <<
				      NVME_LM_MOS_SHIFT);
	c->common.cdw11 = cpu_to_le32(cntlid);
}
EXPORT_SYMBOL_IF_KUNIT(nvmevf_cmd_track_mem);

/**
 * nvmevf_track_mem_build() - fill a Track Memory Changes data structure
 * @buf: output buffer
 * @len: its size
 * @rmrtg: granularity code (2^n * 4 KiB)
 * @ranges: ranges to track, byte addresses and lengths
 * @n: number of ranges
 *
 * Every range must be aligned to the granularity and its length in granules
 * must fit the 32-bit LEN field.
 *
 * Return: bytes used in @buf, or -EINVAL / -ENOSPC.
 */
ssize_t nvmevf_track_mem_build(void *buf, size_t len, u8 rmrtg,
			       const struct nvmevf_range *ranges, u32 n)
{
	struct nvme_lm_track_mem *t = buf;
	u64 gran;
	size_t need;
	u32 i;

	if (rmrtg > 51 || !n)
		return -EINVAL;
	gran = 4096ULL << rmrtg;
	need = struct_size(t, desc, n);
	if (need > len)
		return -ENOSPC;
	memset(buf, 0, need);
	t->ver = 0;
	t->rmrtg = rmrtg;
	t->rnmrtd = cpu_to_le32(n);
	for (i = 0; i < n; i++) {
		u64 granules;

		if (!ranges[i].len || (ranges[i].start | ranges[i].len) & (gran - 1))
			return -EINVAL;
		granules = ranges[i].len >> (12 + rmrtg);
		if (granules > U32_MAX)
			return -EINVAL;
		t->desc[i].saddr = cpu_to_le64(ranges[i].start);
		t->desc[i].len = cpu_to_le32(granules);
	}
	return need;
}
EXPORT_SYMBOL_IF_KUNIT(nvmevf_track_mem_build);

/**
 * nvmevf_cmd_track_recv() - Track Receive, Tracked Memory Changes
 * @c: command to fill
 * @cntlid: controller whose changes are read (and cleared)
 * @ndw: number of dwords to return, at least 4 (encoded 0's based)
 */
void nvmevf_cmd_track_recv(struct nvme_command *c, u16 cntlid, u32 ndw)
{
	nvmevf_cmd_init(c, nvme_admin_lm_track_recv);
	c->common.cdw10 = cpu_to_le32(NVME_LM_TRACK_RECV_SEL_MEMORY);
	c->common.cdw11 = cpu_to_le32(cntlid);
	c->common.cdw12 = cpu_to_le32(ndw - 1);
}
EXPORT_SYMBOL_IF_KUNIT(nvmevf_cmd_track_recv);

/**
 * nvmevf_chunk_len() - length of the next chunk of a chunked transfer
 * @total: bytes of the whole transfer, a dword multiple
 * @done: bytes already transferred, a dword multiple
 * @max_transfer: the PF's limit for one command, in bytes
 *
 * Return: bytes for the next command, a dword multiple and at most
 * @max_transfer rounded down to dwords; 0 when the transfer is complete or
 * the arguments are unusable (unaligned, limit below one dword).
 */
u32 nvmevf_chunk_len(u64 total, u64 done, u32 max_transfer)
{
	u32 max = round_down(max_transfer, 4);

	if ((total | done) & 3 || done >= total || !max)
		return 0;
	return min_t(u64, total - done, max);
}
EXPORT_SYMBOL_IF_KUNIT(nvmevf_chunk_len);

/**
 * nvmevf_sec_ctrl_find() - find a VF's entry in a CNS 15h list
 * @buf: Secondary Controller List as returned by the PF
 * @len: number of valid bytes in @buf
 * @vfn: SR-IOV VF number, 1-based (pci_iov_vf_id() + 1)
 * @last: returns the highest SCID listed, to continue the list from; may
 *	be NULL
 *
 * The entry count comes from the device and is not trusted: only entries
 * that lie entirely within @len bytes are looked at.
 *
 * Return: the entry, or NULL for a VFN of 0, a buffer shorter than the list
 * header or a list without an entry for @vfn.
 */
const struct nvme_lm_sec_ctrl_entry *
nvmevf_sec_ctrl_find(const void *buf, size_t len, u16 vfn, u16 *last)
{
	const struct nvme_lm_sec_ctrl_list *list = buf;
	size_t hdr = offsetof(struct nvme_lm_sec_ctrl_list, entries);
	size_t n, i;

	if (last)
		*last = 0;
	if (!vfn || len < hdr)
		return NULL;
	n = min_t(size_t, list->numid, (len - hdr) / sizeof(list->entries[0]));
	n = min_t(size_t, n, NVME_LM_SEC_CTRL_LIST_MAX);
	for (i = 0; i < n; i++) {
		u16 id = le16_to_cpu(list->entries[i].scid);

		if (last && id > *last)
			*last = id;
		if (le16_to_cpu(list->entries[i].vfn) == vfn)
			return &list->entries[i];
	}
	return NULL;
}
EXPORT_SYMBOL_IF_KUNIT(nvmevf_sec_ctrl_find);

/**
 * nvmevf_parse_csf() - choose state formats from Identify CNS 20h
 * @buf: Supported Controller State Formats data
 * @len: valid bytes in @buf
 * @version: NVMe controller state version wanted
 * @uuid: vendor state UUID wanted, or NULL for none
 * @csvi: returns the 1-based index of @version, 0 if not offered
 * @csuuidi: returns the 1-based index of @uuid, 0 if not offered
 *
 * NV and NUUID come from the device: entries beyond @len are ignored.
 *
 * Return: 0, or -EINVAL if @buf is shorter than its 2-byte header.
 */
int nvmevf_parse_csf(const void *buf, size_t len, u16 version,
		     const uuid_t *uuid, u8 *csvi, u8 *csuuidi)
{
	const u8 *p = buf;
	size_t nv, nuuid, i, off;

	*csvi = 0;
	*csuuidi = 0;
	if (len < NVME_LM_CSF_HDR_SIZE)
		return -EINVAL;
	nv = p[0];
	nuuid = p[1];
	for (i = 0; i < nv; i++) {
		off = NVME_LM_CSF_HDR_SIZE + i * NVME_LM_CSF_VER_SIZE;
		if (off + NVME_LM_CSF_VER_SIZE > len)
			break;
		if (get_unaligned_le16(p + off) == version) {
			*csvi = i + 1;
			break;
		}
	}
	for (i = 0; uuid && i < nuuid; i++) {
		off = NVME_LM_CSF_HDR_SIZE + nv * NVME_LM_CSF_VER_SIZE +
		      i * NVME_LM_CSF_UUID_SIZE;
		if (off + NVME_LM_CSF_UUID_SIZE > len)
			break;
		if (!memcmp(p + off, uuid, NVME_LM_CSF_UUID_SIZE)) {
			*csuuidi = i + 1;
			break;
		}
	}
	return 0;
}
EXPORT_SYMBOL_IF_KUNIT(nvmevf_parse_csf);

/**
 * nvmevf_csf_uuid() - a vendor specific state format of Identify CNS 20h
 * @buf: Supported Controller State Formats data
 * @len: valid bytes in @buf
 * @index: 1-based UUID index (CSUUIDI)
 * @uuid: returns the UUID at @index
 *
 * Return: 0, or -ENOENT if the PF lists fewer than @index UUIDs (in NUUID or
 * within @len bytes).
 */
int nvmevf_csf_uuid(const void *buf, size_t len, unsigned int index,
		    uuid_t *uuid)
{
	const u8 *p = buf;
	size_t off;

	if (len < NVME_LM_CSF_HDR_SIZE || !index || index > p[1])
		return -ENOENT;
	off = NVME_LM_CSF_HDR_SIZE + p[0] * NVME_LM_CSF_VER_SIZE +
	      (index - 1) * NVME_LM_CSF_UUID_SIZE;
	if (off + NVME_LM_CSF_UUID_SIZE > len)
		return -ENOENT;
	import_uuid(uuid, p + off);
	return 0;
}
EXPORT_SYMBOL_IF_KUNIT(nvmevf_csf_uuid);

/**
 * nvmevf_nsid_list_parse() - check a Namespace ID list (Identify CNS 10h)
 * @buf: the list: up to 1024 NSIDs, ascending, ended by a 0 entry
 * @len: valid bytes in @buf
 * @start: the NSID the list was requested for (only NSIDs above it listed)
 *
 * Return: the number of NSIDs before the first 0 entry, or -EIO if one is
 * not above @start and the previous entry, or is a broadcast value.
 */
int nvmevf_nsid_list_parse(const void *buf, size_t len, u32 start)
{
	size_t n = min_t(size_t, len, NVME_IDENTIFY_DATA_SIZE) / sizeof(u32);
	u32 prev = start;
	size_t i;

	for (i = 0; i < n; i++) {
		u32 nsid = get_unaligned_le32(buf + i * sizeof(u32));

		if (!nsid)
			break;
		if (nsid <= prev || nsid >= NVME_NSID_ALL - 1)
			return -EIO;
		prev = nsid;
	}
	return i;
}
EXPORT_SYMBOL_IF_KUNIT(nvmevf_nsid_list_parse);

/**
 * nvmevf_ctrl_list_has() - is a controller in a Controller List (CNS 12h)
 * @buf: the list: a 16-bit count, then up to 2047 16-bit controller IDs
 * @len: valid bytes in @buf
 * @cntlid: the controller looked for
 *
 * Return: true if one of the listed IDs (within @len) is @cntlid.
 */
bool nvmevf_ctrl_list_has(const void *buf, size_t len, u16 cntlid)
{
	size_t n, i;

	if (len < sizeof(u16))
		return false;
	n = min_t(size_t, get_unaligned_le16(buf), (len - 2) / sizeof(u16));
	for (i = 0; i < n; i++)
		if (get_unaligned_le16(buf + 2 + i * sizeof(u16)) == cntlid)
			return true;
	return false;
}
EXPORT_SYMBOL_IF_KUNIT(nvmevf_ctrl_list_has);

/**
 * nvmevf_id_ns_parse() - the identity of a namespace, from Identify Namespace
 * @buf: Identify Namespace data (CNS 11h)
 * @len: valid bytes in @buf
 * @nsid: the NSID it was read for
 * @ns: filled: NSID, NSZE (bytes 7:0), NGUID (119:104), EUI64 (127:120),
 *	and of the formatted LBA format (FLBAS byte 26, bits 3:0 and 6:5 for
 *	more than 16 formats; LBAF at byte 128 + 4 * index) the LBA data size
 *	(LBADS) and metadata size, and whether metadata is extended (FLBAS
 *	bit 4)
 *
 * Return: 0, -EINVAL for a short buffer, -EIO if FLBAS names a format
 * beyond NLBAF.
 */
int nvmevf_id_ns_parse(const void *buf, size_t len, u32 nsid,
		       struct nvmevf_compat_ns *ns)
{
	const struct nvme_id_ns *id = buf;
	unsigned int idx;

	if (len < sizeof(*id))
		return -EINVAL;
	idx = nvme_lbaf_index(id->flbas);
	if (idx > id->nlbaf)
		return -EIO;
	memset(ns, 0, sizeof(*ns));
	ns->nsid = cpu_to_le32(nsid);
	ns->lbads = id->lbaf[idx].ds;
	if (id->flbas & NVME_NS_FLBAS_META_EXT)
		ns->flags |= NVMEVF_NS_F_EXT_LBA;
	ns->ms = id->lbaf[idx].ms;
	ns->nsze = id->nsze;
	memcpy(ns->nguid, id->nguid, sizeof(ns->nguid));
	memcpy(ns->eui64, id->eui64, sizeof(ns->eui64));
	return 0;
}
EXPORT_SYMBOL_IF_KUNIT(nvmevf_id_ns_parse);

/**
 * nvmevf_status_to_errno() - the one NVMe status to errno mapping
 * @status: return value of nvme_pci_vf_admin_cmd(): 0, a negative errno,
 *	or a positive NVMe status (CRD/More/DNR bits are ignored)
 *
 * A command the PF cancelled (nvme-pci's -EINTR: a timeout or a reset of
 * the PF) is -ECANCELED: no -EINTR or -EAGAIN reaches userspace without a
 * signal.
 *
 * Return: 0 or a negative errno.
 */
int nvmevf_status_to_errno(int status)
{
	if (status == -EINTR)
		return -ECANCELED;
	if (status <= 0)
		return status;

	switch (status & NVME_SCT_SC_MASK) {
	case NVME_SC_INVALID_OPCODE:
		return -EOPNOTSUPP;
	case NVME_SC_INVALID_FIELD:
	case NVME_SC_INVALID_NS:
	case NVME_SC_PRP_INVALID_OFFSET:
	case NVME_SC_LM_INVALID_CDQ:
		return -EINVAL;
	case NVME_SC_CMD_SEQ_ERROR:
		return -EPROTO;
	case NVME_SC_CMD_INTERRUPTED:
		return -EBUSY;
	case NVME_SC_LM_INVALID_CTRL_ID:
		return -ENXIO;
	case NVME_SC_LM_NOT_ENOUGH_RES:
	case NVME_SC_LM_CDQ_FULL:
		return -ENOSPC;
	case NVME_SC_LM_CTRL_SUSPENDED:
	case NVME_SC_LM_CTRL_NOT_SUSPENDED:
		return -EBUSY;
	case NVME_SC_ABORT_REQ:
	case NVME_SC_HOST_ABORTED_CMD:
		return -ECANCELED;
	default:
		return -EIO;
	}
}
EXPORT_SYMBOL_IF_KUNIT(nvmevf_status_to_errno);

/**
 * nvmevf_status_sent() - did a command reach the controller
 * @status: return value of nvme_pci_vf_admin_cmd()
 *
 * Return: true if the PF completed the command (with any NVMe status) or
 * cancelled it once submitted (-EINTR: timeout, PF reset); false for the
 * export's refusals, which happen before anything is sent.
 */
bool nvmevf_status_sent(int status)
{
	return status > 0 || status == -EINTR;
}
EXPORT_SYMBOL_IF_KUNIT(nvmevf_status_sent);

/**
 * nvmevf_ns_desc_uuid() - the UUID of a Namespace Identification
 *	Descriptor list (Identify CNS 03h)
 * @buf: the list: descriptors of NIDT, NIDL, 2 reserved bytes and NIDL
 *	bytes of identifier, ended by NIDT 0
 * @len: valid bytes in @buf
 * @uuid: returns the type 3h identifier; untouched if there is none
 *
 * Return: 0, -ENOENT if the list has no UUID, -EIO for a descriptor that
 * runs past @len or a UUID descriptor whose NIDL is not 16.
 */
int nvmevf_ns_desc_uuid(const void *buf, size_t len, u8 *uuid)
{
	const u8 *p = buf;
	size_t off = 0;

	len = min_t(size_t, len, NVME_IDENTIFY_DATA_SIZE);
	while (off + sizeof(struct nvme_ns_id_desc) <= len) {
		const struct nvme_ns_id_desc *d = (const void *)(p + off);
		size_t next = off + sizeof(*d) + d->nidl;

		if (!d->nidt)
			break;
		if (next > len)
			return -EIO;
		if (d->nidt == NVME_NIDT_UUID) {
			if (d->nidl != NVME_NIDT_UUID_LEN)
				return -EIO;
			memcpy(uuid, d + 1, NVME_NIDT_UUID_LEN);
			return 0;
		}
		off = next;
	}
	return -ENOENT;
}
EXPORT_SYMBOL_IF_KUNIT(nvmevf_ns_desc_uuid);

/**
 * nvmevf_submit() - send one command to the VF's PF
 * @vf: the VF
 * @c: the command
 * @buf: data, or NULL
 * @len: data length
 * @dw0: returns completion dword 0, may be NULL
 * @dw1: returns completion dword 1, may be NULL
 *
 * Return: 0, a positive NVMe status or a negative errno, as
 * nvme_pci_vf_admin_cmd().
 */
int nvmevf_submit(struct pci_dev *vf, struct nvme_command *c, void *buf,
		  unsigned int len, u32 *dw0, u32 *dw1)
{
	return nvme_pci_vf_admin_cmd(vf, c, buf, len, dw0, dw1);
}

const char * const nvmevf_cmd_kind_names[NVMEVF_CK_NUM] = {
	[NVMEVF_CK_IDENTIFY] = "identify",
	[NVMEVF_CK_SUSPEND] = "suspend",
	[NVMEVF_CK_RESUME] = "resume",
	[NVMEVF_CK_SET] = "set_state",
	[NVMEVF_CK_GET] = "get_state",
	[NVMEVF_CK_TRACK_SEND] = "track_send",
	[NVMEVF_CK_TRACK_RECV] = "track_recv",
	[NVMEVF_CK_OTHER] = "other",
};

static enum nvmevf_cmd_kind nvmevf_cmd_kind(const struct nvme_command *c)
{
	u8 sel = le32_to_cpu(c->common.cdw10) & NVME_LM_SEL_MASK;

	switch (c->common.opcode) {
	case nvme_admin_identify:
		return NVMEVF_CK_IDENTIFY;
	case nvme_admin_lm_migration_send:
		if (sel == NVME_LM_SEND_SEL_SUSPEND)
			return NVMEVF_CK_SUSPEND;
		if (sel == NVME_LM_SEND_SEL_RESUME)
			return NVMEVF_CK_RESUME;
		if (sel == NVME_LM_SEND_SEL_SET_STATE)
			return NVMEVF_CK_SET;
		return NVMEVF_CK_OTHER;
	case nvme_admin_lm_migration_recv:
		return NVMEVF_CK_GET;
	case nvme_admin_lm_track_send:
		return NVMEVF_CK_TRACK_SEND;
	case nvme_admin_lm_track_recv:
		return NVMEVF_CK_TRACK_RECV;
	default:
		return NVMEVF_CK_OTHER;
	}
}

/**
 * nvmevf_account() - count one command in the statistics
 * @st: statistics to update, or NULL
 * @c: the command
 * @status: what nvme_pci_vf_admin_cmd() returned for it
 */
void nvmevf_account(struct nvmevf_cmd_stats *st, const struct nvme_command *c,
		    int status)
{
	if (!st)
		return;
	st->commands++;
	st->by_kind[nvmevf_cmd_kind(c)]++;
	st->last_status = status;
	if (status)
		st->errors++;
}

/**
 * nvmevf_exec() - send one command to the VF's PF and account for it
 * @vf: the VF
 * @st: statistics to update, or NULL
 * @c: the command
 * @buf: data, or NULL
 * @len: data length
 * @dw0: returns completion dword 0, may be NULL
 *
 * Return: 0 or a negative errno, nvmevf_status_to_errno() of the result.
 */
int nvmevf_exec(struct pci_dev *vf, struct nvmevf_cmd_stats *st,
		struct nvme_command *c, void *buf, unsigned int len, u32 *dw0)
{
	int status = nvmevf_submit(vf, c, buf, len, dw0, NULL);

	nvmevf_account(st, c, status);
	return nvmevf_status_to_errno(status);
}

/**
 * nvmevf_lookup_sec_ctrl() - the Secondary Controller entry of a VF
 * @vf: the VF
 * @st: statistics to update, or NULL
 * @entry: returns the CNS 15h entry whose VFN is pci_iov_vf_id() + 1 (SCID,
 *	NVQ, NVI, ...)
 *
 * Walks Identify CNS 15h from CNTID 0, continuing after the highest SCID of
 * a full list.
 *
 * Return: 0, -ENOENT if the PF does not list the VF, or another negative
 * errno.
 */
int nvmevf_lookup_sec_ctrl(struct pci_dev *vf, struct nvmevf_cmd_stats *st,
			   struct nvme_lm_sec_ctrl_entry *entry)
{
	struct nvme_lm_sec_ctrl_list *list __free(kfree) = NULL;
	const struct nvme_lm_sec_ctrl_entry *e;
	struct nvme_command c;
	u16 cntid = 0, last;
	int vfn, ret, i;

	vfn = pci_iov_vf_id(vf);
	if (vfn < 0)
		return vfn;
	list = kmalloc(sizeof(*list), GFP_KERNEL);
	if (!list)
		return -ENOMEM;
	/* at most 64K controllers, 127 per page */
	for (i = 0; i < 517; i++) {
		nvmevf_cmd_identify(&c, NVME_LM_ID_CNS_SEC_CTRL_LIST, cntid);
		ret = nvmevf_exec(vf, st, &c, list, sizeof(*list), NULL);
		if (ret)
			return ret;
		e = nvmevf_sec_ctrl_find(list, sizeof(*list), vfn + 1, &last);
		if (e) {
			*entry = *e;
			return 0;
		}
		if (list->numid < NVME_LM_SEC_CTRL_LIST_MAX ||
		    last < cntid || last == U16_MAX)
			break;
		cntid = last + 1;
	}
	return -ENOENT;
}

/**
 * nvmevf_lookup_scid() - the Secondary Controller ID of a VF
 * @vf: the VF
 * @scid: returns the SCID the PF lists for VFN = pci_iov_vf_id() + 1
 *
 * Return: 0, -ENOENT if the PF does not list the VF, or another negative
 * errno.
 */
int nvmevf_lookup_scid(struct pci_dev *vf, u16 *scid)
{
	struct nvme_lm_sec_ctrl_entry e;
	int ret;

	ret = nvmevf_lookup_sec_ctrl(vf, NULL, &e);
	if (!ret)
		*scid = le16_to_cpu(e.scid);
	return ret;
}
