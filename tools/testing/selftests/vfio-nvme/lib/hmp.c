// SPDX-License-Identifier: GPL-2.0-only
/*
 * vnl: the rig's QEMU monitor, reached from inside the guest through a
 * virtio-serial port (see scripts/run-vm.sh), for device-model fault
 * injection.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vnl.h"

int vnl_fail(const char *fmt, ...);

#define HMP_PORT_NAME	"org.nvme-vfio-pci.hmp"
#define HMP_PROMPT	"(qemu) "

static int hmp_open(void)
{
	char path[PATH_MAX], name[64];
	struct dirent *de;
	int fd = -ENOENT;
	FILE *f;
	DIR *dir;

	dir = opendir("/sys/class/virtio-ports");
	if (!dir)
		return vnl_fail("no virtio-ports in sysfs");
	while ((de = readdir(dir))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/sys/class/virtio-ports/%s/name",
			 de->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (fgets(name, sizeof(name), f) &&
		    !strncmp(name, HMP_PORT_NAME, strlen(HMP_PORT_NAME))) {
			snprintf(path, sizeof(path), "/dev/%s", de->d_name);
			fd = open(path, O_RDWR | O_NONBLOCK);
			if (fd < 0)
				fd = vnl_fail("open %s", path);
		}
		fclose(f);
		if (fd != -ENOENT)
			break;
	}
	closedir(dir);
	if (fd == -ENOENT) {
		errno = ENOENT;
		vnl_fail("no virtio port %s", HMP_PORT_NAME);
	}
	return fd;
}

/*
 * Read what arrives until @ms milliseconds pass without data, or (with
 * @until_prompt) until the output ends with the prompt.  Readline echoes a
 * command with cursor movements, which grows with the square of its length:
 * only the last @len - 1 bytes are kept in @buf.
 */
static size_t hmp_read(int fd, char *buf, size_t len, int ms,
		       bool until_prompt)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	size_t have = 0, plen = strlen(HMP_PROMPT);
	char chunk[4096];
	ssize_t n;

	buf[0] = 0;
	while (poll(&pfd, 1, ms) > 0) {
		n = read(fd, chunk, sizeof(chunk));
		if (n <= 0)
			break;
		if ((size_t)n >= len - 1) {
			memcpy(buf, chunk + n - (len - 1), len - 1);
			have = len - 1;
		} else {
			if (have + n > len - 1) {
				memmove(buf, buf + have + n - (len - 1),
					len - 1 - n);
				have = len - 1 - n;
			}
			memcpy(buf + have, chunk, n);
			have += n;
		}
		buf[have] = 0;
		if (until_prompt && have >= plen &&
		    !strcmp(buf + have - plen, HMP_PROMPT))
			break;
	}
	return have;
}

/**
 * vnl_hmp() - run one HMP command on the rig's QEMU
 * @cmd: the command, without newline
 * @out: returns what the monitor printed (echo and prompt included)
 * @len: size of @out
 *
 * Return: 0, or a negative errno when the monitor port is missing or does
 * not answer with a prompt.
 */
int vnl_hmp(const char *cmd, char *out, size_t len)
{
	char junk[4096];
	size_t have;
	int fd;

	fd = hmp_open();
	if (fd < 0)
		return fd;
	/* banner and prompts left from earlier commands */
	hmp_read(fd, junk, sizeof(junk), 200, false);
	if (write(fd, cmd, strlen(cmd)) != (ssize_t)strlen(cmd) ||
	    write(fd, "\n", 1) != 1) {
		close(fd);
		return vnl_fail("write to the monitor port");
	}
	have = hmp_read(fd, out, len, 10000, true);
	close(fd);
	if (have < strlen(HMP_PROMPT) ||
	    strcmp(out + have - strlen(HMP_PROMPT), HMP_PROMPT)) {
		errno = ETIMEDOUT;
		return vnl_fail("monitor did not answer '%s'", cmd);
	}
	return 0;
}

/**
 * vnl_lm_fault_at() - make commands of a kind fail in QEMU, from the Nth on
 * @pf_id: QOM id of the PF (the rig's is "nvme0")
 * @kind: suspend, resume, get-state, set-state, track-send, track-recv,
 *	identify (any Identify of the PF), identify-csf, corrupt-state or none
 * @skip: how many commands of @kind complete normally first
 * @count: how many commands fail after those
 * @status: the NVMe status they complete with (SCT << 8 | SC, DNR 0x4000)
 *
 * Return: 0 or negative errno.
 */
int vnl_lm_fault_at(const char *pf_id, const char *kind, unsigned int skip,
		    unsigned int count, unsigned int status)
{
	char val[16];
	int ret;

	/* the count, set last, arms it */
	snprintf(val, sizeof(val), "%u", status);
	ret = vnl_qom_set(pf_id, "lm-fault-status", val);
	snprintf(val, sizeof(val), "%u", skip);
	if (!ret)
		ret = vnl_qom_set(pf_id, "lm-fault-skip", val);
	if (!ret)
		ret = vnl_qom_set(pf_id, "lm-fault-cmd", kind);
	snprintf(val, sizeof(val), "%u", count);
	if (!ret)
		ret = vnl_qom_set(pf_id, "lm-fault-count", val);
	return ret;
}

/**
 * vnl_lm_fault() - make the next @count commands of a kind fail in QEMU
 * @pf_id: QOM id of the PF (the rig's is "nvme0")
 * @kind: as for vnl_lm_fault_at()
 * @count: how many commands fail
 * @status: the NVMe status they complete with (SCT << 8 | SC, DNR 0x4000)
 *
 * Return: 0 or negative errno.
 */
int vnl_lm_fault(const char *pf_id, const char *kind, unsigned int count,
		 unsigned int status)
{
	return vnl_lm_fault_at(pf_id, kind, 0, count, status);
}

/**
 * vnl_lm_cmds_seen() - commands of one kind the PF's model has seen
 * @pf_id: QOM id of the PF
 * @kind: a kind of vnl_lm_fault_at(), not none
 * @n: returns the count since QEMU started
 *
 * Return: 0 or negative errno (-EPROTO if the model did not list @kind).
 */
int vnl_lm_cmds_seen(const char *pf_id, const char *kind, unsigned long *n)
{
	char cmd[160], out[1024], line[1024], key[40], *p, *end;
	int ret;

	snprintf(cmd, sizeof(cmd), "qom-get /machine/peripheral/%s lm-cmds-seen",
		 pf_id);
	ret = vnl_hmp(cmd, out, sizeof(out));
	if (ret)
		return ret;
	/* "suspend=1 resume=0 ..." on the line after the echo of the command */
	p = strstr(out, "lm-cmds-seen");
	p = p ? strchr(p, '\n') : NULL;
	snprintf(line, sizeof(line), " %s", p ? p + 1 + (p[1] == '"') : "");
	snprintf(key, sizeof(key), " %s=", kind);
	p = strstr(line, key);
	if (!p) {
		errno = EPROTO;
		return vnl_fail("'%s': no %s in '%s'", cmd, kind, out);
	}
	p += strlen(key);
	*n = strtoul(p, &end, 10);
	if (end == p) {
		errno = EPROTO;
		return vnl_fail("'%s': no count of %s in '%s'", cmd, kind, out);
	}
	return 0;
}

/**
 * vnl_qom_set() - set a property of one of the rig's QEMU devices
 * @id: QOM id of the device ("nvme0")
 * @prop: property name
 * @val: value, as HMP qom-set takes it
 *
 * Return: 0 or negative errno; a refused value fails with -EINVAL.
 */
int vnl_qom_set(const char *id, const char *prop, const char *val)
{
	char cmd[160], out[1024];
	int ret;

	snprintf(cmd, sizeof(cmd), "qom-set /machine/peripheral/%s %s %s", id,
		 prop, val);
	ret = vnl_hmp(cmd, out, sizeof(out));
	if (ret)
		return ret;
	if (strstr(out, "rror")) {
		errno = EINVAL;
		return vnl_fail("'%s': %s", cmd, out);
	}
	return 0;
}

/**
 * vnl_qom_get_uint() - read an integer property of a QEMU device
 * @id: QOM id of the device
 * @prop: property name
 * @val: returns the value
 *
 * Return: 0 or negative errno (-EPROTO if the monitor printed no number).
 */
int vnl_qom_get_uint(const char *id, const char *prop, unsigned long *val)
{
	char cmd[160], out[1024], *p, *end;
	int ret;

	snprintf(cmd, sizeof(cmd), "qom-get /machine/peripheral/%s %s", id, prop);
	ret = vnl_hmp(cmd, out, sizeof(out));
	if (ret)
		return ret;
	/* the echo of the command, then the value on a line of its own */
	p = strstr(out, prop);
	p = p ? strchr(p, '\n') : NULL;
	if (!p) {
		errno = EPROTO;
		return vnl_fail("'%s': no value in '%s'", cmd, out);
	}
	*val = strtoul(p + 1, &end, 0);
	if (end == p + 1) {
		errno = EPROTO;
		return vnl_fail("'%s': no value in '%s'", cmd, out);
	}
	return 0;
}
