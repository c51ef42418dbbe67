// SPDX-License-Identifier: GPL-2.0-only
/*
 * A minimal QMP client for the end-to-end migration test (L1 has no socat
 * or python): connect, negotiate capabilities, run one command, print its
 * reply line ({"return": ...} or {"error": ...}) and exit 0 or 1.
 * Asynchronous events that arrive meanwhile go to stderr.
 *
 *   qmp SOCKET 'JSON' [TIMEOUT_S]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static char buf[1 << 20];
static size_t have;

/* the next line from QEMU, NUL-terminated; NULL on EOF or timeout */
static char *next_line(int fd, int timeout_ms)
{
	static size_t consumed;
	char *nl;

	if (consumed) {
		memmove(buf, buf + consumed, have - consumed);
		have -= consumed;
		consumed = 0;
	}
	while (!(nl = memchr(buf, '\n', have))) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t r;

		if (have >= sizeof(buf) - 1 || poll(&p, 1, timeout_ms) <= 0)
			return NULL;
		r = read(fd, buf + have, sizeof(buf) - 1 - have);
		if (r <= 0)
			return NULL;
		have += r;
	}
	*nl = 0;
	if (nl > buf && nl[-1] == '\r')
		nl[-1] = 0;
	consumed = nl + 1 - buf;
	return buf;
}

/* wait for the reply to the last command; 0 for "return", 1 for "error" */
static int reply(int fd, int timeout_ms, int print)
{
	char *l;

	while ((l = next_line(fd, timeout_ms))) {
		if (!strncmp(l, "{\"return\"", 9)) {
			if (print)
				printf("%s\n", l);
			return 0;
		}
		if (!strncmp(l, "{\"error\"", 8)) {
			printf("%s\n", l);
			return 1;
		}
		fprintf(stderr, "%s\n", l);
	}
	fprintf(stderr, "qmp: no answer (%s)\n", errno ? strerror(errno) : "timeout");
	return 2;
}

static int send_all(int fd, const char *s)
{
	size_t n = strlen(s);

	while (n) {
		ssize_t r = write(fd, s, n);

		if (r <= 0)
			return -1;
		s += r;
		n -= r;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int timeout_ms, fd, tries;

	if (argc < 3) {
		fprintf(stderr, "usage: %s SOCKET JSON [TIMEOUT_S]\n", argv[0]);
		return 2;
	}
	timeout_ms = (argc > 3 ? atoi(argv[3]) : 30) * 1000;
	if (strlen(argv[1]) >= sizeof(sa.sun_path))
		return 2;
	memcpy(sa.sun_path, argv[1], strlen(argv[1]) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	/* QEMU may still be starting: retry for a while */
	for (tries = 0; connect(fd, (void *)&sa, sizeof(sa)); tries++) {
		if (tries == 100) {
			fprintf(stderr, "qmp: connect %s: %s\n", argv[1],
				strerror(errno));
			return 2;
		}
		usleep(100000);
	}
	if (!next_line(fd, timeout_ms)) {	/* the greeting */
		fprintf(stderr, "qmp: no greeting\n");
		return 2;
	}
	if (send_all(fd, "{\"execute\":\"qmp_capabilities\"}\n") ||
	    reply(fd, timeout_ms, 0))
		return 2;
	if (send_all(fd, argv[2]) || send_all(fd, "\n"))
		return 2;
	return reply(fd, timeout_ms, 1);
}
