/* fuzz_qmp: QMP reply handling: the input is everything "QEMU" sends on the
 * socket (greeting, replies, events); vmsnap's client side of a v3 restore
 * and of a v2 save runs against it (qmp.c and mig.c). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "err.h"
#include "mig.h"
#include "qmp.h"
#include "util.h"

/* A socketpair whose far end holds the input, then EOF; the fds vmsnap
 * passes to "QEMU" queue up there unread. */
static int fq_peer(const uint8_t *data, size_t size, int *peer)
{
	int sv[2], big = 1 << 20;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		abort();
	setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
	setsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
	if (size && write_all(sv[1], data, size) < 0)
		abort();
	shutdown(sv[1], SHUT_WR);
	*peer = sv[1];
	return sv[0];
}

static void fq_drain(struct qmp *q)
{
	cJSON *ev;

	while (qmp_event(q, 0, &ev) > 0)
		cJSON_Delete(ev);
	qmp_pump(q);
}

/* snap_restore's QMP side for a v3 image with direct-io. */
static void fq_restore(struct qmp *q)
{
	struct mig_opts o = { .version = 3, .channels = 2, .direct_io = true, .incoming = true };
	int fds[2] = { 0, 1 }; /* any fds: they are only passed */
	struct mig_stats st;
	long long fdset;

	if (mig_setup(q, &o) < 0 || mig_add_fdset(q, fds, 2, &fdset) < 0)
		return;
	if (mig_start(q, &o, "file:/dev/fdset/0,offset=8192") == 0)
		mig_wait(q, &o, NULL, 256u << 20, false, &st);
	mig_remove_fdset(q, fdset);
	qmp_call(q, "cont", NULL, NULL, 0, NULL);
}

/* snap_save's QMP side for a v2 image. */
static void fq_save(struct qmp *q)
{
	struct mig_opts o = { .version = 2, .channels = 1 };
	struct mig_stats st;
	cJSON *ret = NULL;

	if (mig_setup(q, &o) < 0 || mig_getfd(q, 0, "vmsnap-stream") < 0)
		return;
	if (mig_start(q, &o, "fd:vmsnap-stream") == 0 && mig_wait(q, &o, NULL, 256u << 20, false, &st) == 0)
		qmp_call(q, "quit", NULL, NULL, 0, &ret);
	cJSON_Delete(ret);
	if (qmp_call(q, "query-status", NULL, NULL, 0, &ret) == 0) {
		qmp_str(ret, "status");
		qmp_bool(ret, "running", 0);
		cJSON_Delete(ret);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	void (*flows[])(struct qmp *) = { fq_restore, fq_save };
	struct qmp q;

	if (size > 262144)
		return 0;
	for (size_t i = 0; i < 2; i++) {
		int peer, fd = fq_peer(data, size, &peer);
		err_clear();
		if (qmp_attach(&q, fd, "fuzz.qmp", now_ms() + 2000) == 0) {
			if (q.version_str[sizeof(q.version_str) - 1])
				abort();
			flows[i](&q);
			fq_drain(&q);
			qmp_close(&q);
		}
		close(peer);
	}
	return 0;
}
