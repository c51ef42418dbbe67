// SPDX-License-Identifier: GPL-2.0-only
/*
 * KUnit tests for the nvme-vfio-pci command encoders and parsers, checked
 * against the TP4159 dword tables (see Documentation/commands.rst).
 */
#include <kunit/test.h>
#include <linux/nvme.h>
#include <linux/nvme-lm.h>
#include <linux/unaligned.h>

#include "nvme-vfio-pci.h"

#define DW(c, n)	le32_to_cpu((c)->common.cdw##n)

static void expect_no_data_ptr(struct kunit *test, struct nvme_command *c)
{
	KUNIT_EXPECT_EQ(test, c->common.flags, 0);
	KUNIT_EXPECT_EQ(test, le32_to_cpu(c->common.nsid), 0);
	KUNIT_EXPECT_EQ(test, le64_to_cpu(c->common.dptr.prp1), 0);
}

static void suspend_test(struct kunit *test)
{
	struct nvme_command c;

	memset(&c, 0xff, sizeof(c));
	nvmevf_cmd_suspend(&c, 0x1234, NVME_LM_STYPE_SUSPEND, true);
	KUNIT_EXPECT_EQ(test, c.common.opcode, 0x41);
	expect_no_data_ptr(test, &c);
	KUNIT_EXPECT_EQ(test, DW(&c, 10), 0x0);		/* SEL 0 */
	/* DUDMQ bit 31, STYPE 23:16, CNTLID 15:0 */
	KUNIT_EXPECT_EQ(test, DW(&c, 11), 0x80011234);
	KUNIT_EXPECT_EQ(test, DW(&c, 12), 0);
	KUNIT_EXPECT_EQ(test, DW(&c, 15), 0);

	nvmevf_cmd_suspend(&c, 2, NVME_LM_STYPE_NOTIFY, false);
	KUNIT_EXPECT_EQ(test, DW(&c, 11), 0x00000002);
	nvmevf_cmd_suspend(&c, 0xffff, NVME_LM_STYPE_SUSPEND, false);
	KUNIT_EXPECT_EQ(test, DW(&c, 11), 0x0001ffff);
}

static void resume_test(struct kunit *test)
{
	struct nvme_command c;

	memset(&c, 0xff, sizeof(c));
	nvmevf_cmd_resume(&c, 0xabcd);
	KUNIT_EXPECT_EQ(test, c.common.opcode, 0x41);
	expect_no_data_ptr(test, &c);
	KUNIT_EXPECT_EQ(test, DW(&c, 10), 0x1);		/* SEL 1 */
	KUNIT_EXPECT_EQ(test, DW(&c, 11), 0xabcd);
}

static void set_state_test(struct kunit *test)
{
	struct nvme_command c;

	memset(&c, 0xff, sizeof(c));
	nvmevf_cmd_set_state(&c, 7, 1, 2, NVME_LM_SEQIND_FIRST,
			     0x123456788ULL, 100);
	KUNIT_EXPECT_EQ(test, c.common.opcode, 0x41);
	expect_no_data_ptr(test, &c);
	/* SEL 2, SEQIND in MOS 1:0 = CDW10 17:16 */
	KUNIT_EXPECT_EQ(test, DW(&c, 10), 0x00010002);
	/* CSUUIDI 31:24, CSVI 23:16, CNTLID 15:0 */
	KUNIT_EXPECT_EQ(test, DW(&c, 11), 0x02010007);
	KUNIT_EXPECT_EQ(test, DW(&c, 12), 0x23456788);
	KUNIT_EXPECT_EQ(test, DW(&c, 13), 0x1);
	KUNIT_EXPECT_EQ(test, DW(&c, 14), 0);
	/* NUMD is a count, not 0's based */
	KUNIT_EXPECT_EQ(test, DW(&c, 15), 100);

	nvmevf_cmd_set_state(&c, 7, 1, 0, NVME_LM_SEQIND_MIDDLE, 0, 1);
	KUNIT_EXPECT_EQ(test, DW(&c, 10), 0x00000002);
	KUNIT_EXPECT_EQ(test, DW(&c, 11), 0x00010007);
	KUNIT_EXPECT_EQ(test, DW(&c, 15), 1);
	nvmevf_cmd_set_state(&c, 7, 0, 1, NVME_LM_SEQIND_LAST, 4096, 0);
	KUNIT_EXPECT_EQ(test, DW(&c, 10), 0x00020002);
	KUNIT_EXPECT_EQ(test, DW(&c, 11), 0x01000007);
	KUNIT_EXPECT_EQ(test, DW(&c, 12), 4096);
	KUNIT_EXPECT_EQ(test, DW(&c, 15), 0);
	nvmevf_cmd_set_state(&c, 7, 1, 1, NVME_LM_SEQIND_ONLY, 0, 12);
	KUNIT_EXPECT_EQ(test, DW(&c, 10), 0x00030002);
}

static void get_state_test(struct kunit *test)
{
	struct nvme_command c;

	memset(&c, 0xff, sizeof(c));
	nvmevf_cmd_get_state(&c, 0x33, 1, 2, 0x5a, 0x200000030ULL, 12);
	KUNIT_EXPECT_EQ(test, c.common.opcode, 0x42);
	expect_no_data_ptr(test, &c);
	/* SEL 0, CSVI (a 1-based index) in MOS 7:0 = CDW10 23:16 */
	KUNIT_EXPECT_EQ(test, DW(&c, 10), 0x00010000);
	/* CSUIDXP 31:24, CSUUIDI 23:16, CNTLID 15:0 */
	KUNIT_EXPECT_EQ(test, DW(&c, 11), 0x5a020033);
	KUNIT_EXPECT_EQ(test, DW(&c, 12), 0x30);
	KUNIT_EXPECT_EQ(test, DW(&c, 13), 0x2);
	KUNIT_EXPECT_EQ(test, DW(&c, 14), 0);
	/* NUMD is 0's based: 12 dwords (the 48-byte header) = 11 */
	KUNIT_EXPECT_EQ(test, DW(&c, 15), 11);

	nvmevf_cmd_get_state(&c, 1, 0, 0, 0, 0, 1);
	KUNIT_EXPECT_EQ(test, DW(&c, 10), 0);
	KUNIT_EXPECT_EQ(test, DW(&c, 11), 1);
	KUNIT_EXPECT_EQ(test, DW(&c, 15), 0);
}

static void identify_test(struct kunit *test)
{
	struct nvme_command c;

	memset(&c, 0xff, sizeof(c));
	nvmevf_cmd_identify(&c, NVME_LM_ID_CNS_SEC_CTRL_LIST, 5);
	KUNIT_EXPECT_EQ(test, c.common.opcode, 0x06);
	expect_no_data_ptr(test, &c);
	/* CNTID 31:16, CNS 7:0 */
	KUNIT_EXPECT_EQ(test, DW(&c, 10), 0x00050015);
	KUNIT_EXPECT_EQ(test, DW(&c, 11), 0);
	nvmevf_cmd_identify(&c, NVME_LM_ID_CNS_CTRL_STATE_FMTS, 0);
	KUNIT_EXPECT_EQ(test, DW(&c, 10), 0x20);
	nvmevf_cmd_identify(&c, NVME_LM_ID_CNS_PRIMARY_CTRL_CAP, 0);
	KUNIT_EXPECT_EQ(test, DW(&c, 10), 0x14);
}

static void identify_ns_test(struct kunit *test)
{
	struct nvme_command c;

	memset(&c, 0xff, sizeof(c));
	nvmevf_cmd_identify_ns(&c, NVME_ID_CNS_CTRL_NS_LIST, 0x12345678, 3);
	KUNIT_EXPECT_EQ(test, c.common.opcode, 0x06);
	KUNIT_EXPECT_EQ(test, c.common.flags, 0);
	KUNIT_EXPECT_EQ(test, le64_to_cpu(c.common.dptr.prp1), 0);
	/* NSID in CDW1; CNTID 31:16, CNS 7:0; CSI 0 */
	KUNIT_EXPECT_EQ(test, le32_to_cpu(c.common.nsid), 0x12345678);
	KUNIT_EXPECT_EQ(test, DW(&c, 10), 0x00030012);
	KUNIT_EXPECT_EQ(test, DW(&c, 11), 0);
	nvmevf_cmd_identify_ns(&c, NVME_ID_CNS_NS_PRESENT_LIST, 0, 0);
	KUNIT_EXPECT_EQ(test, le32_to_cpu(c.common.nsid), 0);
	KUNIT_EXPECT_EQ(test, DW(&c, 10), 0x10);
	nvmevf_cmd_identify_ns(&c, NVME_ID_CNS_NS_PRESENT, 7, 0);
	KUNIT_EXPECT_EQ(test, le32_to_cpu(c.common.nsid), 7);
	KUNIT_EXPECT_EQ(test, DW(&c, 10), 0x11);
}

static void track_send_test(struct kunit *test)
{
	struct nvme_command c;

	memset(&c, 0xff, sizeof(c));
	nvmevf_cmd_track_mem(&c, 9, true);
	KUNIT_EXPECT_EQ(test, c.common.opcode, 0x3d);
	expect_no_data_ptr(test, &c);
	/* SEL 1 Track Memory Changes, TACT = MOS bit 0 = CDW10 bit 16 */
	KUNIT_EXPECT_EQ(test, DW(&c, 10), 0x00010001);
	KUNIT_EXPECT_EQ(test, DW(&c, 11), 9);
	nvmevf_cmd_track_mem(&c, 9, false);
	KUNIT_EXPECT_EQ(test, DW(&c, 10), 0x00000001);
}

static void track_mem_build_test(struct kunit *test)
{
	struct nvmevf_range r[2] = {
		{ .start = 0x100000, .len = 0x200000 },
		{ .start = 0x7fff00000ULL, .len = 0x100000 },
	};
	u8 buf[8 + 2 * 12 + 4];
	struct nvme_lm_track_mem *t = (void *)buf;

	memset(buf, 0xee, sizeof(buf));
	/* 1 MiB granules: code 8 */
	KUNIT_ASSERT_EQ(test, nvmevf_track_mem_build(buf, sizeof(buf), 8, r, 2),
			(ssize_t)(8 + 2 * 12));
	KUNIT_EXPECT_EQ(test, buf[0], 0);			/* VER */
	KUNIT_EXPECT_EQ(test, buf[1], 0);
	KUNIT_EXPECT_EQ(test, buf[2], 0);
	KUNIT_EXPECT_EQ(test, buf[3], 8);			/* RMRTG */
	KUNIT_EXPECT_EQ(test, le32_to_cpu(t->rnmrtd), 2);	/* a count */
	KUNIT_EXPECT_EQ(test, le64_to_cpu(t->desc[0].saddr), 0x100000);
	KUNIT_EXPECT_EQ(test, le32_to_cpu(t->desc[0].len), 2);	/* granules */
	KUNIT_EXPECT_EQ(test, le64_to_cpu(t->desc[1].saddr), 0x7fff00000ULL);
	KUNIT_EXPECT_EQ(test, le32_to_cpu(t->desc[1].len), 1);
	KUNIT_EXPECT_EQ(test, buf[8 + 24], 0xee);		/* untouched */

	/* 4 KiB granules */
	KUNIT_ASSERT_EQ(test, nvmevf_track_mem_build(buf, sizeof(buf), 0, r, 1),
			(ssize_t)(8 + 12));
	KUNIT_EXPECT_EQ(test, le32_to_cpu(t->desc[0].len), 0x200);

	KUNIT_EXPECT_EQ(test, nvmevf_track_mem_build(buf, 8 + 12, 8, r, 2),
			(ssize_t)-ENOSPC);
	r[0].start = 0x101000;	/* not 1 MiB aligned */
	KUNIT_EXPECT_EQ(test, nvmevf_track_mem_build(buf, sizeof(buf), 8, r, 2),
			(ssize_t)-EINVAL);
	r[0].start = 0;
	r[0].len = 0;
	KUNIT_EXPECT_EQ(test, nvmevf_track_mem_build(buf, sizeof(buf), 0, r, 1),
			(ssize_t)-EINVAL);
	/* 2^32 granules do not fit LEN */
	r[0].len = 1ULL << 44;
	KUNIT_EXPECT_EQ(test, nvmevf_track_mem_build(buf, sizeof(buf), 0, r, 1),
			(ssize_t)-EINVAL);
	KUNIT_EXPECT_EQ(test, nvmevf_track_mem_build(buf, sizeof(buf), 0, r, 0),
			(ssize_t)-EINVAL);
}

static void track_recv_test(struct kunit *test)
{
	struct nvme_command c;

	memset(&c, 0xff, sizeof(c));
	nvmevf_cmd_track_recv(&c, 3, 1024);
	KUNIT_EXPECT_EQ(test, c.common.opcode, 0x3e);
	expect_no_data_ptr(test, &c);
	KUNIT_EXPECT_EQ(test, DW(&c, 10), 0);			/* SEL 0 */
	KUNIT_EXPECT_EQ(test, DW(&c, 11), 3);
	KUNIT_EXPECT_EQ(test, DW(&c, 12), 1023);		/* NUMDL 0's based */
}

static void chunk_len_test(struct kunit *test)
{
	u64 total = 10000, done = 0;
	u32 n, chunks = 0;

	/* a 10000-byte state through a 4 KiB MDTS: 4096 + 4096 + 1808 */
	while ((n = nvmevf_chunk_len(total, done, 4096))) {
		KUNIT_EXPECT_LE(test, n, 4096);
		KUNIT_EXPECT_EQ(test, n % 4, 0);
		done += n;
		chunks++;
	}
	KUNIT_EXPECT_EQ(test, done, total);
	KUNIT_EXPECT_EQ(test, chunks, 3);
	KUNIT_EXPECT_EQ(test, nvmevf_chunk_len(10000, 8192, 4096), 1808);
	/* exactly at the boundary */
	KUNIT_EXPECT_EQ(test, nvmevf_chunk_len(8192, 4096, 4096), 4096);
	KUNIT_EXPECT_EQ(test, nvmevf_chunk_len(8192, 8192, 4096), 0);
	/* a limit that is not a dword multiple is rounded down */
	KUNIT_EXPECT_EQ(test, nvmevf_chunk_len(10000, 0, 4095), 4092);
	KUNIT_EXPECT_EQ(test, nvmevf_chunk_len(10000, 0, 3), 0);
	KUNIT_EXPECT_EQ(test, nvmevf_chunk_len(10002, 0, 4096), 0);
	KUNIT_EXPECT_EQ(test, nvmevf_chunk_len(10000, 2, 4096), 0);
	KUNIT_EXPECT_EQ(test, nvmevf_chunk_len(1ULL << 40, 0, 1 << 20), 1 << 20);
}

static struct nvme_lm_sec_ctrl_list *sec_list_alloc(struct kunit *test)
{
	struct nvme_lm_sec_ctrl_list *l;

	l = kunit_kzalloc(test, sizeof(*l), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, l);
	return l;
}

static void sec_list_add(struct nvme_lm_sec_ctrl_list *l, u16 scid, u16 vfn)
{
	struct nvme_lm_sec_ctrl_entry *e = &l->entries[l->numid++];

	e->scid = cpu_to_le16(scid);
	e->pcid = cpu_to_le16(0);
	e->vfn = cpu_to_le16(vfn);
}

/* the SCID of @vfn's entry, or -ENOENT */
static int t_scid(const void *l, size_t len, u16 vfn, u16 *last)
{
	const struct nvme_lm_sec_ctrl_entry *e;

	e = nvmevf_sec_ctrl_find(l, len, vfn, last);
	return e ? le16_to_cpu(e->scid) : -ENOENT;
}

static void sec_ctrl_find_scid_test(struct kunit *test)
{
	struct nvme_lm_sec_ctrl_list *l = sec_list_alloc(test);
	u16 last = 0;

	/* SCIDs are not VFNs: make them differ */
	sec_list_add(l, 0x11, 1);
	sec_list_add(l, 0x2a, 3);
	sec_list_add(l, 0x12, 2);

	KUNIT_EXPECT_EQ(test, t_scid(l, sizeof(*l), 2, &last), 0x12);
	KUNIT_EXPECT_EQ(test, t_scid(l, sizeof(*l), 3, NULL), 0x2a);
	KUNIT_EXPECT_EQ(test, t_scid(l, sizeof(*l), 4, &last), -ENOENT);
	KUNIT_EXPECT_EQ(test, last, 0x2a);
	KUNIT_EXPECT_EQ(test, t_scid(l, sizeof(*l), 0, NULL), -ENOENT);
}

static void sec_ctrl_find_scid_truncated_test(struct kunit *test)
{
	struct nvme_lm_sec_ctrl_list *l = sec_list_alloc(test);
	size_t hdr = offsetof(struct nvme_lm_sec_ctrl_list, entries);

	sec_list_add(l, 5, 1);
	sec_list_add(l, 6, 2);
	/* the device claims more entries than the buffer holds */
	l->numid = 255;

	/* only the first entry is inside the buffer */
	KUNIT_EXPECT_EQ(test, t_scid(l, hdr + 32, 1, NULL), 5);
	KUNIT_EXPECT_EQ(test, t_scid(l, hdr + 63, 2, NULL), -ENOENT);
	KUNIT_EXPECT_EQ(test, t_scid(l, hdr + 64, 2, NULL), 6);
	KUNIT_EXPECT_EQ(test, t_scid(l, hdr - 1, 1, NULL), -ENOENT);
	/* a full-size buffer with NUMID 255 stops at 127 entries */
	KUNIT_EXPECT_EQ(test, t_scid(l, sizeof(*l), 0xffff, NULL), -ENOENT);
}

static const uuid_t csf_uuid_a = UUID_INIT(0x01234567, 0x89ab, 0xcdef, 0x01,
					   0x23, 0x45, 0x67, 0x89, 0xab, 0xcd,
					   0xef);
static const uuid_t csf_uuid_b = UUID_INIT(0xfedcba98, 0x7654, 0x3210, 0xfe,
					   0xdc, 0xba, 0x98, 0x76, 0x54, 0x32,
					   0x10);

static void parse_csf_test(struct kunit *test)
{
	u8 buf[2 + 2 * 2 + 2 * 16];
	u8 csvi = 0xff, csuuidi = 0xff;

	/* NV 2: versions 5 and 0; NUUID 2: a, b */
	buf[0] = 2;
	buf[1] = 2;
	put_unaligned_le16(5, buf + 2);
	put_unaligned_le16(0, buf + 4);
	memcpy(buf + 6, &csf_uuid_a, 16);
	memcpy(buf + 22, &csf_uuid_b, 16);

	/* indexes are 1-based: version 0 is index 2, UUID b index 2 */
	KUNIT_EXPECT_EQ(test, nvmevf_parse_csf(buf, sizeof(buf), 0, &csf_uuid_b,
					       &csvi, &csuuidi), 0);
	KUNIT_EXPECT_EQ(test, csvi, 2);
	KUNIT_EXPECT_EQ(test, csuuidi, 2);
	KUNIT_EXPECT_EQ(test, nvmevf_parse_csf(buf, sizeof(buf), 5, &csf_uuid_a,
					       &csvi, &csuuidi), 0);
	KUNIT_EXPECT_EQ(test, csvi, 1);
	KUNIT_EXPECT_EQ(test, csuuidi, 1);
	/* not offered: index 0 */
	KUNIT_EXPECT_EQ(test, nvmevf_parse_csf(buf, sizeof(buf), 1, NULL,
					       &csvi, &csuuidi), 0);
	KUNIT_EXPECT_EQ(test, csvi, 0);
	KUNIT_EXPECT_EQ(test, csuuidi, 0);

	/* truncated: UUID b lies past the end */
	KUNIT_EXPECT_EQ(test, nvmevf_parse_csf(buf, sizeof(buf) - 1, 0,
					       &csf_uuid_b, &csvi, &csuuidi), 0);
	KUNIT_EXPECT_EQ(test, csvi, 2);
	KUNIT_EXPECT_EQ(test, csuuidi, 0);
	/* counts far larger than the buffer */
	buf[0] = 255;
	buf[1] = 255;
	KUNIT_EXPECT_EQ(test, nvmevf_parse_csf(buf, sizeof(buf), 0, &csf_uuid_a,
					       &csvi, &csuuidi), 0);
	KUNIT_EXPECT_EQ(test, csvi, 2);
	KUNIT_EXPECT_EQ(test, csuuidi, 0);
	KUNIT_EXPECT_EQ(test, nvmevf_parse_csf(buf, 1, 0, NULL, &csvi,
					       &csuuidi), -EINVAL);
}

static void sec_ctrl_find_test(struct kunit *test)
{
	struct nvme_lm_sec_ctrl_list *l = sec_list_alloc(test);
	const struct nvme_lm_sec_ctrl_entry *e;

	sec_list_add(l, 0x11, 1);
	sec_list_add(l, 0x12, 2);
	l->entries[1].nvq = cpu_to_le16(4);
	l->entries[1].nvi = cpu_to_le16(3);

	e = nvmevf_sec_ctrl_find(l, sizeof(*l), 2, NULL);
	KUNIT_ASSERT_NOT_NULL(test, e);
	KUNIT_EXPECT_EQ(test, le16_to_cpu(e->scid), 0x12);
	KUNIT_EXPECT_EQ(test, le16_to_cpu(e->nvq), 4);
	KUNIT_EXPECT_EQ(test, le16_to_cpu(e->nvi), 3);
	KUNIT_EXPECT_NULL(test, nvmevf_sec_ctrl_find(l, sizeof(*l), 3, NULL));
	KUNIT_EXPECT_NULL(test, nvmevf_sec_ctrl_find(l, sizeof(*l), 0, NULL));
	KUNIT_EXPECT_NULL(test, nvmevf_sec_ctrl_find(l, 31, 1, NULL));
}

static void csf_uuid_test(struct kunit *test)
{
	u8 buf[2 + 2 * 2 + 2 * 16];
	uuid_t u;

	buf[0] = 2;
	buf[1] = 2;
	put_unaligned_le16(5, buf + 2);
	put_unaligned_le16(0, buf + 4);
	memcpy(buf + 6, &csf_uuid_a, 16);
	memcpy(buf + 22, &csf_uuid_b, 16);

	KUNIT_EXPECT_EQ(test, nvmevf_csf_uuid(buf, sizeof(buf), 1, &u), 0);
	KUNIT_EXPECT_TRUE(test, uuid_equal(&u, &csf_uuid_a));
	KUNIT_EXPECT_EQ(test, nvmevf_csf_uuid(buf, sizeof(buf), 2, &u), 0);
	KUNIT_EXPECT_TRUE(test, uuid_equal(&u, &csf_uuid_b));
	/* 1-based; beyond NUUID; beyond the buffer */
	KUNIT_EXPECT_EQ(test, nvmevf_csf_uuid(buf, sizeof(buf), 0, &u), -ENOENT);
	KUNIT_EXPECT_EQ(test, nvmevf_csf_uuid(buf, sizeof(buf), 3, &u), -ENOENT);
	KUNIT_EXPECT_EQ(test, nvmevf_csf_uuid(buf, sizeof(buf) - 1, 2, &u),
			-ENOENT);
	/* no vendor format at all */
	buf[1] = 0;
	KUNIT_EXPECT_EQ(test, nvmevf_csf_uuid(buf, sizeof(buf), 1, &u), -ENOENT);
}

static void ns_lists_test(struct kunit *test)
{
	u8 *buf = kunit_kzalloc(test, NVME_IDENTIFY_DATA_SIZE, GFP_KERNEL);
	unsigned int i;

	KUNIT_ASSERT_NOT_NULL(test, buf);

	/* CNS 10h: NSIDs above the start, ascending, 0-terminated */
	put_unaligned_le32(3, buf);
	put_unaligned_le32(9, buf + 4);
	KUNIT_EXPECT_EQ(test, nvmevf_nsid_list_parse(buf, NVME_IDENTIFY_DATA_SIZE,
						     0), 2);
	KUNIT_EXPECT_EQ(test, nvmevf_nsid_list_parse(buf, NVME_IDENTIFY_DATA_SIZE,
						     3), -EIO);
	put_unaligned_le32(3, buf + 4);
	KUNIT_EXPECT_EQ(test, nvmevf_nsid_list_parse(buf, NVME_IDENTIFY_DATA_SIZE,
						     0), -EIO);
	put_unaligned_le32(NVME_NSID_ALL, buf + 4);
	KUNIT_EXPECT_EQ(test, nvmevf_nsid_list_parse(buf, NVME_IDENTIFY_DATA_SIZE,
						     0), -EIO);
	for (i = 0; i < NVME_IDENTIFY_DATA_SIZE / 4; i++)
		put_unaligned_le32(i + 1, buf + 4 * i);
	KUNIT_EXPECT_EQ(test, nvmevf_nsid_list_parse(buf, NVME_IDENTIFY_DATA_SIZE,
						     0), 1024);
	KUNIT_EXPECT_EQ(test, nvmevf_nsid_list_parse(buf, 8, 0), 2);

	/* CNS 12h: count, then controller IDs */
	memset(buf, 0, NVME_IDENTIFY_DATA_SIZE);
	put_unaligned_le16(2, buf);
	put_unaligned_le16(1, buf + 2);
	put_unaligned_le16(0x42, buf + 4);
	put_unaligned_le16(0x43, buf + 6);	/* beyond the count */
	KUNIT_EXPECT_TRUE(test, nvmevf_ctrl_list_has(buf, 4096, 0x42));
	KUNIT_EXPECT_FALSE(test, nvmevf_ctrl_list_has(buf, 4096, 0x43));
	KUNIT_EXPECT_FALSE(test, nvmevf_ctrl_list_has(buf, 5, 0x42));
	KUNIT_EXPECT_FALSE(test, nvmevf_ctrl_list_has(buf, 1, 0x42));
}

static void id_ns_parse_test(struct kunit *test)
{
	struct nvme_id_ns *id = kunit_kzalloc(test, sizeof(*id), GFP_KERNEL);
	struct nvmevf_compat_ns ns;
	u8 *raw = (u8 *)id;

	KUNIT_ASSERT_NOT_NULL(test, id);
	/* byte offsets of the identity fields */
	put_unaligned_le64(0x1000, raw + 0);		/* NSZE */
	raw[25] = 17;					/* NLBAF: 18 formats */
	raw[26] = 0x10 | 0x20 | 0x1;			/* FLBAS: ext, idx 17 */
	memset(raw + 104, 0xab, 16);			/* NGUID */
	memset(raw + 120, 0xcd, 8);			/* EUI64 */
	put_unaligned_le16(8, raw + 128 + 4 * 17);	/* LBAF17.MS */
	raw[128 + 4 * 17 + 2] = 12;			/* LBAF17.LBADS */

	KUNIT_EXPECT_EQ(test, nvmevf_id_ns_parse(id, sizeof(*id), 5, &ns), 0);
	KUNIT_EXPECT_EQ(test, le32_to_cpu(ns.nsid), 5);
	KUNIT_EXPECT_EQ(test, le64_to_cpu(ns.nsze), 0x1000);
	KUNIT_EXPECT_EQ(test, ns.lbads, 12);
	KUNIT_EXPECT_EQ(test, le16_to_cpu(ns.ms), 8);
	KUNIT_EXPECT_EQ(test, ns.flags, NVMEVF_NS_F_EXT_LBA);
	KUNIT_EXPECT_EQ(test, ns.nguid[15], 0xab);
	KUNIT_EXPECT_EQ(test, ns.eui64[7], 0xcd);

	/* a format index beyond NLBAF */
	raw[25] = 16;
	KUNIT_EXPECT_EQ(test, nvmevf_id_ns_parse(id, sizeof(*id), 5, &ns), -EIO);
	KUNIT_EXPECT_EQ(test, nvmevf_id_ns_parse(id, 4095, 5, &ns), -EINVAL);
}

static const struct {
	int status;
	int err;
} status_table[] = {
	{ 0, 0 },
	{ -ENODEV, -ENODEV },
	{ -EBUSY, -EBUSY },
	{ NVME_SC_INVALID_OPCODE, -EOPNOTSUPP },
	{ NVME_SC_INVALID_FIELD, -EINVAL },
	{ NVME_SC_INVALID_FIELD | NVME_STATUS_DNR, -EINVAL },
	{ NVME_SC_INVALID_NS, -EINVAL },
	{ NVME_SC_PRP_INVALID_OFFSET, -EINVAL },
	{ NVME_SC_CMD_SEQ_ERROR, -EPROTO },
	{ NVME_SC_CMD_SEQ_ERROR | NVME_STATUS_MORE | NVME_STATUS_CRD, -EPROTO },
	{ NVME_SC_CMD_INTERRUPTED, -EBUSY },
	{ NVME_SC_LM_INVALID_CTRL_ID, -ENXIO },
	{ NVME_SC_LM_INVALID_CDQ, -EINVAL },
	{ NVME_SC_LM_NOT_ENOUGH_RES, -ENOSPC },
	{ NVME_SC_LM_CDQ_FULL, -ENOSPC },
	{ NVME_SC_LM_CTRL_SUSPENDED, -EBUSY },
	{ NVME_SC_LM_CTRL_NOT_SUSPENDED, -EBUSY },
	{ NVME_SC_ABORT_REQ, -ECANCELED },
	{ NVME_SC_HOST_ABORTED_CMD, -ECANCELED },
	{ NVME_SC_INTERNAL, -EIO },
	{ NVME_SC_DATA_XFER_ERROR, -EIO },
	/* SC 1Fh with generic SCT is not Invalid Controller Identifier */
	{ 0x01f, -EIO },
	{ 0x7ff, -EIO },
};

static void status_to_errno_test(struct kunit *test)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(status_table); i++)
		KUNIT_EXPECT_EQ_MSG(test,
				    nvmevf_status_to_errno(status_table[i].status),
				    status_table[i].err, "status %#x",
				    status_table[i].status);
}

/* CNS 03h: the UUID descriptor, wherever it is; malformed lists refused */
static void ns_desc_uuid_test(struct kunit *test)
{
	u8 *buf = kunit_kzalloc(test, NVME_IDENTIFY_DATA_SIZE, GFP_KERNEL);
	u8 uuid[16] = {};
	unsigned int i;

	KUNIT_ASSERT_NOT_NULL(test, buf);
	/* EUI64 (type 1, 8 bytes), NGUID (type 2, 16 bytes), UUID (type 3) */
	buf[0] = 1;
	buf[1] = 8;
	buf[12] = 2;
	buf[13] = 16;
	buf[32] = 3;
	buf[33] = 16;
	for (i = 0; i < 16; i++)
		buf[36 + i] = 0xa0 + i;
	KUNIT_EXPECT_EQ(test, nvmevf_ns_desc_uuid(buf, NVME_IDENTIFY_DATA_SIZE,
						  uuid), 0);
	KUNIT_EXPECT_EQ(test, uuid[0], 0xa0);
	KUNIT_EXPECT_EQ(test, uuid[15], 0xaf);
	/* cut short: the descriptor runs past the data */
	KUNIT_EXPECT_EQ(test, nvmevf_ns_desc_uuid(buf, 40, uuid), -EIO);
	/* a UUID descriptor of another length */
	buf[33] = 8;
	KUNIT_EXPECT_EQ(test, nvmevf_ns_desc_uuid(buf, NVME_IDENTIFY_DATA_SIZE,
						  uuid), -EIO);
	/* no UUID: the list ends at NIDT 0 */
	buf[32] = 0;
	KUNIT_EXPECT_EQ(test, nvmevf_ns_desc_uuid(buf, NVME_IDENTIFY_DATA_SIZE,
						  uuid), -ENOENT);
	/* a list that fills the whole page without a terminator */
	memset(buf, 0, NVME_IDENTIFY_DATA_SIZE);
	for (i = 0; i + 4 + 252 <= NVME_IDENTIFY_DATA_SIZE; i += 256) {
		buf[i] = 4;
		buf[i + 1] = 252;
	}
	KUNIT_EXPECT_EQ(test, nvmevf_ns_desc_uuid(buf, NVME_IDENTIFY_DATA_SIZE,
						  uuid), -ENOENT);
}

/* only what the PF completed or cancelled reached the controller */
static void status_sent_test(struct kunit *test)
{
	KUNIT_EXPECT_TRUE(test, nvmevf_status_sent(0x4002));
	KUNIT_EXPECT_TRUE(test, nvmevf_status_sent(-EINTR));
	KUNIT_EXPECT_FALSE(test, nvmevf_status_sent(0));
	KUNIT_EXPECT_FALSE(test, nvmevf_status_sent(-EBUSY));
	KUNIT_EXPECT_FALSE(test, nvmevf_status_sent(-ENODEV));
	KUNIT_EXPECT_FALSE(test, nvmevf_status_sent(-EPERM));
	/* a cancelled command is not reported as an interrupted call */
	KUNIT_EXPECT_EQ(test, nvmevf_status_to_errno(-EINTR), -ECANCELED);
}

static struct kunit_case nvmevf_cmds_test_cases[] = {
	KUNIT_CASE(suspend_test),
	KUNIT_CASE(resume_test),
	KUNIT_CASE(set_state_test),
	KUNIT_CASE(get_state_test),
	KUNIT_CASE(identify_test),
	KUNIT_CASE(identify_ns_test),
	KUNIT_CASE(track_send_test),
	KUNIT_CASE(track_mem_build_test),
	KUNIT_CASE(track_recv_test),
	KUNIT_CASE(chunk_len_test),
	KUNIT_CASE(sec_ctrl_find_scid_test),
	KUNIT_CASE(sec_ctrl_find_scid_truncated_test),
	KUNIT_CASE(parse_csf_test),
	KUNIT_CASE(sec_ctrl_find_test),
	KUNIT_CASE(csf_uuid_test),
	KUNIT_CASE(ns_lists_test),
	KUNIT_CASE(id_ns_parse_test),
	KUNIT_CASE(status_to_errno_test),
	KUNIT_CASE(ns_desc_uuid_test),
	KUNIT_CASE(status_sent_test),
	{}
};

static struct kunit_suite nvmevf_cmds_test_suite = {
	.name = "nvme-vfio-pci-cmds",
	.test_cases = nvmevf_cmds_test_cases,
};

kunit_test_suite(nvmevf_cmds_test_suite);
