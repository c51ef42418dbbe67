// SPDX-License-Identifier: GPL-2.0-only
/*
 * The L2 guest's workload for the end-to-end migration test: it runs on the
 * passed-through NVMe VF while the VM is migrated and counts every way the
 * migration could have lost data.
 *
 *   - O_DIRECT writes of checksummed, sequence-numbered 4 KiB blocks, each
 *     read back at once;
 *   - O_DIRECT reads into a ring of buffers that only the device writes (the
 *     CPU never stores to them), each verified RING iterations later: a page
 *     the device wrote on the source but the migration did not re-send
 *     arrives with the buffer's previous content ("stale");
 *   - a full verify of every written block at intervals;
 *   - a heartbeat line every second, which also reports kernel messages of
 *     the nvme driver that mean trouble (timeouts, aborts, resets, I/O
 *     errors).
 *
 *   l2_workload DEVICE [OFFSET_MIB]
 *   l2_workload -r DEVICE MIB      sequential O_DIRECT read throughput
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define BS		4096
#define NBLK		128		/* 512 KiB of written blocks */
#define RING		64		/* device-only buffers */
#define FULL_EVERY	6		/* seconds between full verifies */
#define MAGIC		0x4e564d4cU	/* "LMVN" */

struct blkhdr {
	uint32_t magic;
	uint32_t block;
	uint64_t seq;
	uint32_t crc;
	uint32_t pad;
};

static atomic_ulong n_writes, n_readback, n_ring, n_full, n_full_blocks;
static atomic_ulong n_mismatch, n_stale, n_errors, n_kmsg, n_iter;
static int fd;
static off_t base;
static uint64_t lastseq[NBLK];

static uint32_t crc32c(const uint8_t *p, size_t n)
{
	uint32_t c = ~0U;

	while (n--) {
		c ^= *p++;
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0x82f63b78U & -(c & 1));
	}
	return ~c;
}

static void fill(uint8_t *buf, uint32_t block, uint64_t seq)
{
	struct blkhdr *h = (struct blkhdr *)buf;
	uint64_t x = seq * 0x9e3779b97f4a7c15ULL ^ block;

	for (size_t i = sizeof(*h); i < BS; i += 8) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		memcpy(buf + i, &x, 8);
	}
	h->magic = MAGIC;
	h->block = block;
	h->seq = seq;
	h->pad = 0;
	h->crc = 0;
	h->crc = crc32c(buf, BS);
}

/* 0: as expected; 1: another valid block (stale); -1: garbage */
static int check(const uint8_t *buf, uint32_t block, uint64_t seq)
{
	struct blkhdr h;
	uint8_t *tmp = alloca(BS);

	memcpy(&h, buf, sizeof(h));
	memcpy(tmp, buf, BS);
	((struct blkhdr *)tmp)->crc = 0;
	if (h.magic != MAGIC || crc32c(tmp, BS) != h.crc)
		return -1;
	return h.block == block && h.seq == seq ? 0 : 1;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int io(int wr, void *buf, uint32_t block)
{
	ssize_t r = wr ? pwrite(fd, buf, BS, base + (off_t)block * BS) :
			 pread(fd, buf, BS, base + (off_t)block * BS);

	if (r != BS) {
		n_errors++;
		printf("L2-ERR %s block %u: %zd (%s)\n", wr ? "write" : "read",
		       block, r, r < 0 ? strerror(errno) : "short");
		fflush(stdout);
		return -1;
	}
	return 0;
}

static void report(const char *what, uint32_t block, uint64_t seq,
		   const uint8_t *buf, int r)
{
	const struct blkhdr *h = (const void *)buf;

	printf("L2-ERR %s block %u seq %llu: %s (found block %u seq %llu)\n",
	       what, block, (unsigned long long)seq,
	       r > 0 ? "stale" : "corrupt", h->block,
	       (unsigned long long)h->seq);
	fflush(stdout);
}

static int kmsg_bad(const char *l)
{
	if (!strstr(l, "nvme"))
		return 0;
	return strstr(l, "timeout") || strstr(l, "abort") ||
	       strstr(l, "reset") || strstr(l, "I/O error") ||
	       strstr(l, "I/O Error") || strstr(l, "failed");
}

static void *heartbeat(void *arg)
{
	int kfd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK);
	double t0 = now();
	unsigned long last_iter = 0;
	int still = 0;
	char line[1024];

	for (unsigned int n = 1;; n++) {
		ssize_t r;

		sleep(1);
		while (kfd >= 0 && (r = read(kfd, line, sizeof(line) - 1)) > 0) {
			line[r] = 0;
			if (kmsg_bad(line)) {
				n_kmsg++;
				printf("L2-KMSG %s", line);
			}
		}
		still = n_iter == last_iter ? still + 1 : 0;
		last_iter = n_iter;
		printf("L2-HB %u t=%.0f iter=%lu writes=%lu readback=%lu ring=%lu ",
		       n, now() - t0, (unsigned long)n_iter,
		       (unsigned long)n_writes, (unsigned long)n_readback,
		       (unsigned long)n_ring);
		printf("full=%lu fullblocks=%lu mismatch=%lu stale=%lu errors=%lu kmsg=%lu%s\n",
		       (unsigned long)n_full,
		       (unsigned long)n_full_blocks, (unsigned long)n_mismatch,
		       (unsigned long)n_stale, (unsigned long)n_errors,
		       (unsigned long)n_kmsg, still >= 5 ? " STALLED" : "");
		fflush(stdout);
	}
	return NULL;
}

/* the benchmark's sequential read: 1 MiB O_DIRECT reads, prints MB/s */
static int readbench(const char *dev, long mib)
{
	void *buf = aligned_alloc(BS, 1 << 20);
	double t0;
	long i;

	fd = open(dev, O_RDONLY | O_DIRECT);
	if (fd < 0 || !buf) {
		printf("L2-ERR open %s: %s\n", dev, strerror(errno));
		return 1;
	}
	t0 = now();
	for (i = 0; i < mib; i++) {
		if (pread(fd, buf, 1 << 20, (off_t)i << 20) != 1 << 20) {
			printf("L2-ERR read at %ld MiB: %s\n", i, strerror(errno));
			return 1;
		}
	}
	printf("L2-READBENCH %ld MiB in %.3f s: %.2f MB/s\n", mib, now() - t0,
	       mib * 1.048576 / (now() - t0));
	return 0;
}

int main(int argc, char **argv)
{
	uint64_t ring_seq[RING] = { 0 }, seq = 0;
	uint32_t ring_blk[RING] = { 0 };
	uint8_t *wbuf, *rbuf, *ring;
	double next_full;
	pthread_t hb;

	if (argc == 4 && !strcmp(argv[1], "-r"))
		return readbench(argv[2], atol(argv[3]));
	if (argc < 2) {
		fprintf(stderr, "usage: %s DEVICE [OFFSET_MIB] | -r DEVICE MIB\n",
			argv[0]);
		return 2;
	}
	base = (argc > 2 ? atoll(argv[2]) : 32) << 20;
	fd = open(argv[1], O_RDWR | O_DIRECT);
	if (fd < 0) {
		printf("L2-ERR open %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	wbuf = aligned_alloc(BS, BS);
	rbuf = aligned_alloc(BS, BS);
	/* the ring: only the device ever writes these pages */
	ring = mmap(NULL, RING * BS, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (!wbuf || !rbuf || ring == MAP_FAILED)
		return 1;
	pthread_create(&hb, NULL, heartbeat, NULL);
	printf("L2-WORKLOAD start: %s offset %lld MiB, %d blocks, ring %d\n",
	       argv[1], (long long)(base >> 20), NBLK, RING);
	fflush(stdout);

	next_full = now() + FULL_EVERY;
	for (uint64_t it = 0;; it++) {
		uint32_t b = it % NBLK, k = it % RING, rb;
		int r;

		/* write and read back */
		fill(wbuf, b, ++seq);
		if (!io(1, wbuf, b)) {
			lastseq[b] = seq;
			n_writes++;
			if (!io(0, rbuf, b)) {
				n_readback++;
				if (memcmp(rbuf, wbuf, BS)) {
					n_mismatch++;
					report("read-back", b, seq, rbuf,
					       check(rbuf, b, seq));
				}
			}
		}

		/* the device-only ring: verify what was read RING ago */
		if (ring_seq[k]) {
			r = check(ring + k * BS, ring_blk[k], ring_seq[k]);
			n_ring++;
			if (r > 0)
				n_stale++;
			else if (r < 0)
				n_mismatch++;
			if (r)
				report("ring", ring_blk[k], ring_seq[k],
				       ring + k * BS, r);
		}
		rb = (b + NBLK / 2 + it / NBLK) % NBLK;
		if (!lastseq[rb])
			rb = b;
		ring_seq[k] = 0;
		if (lastseq[rb] && !io(0, ring + k * BS, rb)) {
			ring_blk[k] = rb;
			ring_seq[k] = lastseq[rb];
		}

		if (now() >= next_full) {
			for (uint32_t i = 0; i < NBLK; i++) {
				if (!lastseq[i] || io(0, rbuf, i))
					continue;
				/* an older block here is a lost write */
				r = check(rbuf, i, lastseq[i]);
				n_full_blocks++;
				if (r)
					n_mismatch++;
				if (r)
					report("full verify", i, lastseq[i],
					       rbuf, r);
			}
			n_full++;
			next_full = now() + FULL_EVERY;
		}
		n_iter++;
	}
	return 0;
}
