/* mig: the QMP side of a migration to or from an image: capabilities and
 * parameters, fd passing (getfd, fdsets), and the wait loop that watches
 * QEMU's MIGRATION events while a v2 relay moves the stream. */
#ifndef VMSNAP_MIG_H
#define VMSNAP_MIG_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "qmp.h"
#include "relay.h"

struct mig_opts {
	int version;       /* 2: sequential stream; 3: mapped-ram + multifd */
	unsigned channels; /* v3: multifd channels */
	bool direct_io;    /* v3: QEMU opens page I/O with O_DIRECT */
	bool incoming;
	/* Set (by a signal handler) to stop waiting: mig_wait fails with
	 * "cancelled" within its 250 ms poll. NULL: never. */
	const volatile sig_atomic_t *cancel;
};

struct mig_stats {
	uint64_t qemu_ms;     /* QEMU's total-time (save) or our own measure (restore) */
	uint64_t transferred; /* RAM bytes QEMU reports */
	uint64_t ram_total;
	uint64_t pages_normal, pages_zero, page_size; /* pages QEMU sent: a page sent twice shows */
};

/* Can QEMU read or write the image itself through file:/dev/fdset (no relay)?
 * v3 always; a sequential stream when the image is a regular file without
 * O_DIRECT (QEMU >= 8.2 has the file: transport; O_DIRECT needs aligned I/O,
 * which only the relay or mapped-ram give). */
bool mig_file_transport(const struct qmp *q, int version, bool regular_file, bool direct);

/* 1 if QEMU offers the migration capability `cap`, 0 if not, -1 error. */
int mig_has_cap(struct qmp *q, const char *cap);
int mig_setup(struct qmp *q, const struct mig_opts *o);
/* Hand fds to QEMU as one fdset; *fdset gets its id. */
int mig_add_fdset(struct qmp *q, const int *fds, int nfds, long long *fdset);
void mig_remove_fdset(struct qmp *q, long long fdset);
/* Hand one fd to QEMU under a name (for fd: URIs). */
int mig_getfd(struct qmp *q, int fd, const char *name);
/* migrate or migrate-incoming to uri. */
int mig_start(struct qmp *q, const struct mig_opts *o, const char *uri);
/* Until QEMU reports completed (and the relay, if any, is finished).
 * progress: print a line a second (bytes, MB/s, percent of ram_size). */
int mig_wait(struct qmp *q, const struct mig_opts *o, struct relay *r, uint64_t ram_size,
	     bool progress, struct mig_stats *st);
/* After a failure: cancel an outgoing migration that may still run. */
void mig_cancel(struct qmp *q);
/* Before a save, with the VM lock held: what a vmsnap that died mid-save left
 * in QEMU. A migration still running is cancelled (and waited for), fdsets
 * of vmsnap images are removed. 1 if anything was left, 0 if not, -1 error. */
int mig_reset(struct qmp *q);

#endif
