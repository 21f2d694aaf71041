/* snap_save: save a running VM into an image (see snap.h). The VM is only
 * stopped after every check that can refuse has passed; from then on any
 * failure puts it back as it was and leaves no image claiming completion. */
#include "snap_save.h"
#include "consume.h"
#include "err.h"
#include "image.h"
#include "instant.h"
#include "log.h"
#include "mig.h"
#include "qmp.h"
#include "relay.h"
#include "sign.h"
#include "storage.h"
#include "util.h"
#include "verify.h"
#include "vm.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t cancelled;

void snap_cancel(void)
{
	cancelled = 1;
}

/* Between the steps of a save: nothing committed yet, so a cancel fails it
 * (the failure path resumes the VM and removes what was written). */
static int check_cancel(void)
{
	return cancelled ? err_set(EXIT_FAIL, "cancelled: power returned") : 0;
}

unsigned snap_channels(unsigned requested)
{
	unsigned n = requested ? requested : (unsigned)usable_cpus();

	return n > CONFIG_MAX_CHANNELS ? CONFIG_MAX_CHANNELS : n;
}

static int write_prologue(struct save *s)
{
	uint8_t hdr[IMG_HEADER_SIZE];
	size_t padded = ALIGN_UP(s->def_len, IMG_ALIGN);
	char *def = calloc(1, padded);

	if (!def)
		return err_sys(EXIT_FAIL, "saving");
	memcpy(def, s->def, s->def_len);
	img_encode(&s->h, hdr);
	if (pwrite_all(s->t.fd, hdr, sizeof(hdr), 0) < 0 ||
	    pwrite_all(s->t.fd, def, padded, IMG_HEADER_SIZE) < 0) {
		free(def);
		return err_sys(EXIT_FAIL, "writing %s", s->t.path);
	}
	free(def);
	/* A block device is written in place: its "in progress" header must be
	 * on the disk before any of the new stream is, or a power cut could
	 * leave an earlier image's complete header over a half-new stream (an
	 * O_DIRECT stream reaches the disk at once; buffered pages in any order). */
	if (s->t.kind == STOR_BLK && fdatasync(s->t.fd) < 0)
		return err_sys(EXIT_FAIL, "syncing the header of %s", s->t.path);
	return 0;
}

static int migrate(struct save *s, struct mig_stats *st)
{
	struct mig_opts mo = {
		.version = (int)s->h.version,
		.channels = s->h.channels,
		.direct_io = s->h.version == 3 && s->t.dfd >= 0,
		.cancel = &cancelled,
	};
	struct relay r;
	char uri[96];
	int rc;

	if (mig_setup(&s->q, &mo) < 0)
		return -1;
	if (s->file_uri) {
		int fds[2] = { s->t.fd, s->t.dfd };
		if (mig_add_fdset(&s->q, fds, s->t.dfd >= 0 ? 2 : 1, &s->fdset) < 0)
			return -1;
		snprintf(uri, sizeof(uri), "file:/dev/fdset/%lld,offset=%llu", s->fdset,
			 (unsigned long long)s->h.stream_offset);
		s->migrating = true;
		snap_save_start_early(s);
		if (mig_start(&s->q, &mo, uri) < 0)
			return -1;
		rc = mig_wait(&s->q, &mo, NULL, s->h.ram_size, s->o->progress, st);
		s->sent_once = st->page_size && st->ram_total &&
			       st->pages_normal + st->pages_zero == st->ram_total / st->page_size;
		log_debug("QEMU sent %llu + %llu zero pages of %llu bytes each, RAM %llu bytes",
			  (unsigned long long)st->pages_normal, (unsigned long long)st->pages_zero,
			  (unsigned long long)st->page_size, (unsigned long long)st->ram_total);
		return rc;
	}
	if (pipe2(s->pipe, O_CLOEXEC) < 0)
		return err_sys(EXIT_FAIL, "pipe");
	rc = mig_getfd(&s->q, s->pipe[1], "vmsnap-stream");
	close(s->pipe[1]); /* QEMU has its copy; EOF comes when it closes it */
	s->pipe[1] = -1;
	/* O_DIRECT relay of a signed save: nothing of the stream stays in the
	 * cache, so it is hashed on its way through instead of read back. */
	if (rc < 0 || (s->o->sign_key && s->t.dfd >= 0 && !(s->hash = sig_stream_new(SIG_CHUNK))))
		return -1;
	if (relay_init(&r, RELAY_SAVE, s->pipe[0], s->t.dfd >= 0 ? s->t.dfd : s->t.fd, s->t.dfd >= 0,
		       s->h.stream_offset, s->t.kind == STOR_BLK ? s->t.size : 0, s->t.path) < 0)
		return -1;
	r.hash = s->hash;
	s->migrating = true;
	rc = mig_start(&s->q, &mo, "fd:vmsnap-stream");
	if (rc == 0)
		rc = mig_wait(&s->q, &mo, &r, s->h.ram_size, s->o->progress, st);
	s->h.stream_length = r.done;
	relay_free(&r);
	return rc;
}

static int finish(struct save *s)
{
	uint8_t hdr[IMG_HEADER_SIZE];
	struct stat st;
	uint64_t t;

	if (s->h.version == IMG_VERSION_INSTANT) {
		t = now_ms();
		if (inst_sync(s->ram) < 0)
			return -1;
		s->res->t.ram_sync = now_ms() - t;
		if (inst_reference(&s->h, s->ram, s->t.path, s->o->golden) < 0)
			return -1;
	}
	if (s->file_uri) {
		if (fstat(s->t.fd, &st) < 0)
			return err_sys(EXIT_FAIL, "%s", s->t.path);
		if ((uint64_t)st.st_size <= s->h.stream_offset)
			return err_set(EXIT_FAIL, "QEMU wrote no stream to %s", s->t.path);
		s->h.stream_length = (uint64_t)st.st_size - s->h.stream_offset;
	} else if (s->t.kind == STOR_REG && s->t.dfd >= 0 &&
		   ftruncate(s->t.fd, (off_t)(s->h.stream_offset + s->h.stream_length)) < 0) {
		return err_sys(EXIT_FAIL, "trimming %s", s->t.path); /* drop the O_DIRECT tail padding */
	}
	if (s->o->sign_key) {
		int rc;
		t = now_ms();
		rc = snap_save_digest(s);
		if (rc == 0 && s->h.version == IMG_VERSION_INSTANT)
			rc = inst_digest(s->ram, s->h.ram_bytes, s->h.ram_digest);
		if (rc < 0)
			return -1;
		s->res->t.digest = now_ms() - t;
		if (sig_sign_header(&s->h, s->o->sign_key) < 0)
			return -1;
		s->res->signed_ = true;
	}
	if (check_cancel() < 0)
		return -1;
	s->h.state = IMG_COMPLETE;
	img_encode(&s->h, hdr);
	t = now_ms();
	if (stor_commit(&s->t, hdr) < 0)
		return -1;
	s->res->t.sync = now_ms() - t;
	return 0;
}

/* The VM's lock, its QEMU and the definition it runs with: a save needs all three. */
static int attach(struct save *s, int *lock)
{
	if (vm_paths(s->c, s->name, &s->paths) < 0 || (*lock = vm_lock(s->c, s->name)) < 0)
		return -1;
	s->pid = vm_pid(s->c, s->name);
	if (!s->pid)
		return err_set(EXIT_USAGE, "VM '%s' is not running (start it with: vmsnap run %s)",
			       s->name, s->name);
	if (read_file(s->paths.def, IMG_DEF_MAX, &s->def, &s->def_len) < 0)
		return err_wrap("VM '%s' has no launch definition", s->name);
	if (s->o->golden) {
		char what[CONF_NAME_MAX + 48];
		snprintf(what, sizeof(what), "golden image of VM '%s'", s->name);
		vm_def_genid_warn(s->def, s->def_len, what);
	}
	return 0;
}

static void header_init(struct save *s)
{
	const struct save_opts *o = s->o;

	s->h.version = (uint32_t)o->version;
	s->h.state = IMG_PARTIAL;
	s->h.created = cons_created(s->c, s->name, (uint64_t)time(NULL));
	s->h.def_offset = IMG_HEADER_SIZE;
	s->h.def_length = s->def_len;
	s->h.stream_offset = img_stream_offset(s->def_len);
	s->h.channels = o->version == 3 ? snap_channels(o->channels) : 1;
	if (o->golden)
		s->h.flags |= IMG_F_GOLDEN;
	str_copy(s->h.name, sizeof(s->h.name), s->name);
	sig_sha256(s->def, s->def_len, s->h.def_digest);
}

/* What QEMU says about the VM, after undoing what a dead save left in it;
 * a VM in instant mode gets a v4 image whatever the format asked. */
static int inspect_vm(struct save *s)
{
	int ram;

	if (qmp_connect(&s->q, s->paths.qmp, QMP_TIMEOUT_MS) < 0 ||
	    snap_recover(s->c, s->name, &s->q, s->pid) < 0 || snap_save_query_vm(s) < 0 ||
	    (ram = inst_detect(&s->q, s->ram, sizeof(s->ram))) < 0)
		return -1;
	if (ram == INST_SHARED) { /* instant mode: a small stream, the RAM stays in its file */
		s->h.version = IMG_VERSION_INSTANT;
		s->h.channels = 1;
	}
	if (ram != INST_NONE)
		s->h.flags |= IMG_F_RAM_BACKEND;
	return 0;
}

/* Every check, then the target with its "in progress" header: still
 * nothing changed for the VM. */
static int open_target(struct save *s, const char *target)
{
	bool instant = s->h.version == IMG_VERSION_INSTANT;

	if (snap_save_preflight(s, target) < 0)
		return -1;
	if (instant)
		snap_save_note_old_ram(s, target);
	if (stor_create(&s->t, target, s->o->bypass_cache && !instant, s->o->insisted) < 0)
		return -1;
	snap_save_digest_plan(s);
	if (s->t.dfd >= 0)
		s->h.flags |= IMG_F_DIRECT_IO;
	s->file_uri = mig_file_transport(&s->q, (int)s->h.version, s->t.kind == STOR_REG,
					 s->t.dfd >= 0);
	return write_prologue(s);
}

/* A running VM is paused for a consistent stream; the mark lets the next
 * save resume it should this one die. */
static int stop_vm(struct save *s)
{
	if (!(s->h.flags & IMG_F_WAS_RUNNING))
		return 0;
	snap_stop_mark(s->c, s->name, s->pid);
	if (qmp_call(&s->q, "stop", NULL, NULL, 0, NULL) < 0) {
		snap_stop_mark(s->c, s->name, 0);
		return -1;
	}
	s->stopped = true;
	stor_crash_point("after-stop"); /* VM paused, no migration yet */
	return 0;
}

/* Everything that can fail, from the first question to QEMU to the image
 * committed with its complete header. */
static int save_steps(struct save *s, const char *target)
{
	struct mig_stats st;

	if (check_cancel() < 0 || inspect_vm(s) < 0 || open_target(s, target) < 0 ||
	    check_cancel() < 0 || stop_vm(s) < 0 || migrate(s, &st) < 0 || finish(s) < 0)
		return -1;
	s->res->t.migrate = st.qemu_ms;
	return 0;
}

/* Power returned after the commit: rather than quit and restore later, the
 * VM runs on, and its image, which it is about to leave behind, is recorded
 * consumed first (synced), so no boot replays it against moved-on disks. If
 * that fails the save ends as usual (QEMU quits; resume restores it). */
static void consume_and_run(struct save *s)
{
	if (cons_record(s->c, s->t.fd, &s->h, s->t.path) < 0) {
		log_warn("VM '%s': power returned, but its image could not be recorded consumed (%s): quitting as saved",
			 s->name, err_msg());
		err_clear();
		return;
	}
	s->res->consumed_running = true;
}

/* The image is complete: the VM runs on (--keep-running) or QEMU quits. A
 * VM that does not resume is told in the result; the image stands. */
static void leave_vm(struct save *s)
{
	uint64_t t = now_ms();

	s->migrating = false;
	if (s->fdset >= 0) {
		mig_remove_fdset(&s->q, s->fdset);
		s->fdset = -1;
	}
	if (cancelled && !s->o->keep_running && !s->o->golden)
		consume_and_run(s);
	if (s->o->keep_running || s->res->consumed_running) {
		if (s->stopped && qmp_call(&s->q, "cont", NULL, NULL, 0, NULL) < 0)
			str_trunc(s->res->not_resumed, sizeof(s->res->not_resumed), err_msg());
		else
			snap_stop_mark(s->c, s->name, 0);
		return;
	}
	if (qmp_call(&s->q, "quit", NULL, NULL, 0, NULL) < 0)
		log_debug("quit: %s", err_msg());
	if (vm_wait_gone(s->pid, 10000) < 0) {
		log_warn("QEMU of VM '%s' (pid %d) did not exit after quit", s->name, (int)s->pid);
	} else {
		vm_cleanup(s->c, s->name);
		snap_stop_mark(s->c, s->name, 0);
	}
	s->res->t.qemu_exit = now_ms() - t;
}

static void fill_result(const struct save *s, struct save_result *res)
{
	res->ram_size = s->h.ram_size;
	res->stream_length = s->h.stream_length;
	res->image_size = s->h.stream_offset + s->h.stream_length;
	res->channels = s->h.channels;
	res->version = (int)s->h.version;
	res->direct_io = s->t.dfd >= 0;
}

/* RAM files of golden instant images: a failed save removes the link it
 * made; a successful one the replaced image's file, unless it is this one. */
static void tidy_ram_files(struct save *s, bool ok)
{
	char link[PATH_MAX];
	struct stat st;

	if (!ok) {
		if (s->h.version == IMG_VERSION_INSTANT && s->o->golden && s->h.ram_path[0] &&
		    inst_resolve(&s->h, s->t.path, link, sizeof(link)) == 0)
			unlink(link);
	} else if (s->old_ram[0] && stat(s->old_ram, &st) == 0 &&
		   (uint64_t)st.st_ino != s->h.ram_ino) {
		unlink(s->old_ram);
	}
}

static void release(struct save *s, int lock)
{
	sig_early_free(s->early); /* its threads stopped before the file closes */
	sig_ahead_free(s->ahead);
	if (s->early_fd >= 0)
		close(s->early_fd);
	qemu_mem_close(&s->mem);
	stor_close(&s->t);
	sig_stream_free(s->hash);
	if (s->pipe[0] >= 0)
		close(s->pipe[0]);
	qmp_close(&s->q);
	free(s->def);
	if (lock >= 0)
		close(lock);
	free(s);
}

int snap_save(const struct conf *c, const char *name, const char *target,
	      const struct save_opts *o, struct save_result *res)
{
	struct save *s = calloc(1, sizeof(*s)); /* large: off the stack */
	uint64_t t0 = now_ms();
	int lock = -1, rc = -1;

	memset(res, 0, sizeof(*res));
	if (!s)
		return err_sys(EXIT_FAIL, "saving VM '%s'", name);
	*s = (struct save){ .c = c, .name = name, .o = o, .res = res, .q = { .fd = -1 },
			    .t = { .fd = -1, .dfd = -1 }, .pipe = { -1, -1 }, .fdset = -1,
			    .early_fd = -1, .mem = { .fd = -1 } };
	if (attach(s, &lock) < 0) {
		release(s, lock);
		return -1;
	}
	header_init(s);
	if (save_steps(s, target) == 0) {
		leave_vm(s);
		fill_result(s, res);
		rc = 0;
	} else {
		snap_save_fail(s);
	}
	tidy_ram_files(s, rc == 0);
	release(s, lock);
	res->t.total = now_ms() - t0;
	return rc;
}
