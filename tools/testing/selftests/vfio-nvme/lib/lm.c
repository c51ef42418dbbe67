// SPDX-License-Identifier: GPL-2.0-only
/*
 * vnl: the TP4159 live migration commands, sent to a PF (the Migration
 * Management Controller) through the nvme driver's admin passthrough ioctl.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include <linux/nvme_ioctl.h>

#include "vnl.h"

int vnl_fail(const char *fmt, ...);

/**
 * vnl_pf_cmd() - one admin command with every dword through the PF
 * @fd: PF, from vnl_pf_open()
 * @opc: opcode
 * @nsid: namespace ID
 * @cdw: CDW10..CDW15
 * @data: data buffer or NULL
 * @len: its length
 * @res: returns completion DW0 (low half) and DW1 (high half), may be NULL
 *
 * Return: 0, positive NVMe status, or negative errno.
 */
int vnl_pf_cmd64(int fd, uint8_t opc, uint32_t nsid, const uint32_t cdw[6],
		 void *data, uint32_t len, uint64_t *res)
{
	struct nvme_passthru_cmd64 cmd = {
		.opcode = opc,
		.nsid = nsid,
		.addr = (uintptr_t)data,
		.data_len = len,
		.cdw10 = cdw[0],
		.cdw11 = cdw[1],
		.cdw12 = cdw[2],
		.cdw13 = cdw[3],
		.cdw14 = cdw[4],
		.cdw15 = cdw[5],
		.timeout_ms = 60000,
	};
	int ret = ioctl(fd, NVME_IOCTL_ADMIN64_CMD, &cmd);

	if (ret < 0)
		return vnl_fail("admin opcode %#x", opc);
	if (res)
		*res = cmd.result;
	return ret;
}

/**
 * vnl_pf_cmd() - vnl_pf_cmd64() returning DW0 only
 * @fd: PF
 * @opc: opcode
 * @nsid: namespace ID
 * @cdw: CDW10..CDW15
 * @data: data buffer or NULL
 * @len: its length
 * @dw0: returns completion DW0, may be NULL
 *
 * Return: as vnl_pf_cmd64().
 */
int vnl_pf_cmd(int fd, uint8_t opc, uint32_t nsid, const uint32_t cdw[6],
	       void *data, uint32_t len, uint32_t *dw0)
{
	uint64_t res = 0;
	int ret = vnl_pf_cmd64(fd, opc, nsid, cdw, data, len, &res);

	if (dw0)
		*dw0 = (uint32_t)res;
	return ret;
}

int vnl_lm_suspend(int fd, uint16_t cntlid, int stype, bool dudmq)
{
	uint32_t cdw[6] = { 0, (dudmq ? 1u << 31 : 0) | (uint32_t)stype << 16 |
			       cntlid };

	return vnl_pf_cmd(fd, VNL_OPC_MIG_SEND, 0, cdw, NULL, 0, NULL);
}

int vnl_lm_resume(int fd, uint16_t cntlid)
{
	uint32_t cdw[6] = { 1, cntlid };

	return vnl_pf_cmd(fd, VNL_OPC_MIG_SEND, 0, cdw, NULL, 0, NULL);
}

/**
 * vnl_lm_get_state() - Get Controller State, one chunk
 * @fd: PF
 * @cntlid: controller
 * @csvi: NVMe state version index, 1-based, 0 for none
 * @csuuidi: vendor state UUID index, 1-based, 0 for none
 * @offset: byte offset
 * @buf: output
 * @len: bytes, a multiple of 4 (NUMD = len / 4 - 1)
 * @dw0: returns DW0 (CSUP in bit 0), may be NULL
 *
 * Return: as vnl_pf_cmd().
 */
int vnl_lm_get_state(int fd, uint16_t cntlid, uint8_t csvi, uint8_t csuuidi,
		     uint64_t offset, void *buf, uint32_t len, uint32_t *dw0)
{
	uint32_t cdw[6] = { (uint32_t)csvi << 16,
			    (uint32_t)csuuidi << 16 | cntlid,
			    (uint32_t)offset, (uint32_t)(offset >> 32), 0,
			    len / 4 - 1 };

	return vnl_pf_cmd(fd, VNL_OPC_MIG_RECV, 0, cdw, buf, len, dw0);
}

/**
 * vnl_lm_get_state_all() - read the whole Controller State in chunks
 * @fd: PF
 * @cntlid: controller
 * @csvi: NVMe state version index
 * @csuuidi: vendor state UUID index
 * @chunk: bytes per command (multiple of 4, at least 48)
 * @out: returns a malloc'd buffer with the state
 * @outlen: returns its length
 * @csup: returns whether every chunk had CSUP set, may be NULL
 *
 * Return: as vnl_pf_cmd(); -EPROTO for a header that does not add up.
 */
int vnl_lm_get_state_all(int fd, uint16_t cntlid, uint8_t csvi,
			 uint8_t csuuidi, uint32_t chunk, uint8_t **out,
			 size_t *outlen, bool *csup)
{
	uint8_t hdr[48], *buf;
	uint64_t nvmecss, vss, total, off;
	uint32_t dw0, n;
	int ret;

	if (csup)
		*csup = true;
	ret = vnl_lm_get_state(fd, cntlid, csvi, csuuidi, 0, hdr, sizeof(hdr),
			       &dw0);
	if (ret)
		return ret;
	memcpy(&nvmecss, hdr + 16, 8);
	memcpy(&vss, hdr + 32, 8);
	total = 48 + 4 * (nvmecss + vss);
	if (nvmecss > (1u << 24) || vss > (1u << 24)) {
		errno = EPROTO;
		return vnl_fail("state header sizes %llu/%llu",
				(unsigned long long)nvmecss,
				(unsigned long long)vss);
	}
	buf = malloc(total);
	if (!buf)
		return -ENOMEM;
	for (off = 0; off < total; off += n) {
		n = total - off < chunk ? total - off : chunk;
		ret = vnl_lm_get_state(fd, cntlid, csvi, csuuidi, off, buf + off,
				       n, &dw0);
		if (ret) {
			free(buf);
			return ret;
		}
		if (csup && !(dw0 & 1))
			*csup = false;
	}
	*out = buf;
	*outlen = total;
	return 0;
}

/**
 * vnl_lm_set_state() - Set Controller State, one chunk
 * @fd: PF
 * @cntlid: controller
 * @csvi: NVMe state version index
 * @csuuidi: vendor state UUID index
 * @seqind: VNL_SEQ_*
 * @offset: byte offset
 * @buf: data
 * @len: bytes, a multiple of 4 (NUMD = len / 4, not 0's based)
 *
 * Return: as vnl_pf_cmd().
 */
int vnl_lm_set_state(int fd, uint16_t cntlid, uint8_t csvi, uint8_t csuuidi,
		     int seqind, uint64_t offset, const void *buf, uint32_t len)
{
	uint32_t cdw[6] = { (uint32_t)seqind << 16 | 2,
			    (uint32_t)csuuidi << 24 | (uint32_t)csvi << 16 |
			    cntlid, (uint32_t)offset, (uint32_t)(offset >> 32),
			    0, len / 4 };

	return vnl_pf_cmd(fd, VNL_OPC_MIG_SEND, 0, cdw, (void *)buf, len, NULL);
}

/**
 * vnl_lm_set_state_all() - Set Controller State in chunks (first .. last)
 * @fd: PF
 * @cntlid: controller
 * @csvi: NVMe state version index
 * @csuuidi: vendor state UUID index
 * @chunk: bytes per command, a multiple of 4
 * @buf: the whole state
 * @len: its length
 *
 * Return: as vnl_pf_cmd().
 */
int vnl_lm_set_state_all(int fd, uint16_t cntlid, uint8_t csvi,
			 uint8_t csuuidi, uint32_t chunk, const uint8_t *buf,
			 size_t len)
{
	size_t off;
	uint32_t n;
	int ret, seq;

	if (len <= chunk)
		return vnl_lm_set_state(fd, cntlid, csvi, csuuidi, VNL_SEQ_ONLY,
					0, buf, len);
	for (off = 0; off < len; off += n) {
		n = len - off < chunk ? len - off : chunk;
		seq = !off ? VNL_SEQ_FIRST :
		      off + n == len ? VNL_SEQ_LAST : VNL_SEQ_MIDDLE;
		ret = vnl_lm_set_state(fd, cntlid, csvi, csuuidi, seq, off,
				       buf + off, n);
		if (ret)
			return ret;
	}
	return 0;
}

/**
 * vnl_lm_track_mem() - Track Send, Track Memory Changes
 * @fd: PF
 * @cntlid: controller
 * @start: start (with @ranges) or stop
 * @rmrtg: granularity code, 2^n * 4 KiB
 * @ranges: the ranges, byte addresses and lengths
 * @n: number of ranges
 * @dw0: returns DW0 (MRTG on Not Enough Resources), may be NULL
 * @dw1: returns DW1 (NMRTD on Not Enough Resources), may be NULL
 *
 * Return: as vnl_pf_cmd().
 */
int vnl_lm_track_mem(int fd, uint16_t cntlid, bool start, uint8_t rmrtg,
		     const struct vnl_range *ranges, uint32_t n, uint32_t *dw0,
		     uint32_t *dw1)
{
	uint32_t cdw[6] = { (start ? 1u << 16 : 0) | 1, cntlid };
	size_t len = 8 + 12 * n;
	uint64_t res = 0;
	uint8_t *buf;
	uint32_t i, l;
	int ret;

	if (!start) {
		ret = vnl_pf_cmd64(fd, VNL_OPC_TRACK_SEND, 0, cdw, NULL, 0, &res);
		goto out;
	}
	len = (len + 3) & ~(size_t)3;
	buf = calloc(1, len);
	if (!buf)
		return -ENOMEM;
	buf[3] = rmrtg;
	memcpy(buf + 4, &n, 4);
	for (i = 0; i < n; i++) {
		l = ranges[i].len >> (12 + rmrtg);
		memcpy(buf + 8 + 12 * i, &ranges[i].addr, 8);
		memcpy(buf + 16 + 12 * i, &l, 4);
	}
	ret = vnl_pf_cmd64(fd, VNL_OPC_TRACK_SEND, 0, cdw, buf, len, &res);
	free(buf);
out:
	if (dw0)
		*dw0 = (uint32_t)res;
	if (dw1)
		*dw1 = (uint32_t)(res >> 32);
	return ret;
}

/**
 * vnl_lm_track_recv() - Track Receive, Tracked Memory Changes (read & clear)
 * @fd: PF
 * @cntlid: controller
 * @buf: output, at least 16 bytes
 * @len: bytes, a multiple of 4 (NUMDL = len / 4 - 1)
 *
 * Return: as vnl_pf_cmd().
 */
int vnl_lm_track_recv(int fd, uint16_t cntlid, void *buf, uint32_t len)
{
	uint32_t cdw[6] = { 0, cntlid, len / 4 - 1 };

	return vnl_pf_cmd(fd, VNL_OPC_TRACK_RECV, 0, cdw, buf, len, NULL);
}
