/* qmp: QMP client over a unix socket (see qmp.h). */
#include "qmp.h"
#include "err.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* cJSON's sscanf(buf, "%lg", &d) in the static binary (Makefile): the one
 * conversion it asks for, without linking libc's scanf. */
int cjson_sscanf(const char *s, const char *fmt, ...);
int cjson_sscanf(const char *s, const char *fmt, ...)
{
	va_list ap;
	char *end;
	double v = strtod(s, &end);

	(void)fmt;
	if (end == s)
		return 0;
	va_start(ap, fmt);
	*va_arg(ap, double *) = v;
	va_end(ap);
	return 1;
}

#define QMP_LINE_MAX (4u << 20) /* a reply larger than this is not QEMU's */

int qmp_dial(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (str_copy(sa.sun_path, sizeof(sa.sun_path), path) < 0) {
		errno = ENAMETOOLONG;
		return -1;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/* Wait until fd is readable or the deadline passes: 1 ready, 0 timeout. */
static int wait_in(int fd, uint64_t deadline)
{
	for (;;) {
		uint64_t now = now_ms();
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int rc;

		if (now >= deadline)
			return 0;
		rc = poll(&p, 1, (int)(deadline - now));
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc < 0)
			return err_sys(EXIT_FAIL, "QMP poll");
		return rc > 0;
	}
}

/* Receive more bytes: 0 ok, -1 on EOF or error. */
static int fill(struct qmp *q)
{
	ssize_t n;

	if (q->cap - q->len < 65536) {
		size_t cap = q->cap ? q->cap * 2 : 65536;
		char *b;
		if (cap > QMP_LINE_MAX + 65536)
			return err_set(EXIT_FAIL, "QMP: reply longer than %u bytes", QMP_LINE_MAX);
		b = realloc(q->buf, cap);
		if (!b)
			return err_sys(EXIT_FAIL, "QMP buffer");
		q->buf = b;
		q->cap = cap;
	}
	do
		n = recv(q->fd, q->buf + q->len, q->cap - q->len - 1, MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return 0;
	/* A QEMU that dies with our last command unread resets the connection. */
	if (n == 0 || (n < 0 && errno == ECONNRESET))
		return err_set(EXIT_FAIL, "QEMU closed the QMP connection (did QEMU exit?)");
	if (n < 0)
		return err_sys(EXIT_FAIL, "QMP receive");
	q->len += (size_t)n;
	return 0;
}

/* Take one complete line from the buffer as JSON: 1 got one, 0 none yet. */
static int take(struct qmp *q, cJSON **msg)
{
	char *nl;
	size_t n;

	if (!q->len)
		return 0;
	nl = memchr(q->buf, '\n', q->len);
	if (!nl)
		return 0;
	n = (size_t)(nl - q->buf) + 1;
	*nl = 0;
	*msg = cJSON_Parse(q->buf);
	memmove(q->buf, q->buf + n, q->len - n);
	q->len -= n;
	if (!*msg)
		return err_set(EXIT_FAIL, "QMP: QEMU sent a line that is not JSON");
	return 1;
}

static void queue_event(struct qmp *q, cJSON *ev)
{
	if (q->n_events == QMP_MAX_EVENTS) {
		log_debug("QMP: event queue full, dropping %s", qmp_str(q->events[0], "event"));
		cJSON_Delete(q->events[0]);
		memmove(q->events, q->events + 1, sizeof(q->events[0]) * (QMP_MAX_EVENTS - 1));
		q->n_events--;
	}
	q->events[q->n_events++] = ev;
}

/* Next message that is not an event (events are queued): 1, 0 timeout, -1. */
static int next_reply(struct qmp *q, uint64_t deadline, cJSON **msg)
{
	for (;;) {
		int rc = take(q, msg);
		if (rc < 0)
			return -1;
		if (rc > 0) {
			if (cJSON_GetObjectItemCaseSensitive(*msg, "event")) {
				queue_event(q, *msg);
				continue;
			}
			return 1;
		}
		rc = wait_in(q->fd, deadline);
		if (rc <= 0)
			return rc;
		if (fill(q) < 0)
			return -1;
	}
}

int qmp_pump(struct qmp *q)
{
	cJSON *msg;
	int rc;

	if (fill(q) < 0)
		return -1;
	while ((rc = take(q, &msg)) > 0) {
		if (cJSON_GetObjectItemCaseSensitive(msg, "event"))
			queue_event(q, msg);
		else
			cJSON_Delete(msg); /* a reply nobody waits for */
	}
	return rc;
}

int qmp_fd(const struct qmp *q)
{
	return q->fd;
}

static int send_msg(struct qmp *q, const char *text, const int *fds, int nfds)
{
	char ctl[CMSG_SPACE(sizeof(int) * 4)];
	struct iovec iov = { (void *)text, strlen(text) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t n;

	if (nfds > 4)
		return err_set(EXIT_FAIL, "QMP: at most 4 fds per command");
	if (nfds > 0) {
		struct cmsghdr *c;
		memset(ctl, 0, sizeof(ctl));
		mh.msg_control = ctl;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfds);
	}
	/* The fds must travel with the command's first byte; the rest follows. */
	do
		n = sendmsg(q->fd, &mh, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n >= 0 && (size_t)n < iov.iov_len && write_all(q->fd, text + n, iov.iov_len - (size_t)n) < 0)
		n = -1;
	if (n < 0 && (errno == EPIPE || errno == ECONNRESET))
		return err_set(EXIT_FAIL, "QEMU closed the QMP connection (did QEMU exit?)");
	if (n < 0)
		return err_sys(EXIT_FAIL, "QMP send");
	return 0;
}

/* Send cmd (an object we add an id to) and wait for its reply. */
static int call(struct qmp *q, cJSON *cmd, const int *fds, int nfds, cJSON **reply)
{
	char id[32], *text;
	uint64_t deadline;
	const char *name = qmp_str(cmd, "execute");
	int rc;

	snprintf(id, sizeof(id), "vmsnap-%u", ++q->next_id);
	cJSON_DeleteItemFromObjectCaseSensitive(cmd, "id");
	cJSON_AddStringToObject(cmd, "id", id);
	text = cJSON_PrintUnformatted(cmd);
	if (!text)
		return err_set(EXIT_FAIL, "QMP: out of memory");
	if (log_verbose > 1)
		log_debug("QMP -> %s", text);
	rc = send_msg(q, text, fds, nfds);
	free(text);
	if (rc < 0)
		return err_wrap("QMP %s", name ? name : "command");
	deadline = now_ms() + (uint64_t)q->timeout_ms;
	for (;;) {
		cJSON *msg = NULL;
		const char *rid;

		rc = next_reply(q, deadline, &msg);
		if (rc == 0)
			return err_set(EXIT_FAIL, "QMP: no reply to %s within %d ms", name ? name : "command",
				       q->timeout_ms);
		if (rc < 0)
			return err_wrap("QMP %s", name ? name : "command");
		rid = qmp_str(msg, "id");
		if (rid && !strcmp(rid, id)) {
			*reply = msg;
			return 0;
		}
		cJSON_Delete(msg); /* an old reply, e.g. after a timeout */
	}
}

int qmp_call_json(struct qmp *q, cJSON *cmd, cJSON **reply)
{
	return call(q, cmd, NULL, 0, reply);
}

int qmp_call(struct qmp *q, const char *name, cJSON *args, const int *fds, int nfds, cJSON **ret)
{
	cJSON *cmd = cJSON_CreateObject(), *reply = NULL, *e;
	int rc;

	if (!cmd) {
		cJSON_Delete(args);
		return err_set(EXIT_FAIL, "QMP: out of memory");
	}
	cJSON_AddStringToObject(cmd, "execute", name);
	if (args)
		cJSON_AddItemToObject(cmd, "arguments", args);
	rc = call(q, cmd, fds, nfds, &reply);
	cJSON_Delete(cmd);
	if (rc < 0)
		return -1;
	if (log_verbose > 1) {
		char *t = cJSON_PrintUnformatted(reply);
		log_debug("QMP <- %s", t ? t : "?");
		free(t);
	}
	e = cJSON_GetObjectItemCaseSensitive(reply, "error");
	if (e) {
		err_set(EXIT_FAIL, "QEMU refused %s: %s (%s)", name,
			qmp_str(e, "desc") ? qmp_str(e, "desc") : "no description",
			qmp_str(e, "class") ? qmp_str(e, "class") : "no class");
		cJSON_Delete(reply);
		return -1;
	}
	if (ret)
		*ret = cJSON_DetachItemFromObjectCaseSensitive(reply, "return");
	cJSON_Delete(reply);
	return 0;
}

int qmp_event(struct qmp *q, int timeout_ms, cJSON **ev)
{
	uint64_t deadline = now_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);

	for (;;) {
		cJSON *msg;
		int rc;

		if (q->n_events) {
			*ev = q->events[0];
			memmove(q->events, q->events + 1, sizeof(q->events[0]) * --q->n_events);
			return 1;
		}
		rc = take(q, &msg);
		if (rc < 0)
			return -1;
		if (rc > 0) {
			if (cJSON_GetObjectItemCaseSensitive(msg, "event"))
				queue_event(q, msg);
			else
				cJSON_Delete(msg);
			continue;
		}
		rc = wait_in(q->fd, deadline);
		if (rc <= 0)
			return rc;
		if (fill(q) < 0)
			return -1;
	}
}

static void parse_version(struct qmp *q, const cJSON *greeting)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(greeting, "QMP");
	v = cJSON_GetObjectItemCaseSensitive(v, "version");
	v = cJSON_GetObjectItemCaseSensitive(v, "qemu");
	q->version[0] = (int)qmp_int(v, "major", 0);
	q->version[1] = (int)qmp_int(v, "minor", 0);
	q->version[2] = (int)qmp_int(v, "micro", 0);
	snprintf(q->version_str, sizeof(q->version_str), "%d.%d.%d", q->version[0], q->version[1],
		 q->version[2]);
}

int qmp_connect(struct qmp *q, const char *path, int timeout_ms)
{
	uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
	int fd;

	for (;;) {
		fd = qmp_dial(path);
		if (fd >= 0)
			break;
		if ((errno != ENOENT && errno != ECONNREFUSED) || now_ms() >= deadline) {
			memset(q, 0, sizeof(*q));
			q->fd = -1;
			return err_sys(EXIT_FAIL, "QMP socket %s", path);
		}
		usleep(20000);
	}
	return qmp_attach(q, fd, path, deadline);
}

int qmp_attach(struct qmp *q, int fd, const char *path, uint64_t deadline)
{
	cJSON *greeting = NULL;
	uint64_t now = now_ms();
	int timeout_ms = deadline > now ? (int)(deadline - now) : 0;
	int rc;

	memset(q, 0, sizeof(*q));
	q->fd = fd;
	q->timeout_ms = QMP_TIMEOUT_MS;
	rc = next_reply(q, deadline, &greeting);
	if (rc <= 0) {
		if (rc == 0)
			err_set(EXIT_FAIL, "QMP socket %s: no greeting within %d ms (is another client connected?)",
				path, timeout_ms);
		qmp_close(q);
		return -1;
	}
	if (!cJSON_GetObjectItemCaseSensitive(greeting, "QMP")) {
		cJSON_Delete(greeting);
		qmp_close(q);
		return err_set(EXIT_FAIL, "QMP socket %s: not a QMP greeting", path);
	}
	parse_version(q, greeting);
	cJSON_Delete(greeting);
	if (qmp_call(q, "qmp_capabilities", NULL, NULL, 0, NULL) < 0) {
		qmp_close(q);
		return -1;
	}
	return 0;
}

void qmp_close(struct qmp *q)
{
	if (q->fd >= 0) /* fd 0 is a socket like any other when stdin was closed */
		close(q->fd);
	q->fd = -1;
	free(q->buf);
	q->buf = NULL;
	q->len = q->cap = 0;
	while (q->n_events)
		cJSON_Delete(q->events[--q->n_events]);
}

const char *qmp_str(const cJSON *obj, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

long long qmp_int(const cJSON *obj, const char *key, long long dflt)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

	/* Converting a double outside long long's range (or NaN) is undefined
	 * behaviour; no QEMU sends such a number, so it counts as absent.
	 * Found by fuzz_qmp: a greeting with "minor": 1888...8. */
	if (!cJSON_IsNumber(v) || !(v->valuedouble >= -0x1p63 && v->valuedouble < 0x1p63))
		return dflt;
	return (long long)v->valuedouble;
}

int qmp_bool(const cJSON *obj, const char *key, int dflt)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
	return cJSON_IsBool(v) ? cJSON_IsTrue(v) : dflt;
}
