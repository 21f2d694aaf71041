/* snap_save.h: what the steps of a save share (private to snap_save.c,
 * snap_preflight.c and snap_recover.c). */
#ifndef VMSNAP_SNAP_SAVE_H
#define VMSNAP_SNAP_SAVE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "conf.h"
#include "image.h"
#include "qmp.h"
#include "snap.h"
#include "storage.h"
#include "vm.h"

struct sig_stream;

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
	long long fdset;
	char ram[CONF_PATH_MAX + 8]; /* instant mode: the RAM file */
	char old_ram[4200];          /* the RAM file of the golden image being replaced */
};

/* Before the stop (snap_preflight.c): what QEMU says about the VM, and every
 * check that can refuse. */
int save_query_vm(struct save *s);
int save_preflight(struct save *s, const char *target);
void save_note_old_ram(struct save *s, const char *target);

/* After a failure (snap_recover.c): put the VM back as it was. */
enum after { VM_UNTOUCHED, VM_RUNNING_AGAIN, VM_PAUSED, VM_GONE };
enum after save_roll_back(struct save *s);
/* When the target's file system filled up, add how full it is to msg. */
void save_explain_full(struct save *s, char *msg, size_t size);

#endif
