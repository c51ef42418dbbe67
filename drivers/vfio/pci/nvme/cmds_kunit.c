// SPDX-License-Identifier: GPL-2.0-only
/*
 * KUnit tests for the nvme-vfio-pci parsers of what the PF returns and its
 * handling of the results of nvme-pci's VF operations.  The commands
 * themselves are built by nvme-pci (include/linux/nvme-pci.h).
 */
#include <kunit/test.h>
#include <linux/nvme.h>
#include <linux/nvme-pci.h>
#include <linux/unaligned.h>

#include "nvme-vfio-pci.h"

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
	{ NVME_SC_CTRL_ID_INVALID, -ENXIO },
	{ NVME_SC_INVALID_CDQ, -EINVAL },
	{ NVME_SC_NOT_ENOUGH_RESOURCES, -ENOSPC },
	{ NVME_SC_CDQ_FULL, -ENOSPC },
	{ NVME_SC_CTRL_SUSPENDED, -EBUSY },
	{ NVME_SC_CTRL_NOT_SUSPENDED, -EBUSY },
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
	/* timed out: aborted or left to the controller, state unknown */
	KUNIT_EXPECT_TRUE(test, nvmevf_status_sent(-ETIMEDOUT));
	KUNIT_EXPECT_FALSE(test, nvmevf_status_sent(0));
	KUNIT_EXPECT_FALSE(test, nvmevf_status_sent(-EBUSY));
	KUNIT_EXPECT_FALSE(test, nvmevf_status_sent(-ENODEV));
	KUNIT_EXPECT_FALSE(test, nvmevf_status_sent(-EPERM));
	/* a cancelled command is not reported as an interrupted call */
	KUNIT_EXPECT_EQ(test, nvmevf_status_to_errno(-EINTR), -ECANCELED);
	KUNIT_EXPECT_EQ(test, nvmevf_status_to_errno(-ETIMEDOUT), -ETIMEDOUT);
}

static struct kunit_case nvmevf_cmds_test_cases[] = {
	KUNIT_CASE(chunk_len_test),
	KUNIT_CASE(parse_csf_test),
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
