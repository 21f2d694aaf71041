/* snap: the two flows everything else is built on: save a running VM into
 * an image, restore an image into a running VM. Used by the save/restore
 * commands, the power-fail watcher, boot-time resume and the console. */
#ifndef VMSNAP_SNAP_H
#define VMSNAP_SNAP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "conf.h"

struct save_opts {
	int version;         /* 2 or 3 */
	unsigned channels;   /* v3; 0: one per usable CPU */
	bool bypass_cache;
	bool insisted;       /* --bypass-cache given: no silent fallback */
	bool keep_running;   /* leave QEMU running after the save */
	bool golden;         /* mark the image reusable */
	bool progress;       /* a progress line a second */
	const char *sign_key; /* private key, or NULL */
};

/* Milliseconds spent in each phase, for people and the benchmark. */
struct snap_times {
	uint64_t total, migrate, sync, digest, qemu_start, qemu_exit;
	uint64_t ram_sync; /* instant mode: the RAM file's dirty pages */
};

/* The payload digest's phase: bytes covered, of them read (holes are not;
 * hashed in flight counts as read), and where they came from. */
struct snap_digest {
	uint64_t bytes, read;
	uint64_t early;   /* of read, hashed while QEMU still wrote (save) */
	uint64_t memory;  /* hashed from QEMU's memory instead of read (save) */
	uint64_t ms;      /* hashing time (in flight: alongside the stream) */
	const char *from; /* "page cache", "disk", "in flight", "memory", or NULL: none */
};

struct save_result {
	struct snap_times t;
	struct snap_digest digest;
	uint64_t ram_size, stream_length, image_size;
	unsigned channels;
	int version; /* 4 when the VM was in instant mode */
	bool direct_io;
	bool signed_;
	char not_resumed[200]; /* --keep-running: why the VM did not resume ("" it did) */
	/* snap_cancel arrived after the image was committed: it was recorded
	 * consumed (never restored) and the VM runs on instead of quitting. */
	bool consumed_running;
};

int snap_save(const struct conf *c, const char *name, const char *target,
	      const struct save_opts *o, struct save_result *res);
/* Power returned: the saves of this process stop (async-signal-safe, for a
 * signal handler; for good: a process saves once per power failure). Before
 * the image is committed, a save fails with "cancelled", removes what it
 * wrote and resumes the VM, within a second (a sync in progress finishes
 * first); after, the image is recorded consumed and the VM runs on. */
void snap_cancel(void);

struct restore_opts {
	const char *name;     /* run under this name instead of the image's */
	const char *vm_file;  /* use this definition instead of the embedded one */
	const char *pubkey;   /* verify with this key instead of trusted_keys */
	int running;          /* 1 --running, 0 --paused, -1 as saved */
	unsigned channels;    /* v3; 0: one per usable CPU */
	bool bypass_cache;
	bool insisted;
	bool own_image;       /* resume: the image must be VM name's own (header name) */
	bool again;           /* restore --again: a consumed or older resume-once image too */
	bool progress;
};

struct restore_result {
	struct snap_times t;
	struct snap_digest digest;
	char name[64];
	bool running;
	bool golden;
	int version;
	unsigned channels;
	bool direct_io;
	uint64_t ram_size, stream_length;
	/* The guest's clock after cont (snap_guest.c): "set", "no agent", "off"
	 * (guest_time_sync = no), "paused", or "failed: WHY"; when not set, how
	 * far behind it is, about (seconds since the image was saved). */
	char guest_time[240];
	long long clock_behind_s;
	uint64_t guest_time_ms; /* spent setting it (after t.total) */
	char genid[40];         /* the VM generation ID QEMU was given ("": no vmgenid) */
};

int snap_restore(const struct conf *c, const char *image, const struct restore_opts *o,
		 struct restore_result *res);

/* A save that dies half-way (kill -9, OOM) may leave QEMU migrating into its
 * temp file, an fdset holding that file (and its lock), and the VM paused.
 * snap_recover, run by the next save with the VM lock held, undoes all of it
 * as the dead save's roll-back would have: the VM is resumed only if the mark
 * says a save stopped it, so it is saved as running. */
struct qmp;
int snap_recover(const struct conf *c, const char *name, struct qmp *q, pid_t qemu);
/* Mark VM name as stopped by a save (qemu: its QEMU's pid), or clear it (0). */
void snap_stop_mark(const struct conf *c, const char *name, pid_t qemu);
/* cont, retried while QEMU still finishes a cancelled migration. */
int snap_cont(struct qmp *q);

/* After cont: set the guest's clock through its agent (d has the agent's
 * port, conf allows it), or say once how far behind it is and how to fix
 * that. Never fails: res->guest_time says what happened. */
struct vm_def;
void snap_guest_time(const struct conf *c, const char *name, const struct vm_def *d,
		     uint64_t created, struct restore_result *res);

/* Channels for a v3 save or restore: requested, else usable CPUs, capped. */
unsigned snap_channels(unsigned requested);

#endif
