/* qga: guest agent client (see qga.h). A guest may send anything on its
 * port, or nothing: every read has a deadline and a line is at most 4 KiB. */
#include "qga.h"
#include "err.h"
#include "qmp.h"
#include "util.h"

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cJSON.h"

#define QGA_SENTINEL '\xff'

struct conn {
	int fd;
	uint64_t deadline;
	char buf[4096];
	size_t len;
};

uint64_t qga_wall_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int send_text(struct conn *k, const char *s, size_t n)
{
	while (n) {
		ssize_t w = send(k->fd, s, n, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return err_sys(EXIT_FAIL, "writing to the guest agent's socket");
		s += w;
		n -= (size_t)w;
	}
	return 0;
}

/* More bytes from the guest by the deadline: 0, or -1 (timeout, EOF). */
static int more(struct conn *k)
{
	struct pollfd p = { .fd = k->fd, .events = POLLIN };
	uint64_t now = now_ms();
	ssize_t n;
	int rc;

	if (k->len == sizeof(k->buf))
		return err_set(EXIT_FAIL, "the guest agent sent a line over %zu bytes", sizeof(k->buf));
	if (now >= k->deadline)
		return err_set(EXIT_FAIL, "no answer from the guest agent");
	rc = poll(&p, 1, (int)(k->deadline - now));
	if (rc < 0 && errno != EINTR)
		return err_sys(EXIT_FAIL, "guest agent socket");
	if (rc <= 0)
		return rc == 0 ? err_set(EXIT_FAIL, "no answer from the guest agent") : 0;
	n = recv(k->fd, k->buf + k->len, sizeof(k->buf) - k->len, MSG_DONTWAIT);
	if (n == 0)
		return err_set(EXIT_FAIL, "the guest agent's socket closed");
	if (n > 0)
		k->len += (size_t)n;
	return 0;
}

/* Drop the first n bytes of the buffer. */
static void consume(struct conn *k, size_t n)
{
	memmove(k->buf, k->buf + n, k->len - n);
	k->len -= n;
}

/* The next line as JSON (caller frees), by the deadline. */
static int read_reply(struct conn *k, cJSON **out)
{
	char *nl;

	while (!(nl = memchr(k->buf, '\n', k->len)))
		if (more(k) < 0)
			return -1;
	*nl = 0;
	*out = cJSON_Parse(k->buf);
	consume(k, (size_t)(nl - k->buf) + 1);
	return 0;
}

/* Skip to just past the next sentinel byte. */
static int skip_to_sentinel(struct conn *k)
{
	char *s;

	while (!(s = memchr(k->buf, QGA_SENTINEL, k->len))) {
		k->len = 0;
		if (more(k) < 0)
			return -1;
	}
	consume(k, (size_t)(s - k->buf) + 1);
	return 0;
}

/* A 0xFF flushes whatever the agent's parser holds; replies before its
 * sentinel (to that byte, or to an earlier client) are dropped, and a
 * delimited reply with another id (an earlier, timed-out sync) too. */
static int sync_agent(struct conn *k)
{
	long long id = (long long)(qga_wall_ns() / 1000 % 1000000000) ^ getpid();
	char cmd[128];
	int n = snprintf(cmd, sizeof(cmd),
			 "%c{\"execute\":\"guest-sync-delimited\",\"arguments\":{\"id\":%lld}}\n",
			 QGA_SENTINEL, id);

	if (send_text(k, cmd, (size_t)n) < 0)
		return -1;
	for (;;) {
		cJSON *r = NULL;
		const cJSON *ret;
		bool ok;
		if (skip_to_sentinel(k) < 0 || read_reply(k, &r) < 0)
			return -1;
		ret = cJSON_GetObjectItemCaseSensitive(r, "return");
		ok = cJSON_IsNumber(ret) && (long long)ret->valuedouble == id;
		cJSON_Delete(r);
		if (ok)
			return 0;
	}
}

static int set_time(struct conn *k)
{
	char cmd[128];
	const char *desc;
	cJSON *r = NULL;
	int n = snprintf(cmd, sizeof(cmd),
			 "{\"execute\":\"guest-set-time\",\"arguments\":{\"time\":%llu}}\n",
			 (unsigned long long)qga_wall_ns());

	if (send_text(k, cmd, (size_t)n) < 0 || read_reply(k, &r) < 0)
		return -1;
	if (cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(r, "return"))) {
		cJSON_Delete(r);
		return 0;
	}
	desc = qmp_str(cJSON_GetObjectItemCaseSensitive(r, "error"), "desc");
	err_set(EXIT_FAIL, "the guest agent refused guest-set-time: %.200s",
		desc ? desc : "no error description");
	cJSON_Delete(r);
	return -1;
}

int qga_set_time(const char *path, int timeout_ms)
{
	struct conn k = { .len = 0 };
	int rc;

	k.fd = qmp_dial(path);
	if (k.fd < 0)
		return err_sys(EXIT_FAIL, "guest agent socket %s", path);
	k.deadline = now_ms() + (uint64_t)timeout_ms;
	rc = sync_agent(&k);
	if (rc == 0) {
		k.deadline = now_ms() + (uint64_t)timeout_ms;
		rc = set_time(&k);
	}
	close(k.fd);
	return rc;
}
