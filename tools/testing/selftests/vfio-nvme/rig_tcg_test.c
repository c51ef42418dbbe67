// SPDX-License-Identifier: GPL-2.0-only
/*
 * rig_tcg_test: the rig's emulator routes every MMIO access to the right
 * device while the memory map changes under it.
 *
 * QEMU 10.0's TCG looked a TLB entry's section index up in the current
 * map, not in the one the entry was filled from: between a map change on
 * one thread and the TLB flush of another vCPU, that vCPU's MMIO went to
 * the wrong section or aborted QEMU ("iotlb_to_section: Assertion
 * `section_index < d->map.sections_nb' failed").  The rig's QEMU carries a
 * fix (qemu/patches/0007).  One thread, on one CPU, reads the NVMe PF's
 * VS register through its BAR0 in a loop; another, on the other CPU, turns
 * Memory Space of the second PF (bound to vfio-pci, idle) off and on, which
 * adds and removes its BAR from the map each time.  Every read must return
 * the value it returned first.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "lib/vnl.h"

#define SYSPCI		"/sys/bus/pci/devices/"
#define NVME_REG_VS	0x08
#define PCI_COMMAND	0x04
#define PCI_CMD_MEMORY	0x2

struct stress {
	uint32_t *bar;
	int cfg_fd;
	uint16_t cmd;
	atomic_int stop;
	unsigned long reads, bad, toggles;
	uint32_t vs, bad_val;
};

/* the first function bound to @driver that has VFs (a rig PF), into @bdf */
static int find_pf(const char *driver, char *bdf, size_t len)
{
	char bdfs[8][32], vf[32];
	int i, n = vnl_vfs_bound_to(driver, bdfs, 8);

	for (i = 0; i < n; i++) {
		if (!vnl_pf_vf_bdf(bdfs[i], 0, vf, sizeof(vf))) {
			snprintf(bdf, len, "%s", bdfs[i]);
			return 0;
		}
	}
	return -ENOENT;
}

static void pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	sched_setaffinity(0, sizeof(set), &set);
}

static void *reader(void *arg)
{
	struct stress *s = arg;
	uint32_t v;

	pin(0);
	while (!atomic_load(&s->stop)) {
		v = __atomic_load_n(&s->bar[NVME_REG_VS / 4], __ATOMIC_RELAXED);
		s->reads++;
		if (v != s->vs) {
			if (!s->bad)
				s->bad_val = v;
			s->bad++;
		}
	}
	return NULL;
}

static void *toggler(void *arg)
{
	struct stress *s = arg;
	uint16_t off = s->cmd & ~PCI_CMD_MEMORY, on = s->cmd | PCI_CMD_MEMORY;

	pin(1);
	while (!atomic_load(&s->stop)) {
		if (pwrite(s->cfg_fd, &off, 2, PCI_COMMAND) != 2 ||
		    pwrite(s->cfg_fd, &on, 2, PCI_COMMAND) != 2)
			break;
		s->toggles++;
	}
	return NULL;
}

TEST(mmio_routing_while_the_map_changes)
{
	const char *env = getenv("RIG_TCG_SECONDS");
	char pf[NAME_MAX + 1], other[NAME_MAX + 1], path[PATH_MAX];
	struct stress s = { 0 };
	pthread_t r, t;
	int fd, secs = env ? atoi(env) : 10;

	ASSERT_EQ(0, find_pf("nvme", pf, sizeof(pf)));
	ASSERT_EQ(0, find_pf("vfio-pci", other, sizeof(other)))
		TH_LOG("no second NVMe PF bound to vfio-pci");
	snprintf(path, sizeof(path), SYSPCI "%s/resource0", pf);
	fd = open(path, O_RDWR | O_SYNC);
	ASSERT_LE(0, fd) TH_LOG("%s: %s", path, strerror(errno));
	s.bar = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	ASSERT_NE(MAP_FAILED, s.bar) TH_LOG("mmap %s: %s", path, strerror(errno));
	s.vs = __atomic_load_n(&s.bar[NVME_REG_VS / 4], __ATOMIC_RELAXED);
	ASSERT_NE(0, s.vs);
	ASSERT_NE(0xffffffff, s.vs);

	snprintf(path, sizeof(path), SYSPCI "%s/config", other);
	s.cfg_fd = open(path, O_RDWR);
	ASSERT_LE(0, s.cfg_fd) TH_LOG("%s: %s", path, strerror(errno));
	ASSERT_EQ(2, pread(s.cfg_fd, &s.cmd, 2, PCI_COMMAND));
	s.cmd |= PCI_CMD_MEMORY;

	ASSERT_EQ(0, pthread_create(&r, NULL, reader, &s));
	ASSERT_EQ(0, pthread_create(&t, NULL, toggler, &s));
	sleep(secs);
	atomic_store(&s.stop, 1);
	pthread_join(r, NULL);
	pthread_join(t, NULL);
	ASSERT_EQ(2, pwrite(s.cfg_fd, &s.cmd, 2, PCI_COMMAND));
	close(s.cfg_fd);

	TH_LOG("%s VS 0x%08x: %lu reads in %d s while %s's BAR was unmapped and mapped %lu times",
	       pf, s.vs, s.reads, secs, other, s.toggles);
	EXPECT_GT(s.toggles, 0);
	EXPECT_GT(s.reads, 0);
	EXPECT_EQ(0, s.bad) TH_LOG("%lu reads returned another value, first 0x%08x",
				   s.bad, s.bad_val);
	munmap(s.bar, 4096);
}

VNL_HARNESS_MAIN
