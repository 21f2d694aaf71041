/* qemu_mem: a QEMU's main RAM block read through /proc/PID/mem, for the
 * payload digest of a signed v3 save and the check of a v3 restore. */
#ifndef VMSNAP_QEMU_MEM_H
#define VMSNAP_QEMU_MEM_H

#include <stdint.h>
#include <sys/types.h>

#include "qmp.h"

struct qemu_mem {
	int fd;         /* /proc/PID/mem, read-only; -1: none */
	uint64_t at;    /* where the block starts in it */
	char block[64]; /* its id ("pc.ram") */
};

/* The host address of guest-physical 0 (x86) or 0x40000000 (arm virt),
 * where the main RAM block starts (HMP gpa2hva names the block), opened and
 * probed. 0 when it can be read; -1 if not (m->fd stays -1; err may be set:
 * the caller goes on without). */
int qemu_mem_open(struct qmp *q, pid_t pid, struct qemu_mem *m);
void qemu_mem_close(struct qemu_mem *m);

#endif
