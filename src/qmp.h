/* qmp: a QMP client: greeting, capabilities negotiation, commands matched to
 * replies by id, events queued as they interleave, SCM_RIGHTS fd passing. */
#ifndef VMSNAP_QMP_H
#define VMSNAP_QMP_H

#include <stddef.h>
#include <stdint.h>

#include "cJSON.h"

#define QMP_MAX_EVENTS 32
#define QMP_TIMEOUT_MS 10000

struct qmp {
	int fd;
	int timeout_ms; /* for each reply */
	char *buf;      /* bytes received, not yet parsed */
	size_t len, cap;
	unsigned next_id;
	int version[3]; /* QEMU major, minor, micro from the greeting */
	char version_str[32];
	cJSON *events[QMP_MAX_EVENTS]; /* oldest first */
	unsigned n_events;
};

/* Connect to a QMP unix socket, read the greeting, negotiate capabilities.
 * Retries until timeout_ms while the socket does not exist yet. */
int qmp_connect(struct qmp *q, const char *path, int timeout_ms);
void qmp_close(struct qmp *q);
/* One connect to the unix socket at path: the fd (O_CLOEXEC), or -1 with errno. */
int qmp_dial(const char *path);
/* The same on a connected socket fd (owned from now on), named path in
 * messages, by the deadline (now_ms); the fuzz target uses it directly. */
int qmp_attach(struct qmp *q, int fd, const char *path, uint64_t deadline);

/* Execute cmd with args (consumed; may be NULL), passing nfds descriptors
 * with it. On success *ret (if given) owns the "return" value. A QEMU error
 * reply becomes err_* with QEMU's class and description. */
int qmp_call(struct qmp *q, const char *cmd, cJSON *args, const int *fds, int nfds, cJSON **ret);
/* Same, for a caller-written command object; *reply owns the whole reply. */
int qmp_call_json(struct qmp *q, cJSON *cmd, cJSON **reply);

/* Next event (caller frees), waiting up to timeout_ms: 1 event, 0 none. */
int qmp_event(struct qmp *q, int timeout_ms, cJSON **ev);
/* Wait for input without consuming it (for poll loops). */
int qmp_fd(const struct qmp *q);
/* Read what is available without blocking, queuing events: 0, or -1 when
 * QEMU has closed the connection. */
int qmp_pump(struct qmp *q);

/* True if the QEMU behind q is at least major.minor. */
static inline int qmp_at_least(const struct qmp *q, int major, int minor)
{
	return q->version[0] > major || (q->version[0] == major && q->version[1] >= minor);
}

/* Small accessors for replies. */
const char *qmp_str(const cJSON *obj, const char *key);
long long qmp_int(const cJSON *obj, const char *key, long long dflt);
int qmp_bool(const cJSON *obj, const char *key, int dflt);

#endif
