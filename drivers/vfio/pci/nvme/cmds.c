// SPDX-License-Identifier: GPL-2.0-only
/*
 * nvme-vfio-pci: every structure the PF returns is parsed here, and every
 * result of nvme-pci's VF operations (include/linux/nvme-pci.h, which
 * build the TP4159 commands) is accounted for and turned into an errno.
 */
#include <linux/bitfield.h>
#include <linux/cleanup.h>
#include <linux/errno.h>
#include <linux/kernel.h>
#include <linux/nvme.h>
#include <linux/nvme-pci.h>
#include <linux/pci.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/unaligned.h>
#include <linux/uuid.h>
#include <kunit/visibility.h>

#include "nvme-vfio-pci.h"

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
 * @status: return value of an nvme_pci_vf_*() operation: 0, a negative
 *	errno, or a positive NVMe status (CRD/More/DNR bits are ignored)
 *
 * A command a reset of the PF cancelled (nvme-pci's -EINTR) is -ECANCELED:
 * no -EINTR or -EAGAIN reaches userspace without a signal.  A command that
 * timed out stays -ETIMEDOUT.
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
	case NVME_SC_INVALID_CDQ:
		return -EINVAL;
	case NVME_SC_CMD_SEQ_ERROR:
		return -EPROTO;
	case NVME_SC_CMD_INTERRUPTED:
		return -EBUSY;
	case NVME_SC_CTRL_ID_INVALID:
		return -ENXIO;
	case NVME_SC_NOT_ENOUGH_RESOURCES:
	case NVME_SC_CDQ_FULL:
		return -ENOSPC;
	case NVME_SC_CTRL_SUSPENDED:
	case NVME_SC_CTRL_NOT_SUSPENDED:
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
 * @status: return value of an nvme_pci_vf_*() operation
 *
 * Return: true if the PF completed the command (with any NVMe status),
 * cancelled it once submitted (-EINTR: PF reset) or it timed out
 * (-ETIMEDOUT: aborted, or left to the controller); false for nvme-pci's
 * refusals, which happen before anything is sent.
 */
bool nvmevf_status_sent(int status)
{
	return status > 0 || status == -EINTR || status == -ETIMEDOUT;
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

const char * const nvmevf_cmd_kind_names[NVMEVF_CK_NUM] = {
	[NVMEVF_CK_IDENTIFY] = "identify",
	[NVMEVF_CK_SUSPEND] = "suspend",
	[NVMEVF_CK_RESUME] = "resume",
	[NVMEVF_CK_SET] = "set_state",
	[NVMEVF_CK_GET] = "get_state",
	[NVMEVF_CK_TRACK_SEND] = "track_send",
	[NVMEVF_CK_TRACK_RECV] = "track_recv",
};

/**
 * nvmevf_account() - count one PF operation in the statistics
 * @st: statistics to update, or NULL
 * @kind: what the operation sent
 * @status: what the nvme_pci_vf_*() operation returned
 *
 * Return: @status.
 */
int nvmevf_account(struct nvmevf_cmd_stats *st, enum nvmevf_cmd_kind kind,
		   int status)
{
	if (!st)
		return status;
	st->commands++;
	st->by_kind[kind]++;
	st->last_status = status;
	if (status)
		st->errors++;
	return status;
}

/**
 * nvmevf_pf_done() - account for a PF operation and give its errno
 * @st: statistics to update, or NULL
 * @kind: what the operation sent
 * @status: what the nvme_pci_vf_*() operation returned
 *
 * Return: 0 or a negative errno, nvmevf_status_to_errno() of @status.
 */
int nvmevf_pf_done(struct nvmevf_cmd_stats *st, enum nvmevf_cmd_kind kind,
		   int status)
{
	return nvmevf_status_to_errno(nvmevf_account(st, kind, status));
}
