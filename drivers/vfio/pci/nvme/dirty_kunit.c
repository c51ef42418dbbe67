// SPDX-License-Identifier: GPL-2.0-only
/*
 * KUnit tests of the DMA logging range fitting (dirty.c): alignment to the
 * granule, power-of-two lengths, merging down to the PF's descriptor limit.
 */
#include <kunit/test.h>
#include <linux/sizes.h>

#include "nvme-vfio-pci.h"

static void fit_align_merge_test(struct kunit *test)
{
	struct nvme_lm_range r[4] = {
		{ .start = 0x5000, .len = 0x1000 },	/* out of order */
		{ .start = 0x1800, .len = 0x100 },	/* unaligned */
		{ .start = 0x100000, .len = 0x10000 },
		{ .start = 0x2000, .len = 0x1000 },	/* touches the 2nd */
	};

	/* 4 KiB granules, at most 4: the touching ones merge */
	KUNIT_ASSERT_EQ(test, nvmevf_ranges_fit(r, 4, SZ_4K, false, 4), 3);
	KUNIT_EXPECT_EQ(test, r[0].start, 0x1000);
	KUNIT_EXPECT_EQ(test, r[0].len, 0x2000);
	KUNIT_EXPECT_EQ(test, r[1].start, 0x5000);
	KUNIT_EXPECT_EQ(test, r[1].len, 0x1000);
	KUNIT_EXPECT_EQ(test, r[2].start, 0x100000);
	/* at most 2: the closest neighbours merge, everything stays covered */
	KUNIT_ASSERT_EQ(test, nvmevf_ranges_fit(r, 3, SZ_4K, false, 2), 2);
	KUNIT_EXPECT_EQ(test, r[0].start, 0x1000);
	KUNIT_EXPECT_EQ(test, r[0].len, 0x5000);
	KUNIT_EXPECT_EQ(test, r[1].start, 0x100000);
	KUNIT_EXPECT_EQ(test, r[1].len, 0x10000);
	/* at most 1 */
	KUNIT_ASSERT_EQ(test, nvmevf_ranges_fit(r, 2, SZ_4K, false, 1), 1);
	KUNIT_EXPECT_EQ(test, r[0].start, 0x1000);
	KUNIT_EXPECT_EQ(test, r[0].len, 0x10f000);
}

static void fit_granule_pow2_test(struct kunit *test)
{
	struct nvme_lm_range r[2] = {
		{ .start = 0x10000, .len = 0x3000 },
		{ .start = 0x400000, .len = 0x140000 },
	};

	/* 1 MiB granules: aligned outwards */
	KUNIT_ASSERT_EQ(test, nvmevf_ranges_fit(r, 2, SZ_1M, false, 2), 2);
	KUNIT_EXPECT_EQ(test, r[0].start, 0);
	KUNIT_EXPECT_EQ(test, r[0].len, SZ_1M);
	KUNIT_EXPECT_EQ(test, r[1].start, 0x400000);
	KUNIT_EXPECT_EQ(test, r[1].len, 2 * SZ_1M);
	/* MRTLL: power-of-two lengths */
	r[1].len = 3 * SZ_1M;
	KUNIT_ASSERT_EQ(test, nvmevf_ranges_fit(r, 2, SZ_1M, true, 2), 2);
	KUNIT_EXPECT_EQ(test, r[1].len, 4 * SZ_1M);
	/* a length rounded up that reaches the next range merges them */
	r[0].len = 3 * SZ_1M;
	r[1].start = 4 * SZ_1M;
	r[1].len = SZ_1M;
	KUNIT_ASSERT_EQ(test, nvmevf_ranges_fit(r, 2, SZ_1M, true, 2), 1);
	KUNIT_EXPECT_EQ(test, r[0].start, 0);
	KUNIT_EXPECT_EQ(test, r[0].len, 8 * SZ_1M);
}

static struct kunit_case nvmevf_dirty_test_cases[] = {
	KUNIT_CASE(fit_align_merge_test),
	KUNIT_CASE(fit_granule_pow2_test),
	{}
};

static struct kunit_suite nvmevf_dirty_test_suite = {
	.name = "nvme-vfio-pci-dirty",
	.test_cases = nvmevf_dirty_test_cases,
};

kunit_test_suite(nvmevf_dirty_test_suite);
