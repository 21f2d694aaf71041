/* snap_save.h: what the steps of a save share (private to snap_save.c,
 * snap_preflight.c and snap_recover.c). */
#ifndef VMSNAP_SNAP_SAVE_H
#define VMSNAP_SNAP_SAVE_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "conf.h"
#include "image.h"
#include "qemu_mem.h"
#include "qmp.h"
#include "snap.h"
#include "storage.h"
#include "vm.h"

struct sig_stream;
struct sig_early;
struct sig_ahead;

struct save {
	const struct conf *c;
	const char *name;
	const struct save_opts *o;
	struct save_result *res;
	struct vm_paths paths;
	struct qmp q;
	struct stor_target t;
	struct img_header h;
	char *def;
	size_t def_len;
	pid_t pid;
	uint64_t plugged; /* hotplugged RAM (DIMMs), beyond h.ram_size */
	bool stopped, migrating;
	bool file_uri; /* QEMU writes the image itself (file:/dev/fdset) */
	int pipe[2];
	struct sig_stream *hash; /* v2 O_DIRECT relay of a signed save: hashed in flight */
	struct sig_early *early; /* file: transport of a signed save: hashed as QEMU writes */
	int early_fd;            /* what it reads through */
	bool sent_once;          /* QEMU's counts: every RAM page sent exactly once */
	struct qemu_mem mem;     /* signed v3: QEMU's main RAM block, */
	struct sig_ahead *ahead; /* hashed from it while QEMU writes */
	long long fdset;
	char ram[CONF_PATH_MAX + 8]; /* instant mode: the RAM file */
	char old_ram[PATH_MAX];          /* the RAM file of the golden image being replaced */
};

/* Before the stop (snap_preflight.c): what QEMU says about the VM, and every
 * check that can refuse. */
int snap_save_query_vm(struct save *s);
int snap_save_preflight(struct save *s, const char *target);
void snap_save_note_old_ram(struct save *s, const char *target);

/* The payload digest (snap_save_digest.c): a signed v3 save's way (QEMU's
 * memory, or for --bypass-cache the page cache), chosen before the stop; hashing while QEMU
 * writes, started with it; the digest into s->h once QEMU has finished. */
void snap_save_digest_plan(struct save *s);
void snap_save_start_early(struct save *s);
int snap_save_digest(struct save *s);

/* After a failure (snap_recover.c): put the VM back as it was, and add to
 * the pending error how it was left (and, on a full file system, how full). */
void snap_save_fail(struct save *s);

#endif
