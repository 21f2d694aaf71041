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
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>


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
		if (mig_start(&s->q, &mo, uri) < 0)
			return -1;
		return mig_wait(&s->q, &mo, NULL, s->h.ram_size, s->o->progress, st);
	}
	if (pipe2(s->pipe, O_CLOEXEC) < 0)
		return err_sys(EXIT_FAIL, "pipe");
	rc = mig_getfd(&s->q, s->pipe[1], "vmsnap-stream");
	close(s->pipe[1]); /* QEMU has its copy; EOF comes when it closes it */
	s->pipe[1] = -1;
	if (rc < 0)
		return -1;
	if (relay_init(&r, RELAY_SAVE, s->pipe[0], s->t.dfd >= 0 ? s->t.dfd : s->t.fd, s->t.dfd >= 0,
		       s->h.stream_offset, s->t.kind == STOR_BLK ? s->t.size : 0, s->t.path) < 0)
		return -1;
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

	if (s->h.version == 4) {
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
		/* Read the stream back through an fd of its own: QEMU's are write-only. */
		int rfd = open(s->t.kind == STOR_REG ? s->t.tmp : s->t.path, O_RDONLY | O_CLOEXEC);
		int rc;
		if (rfd < 0)
			return err_sys(EXIT_FAIL, "reading back %s", s->t.path);
		t = now_ms();
		s->h.digest_chunk = SIG_CHUNK;
		rc = sig_payload_digest(rfd, s->h.stream_offset, s->h.stream_length, SIG_CHUNK,
					usable_cpus(), s->h.payload_digest);
		close(rfd);
		if (rc == 0 && s->h.version == 4)
			rc = inst_digest(s->ram, s->h.ram_bytes, s->h.ram_digest);
		if (rc < 0)
			return -1;
		s->res->t.digest = now_ms() - t;
		if (vfy_sign_header(&s->h, s->o->sign_key) < 0)
			return -1;
		s->res->signed_ = true;
	}
	s->h.state = IMG_COMPLETE;
	img_encode(&s->h, hdr);
	t = now_ms();
	if (stor_commit(&s->t, hdr) < 0)
		return -1;
	s->res->t.sync = now_ms() - t;
	return 0;
}

int snap_save(const struct conf *c, const char *name, const char *target,
	      const struct save_opts *o, struct save_result *res)
{
	struct save s = { .c = c, .name = name, .o = o, .res = res, .pipe = { -1, -1 }, .fdset = -1 };
	uint64_t t0 = now_ms();
	char saved_err[600];
	int saved_code, lock, rc = -1;
	struct mig_stats st;

	memset(res, 0, sizeof(*res));
	s.t.fd = s.t.dfd = -1;
	if (vm_paths(c, name, &s.paths) < 0 || (lock = vm_lock(c, name)) < 0)
		return -1;
	s.pid = vm_pid(c, name);
	if (!s.pid) {
		close(lock);
		return err_set(EXIT_USAGE, "VM '%s' is not running (start it with: vmsnap run %s)", name, name);
	}
	if (read_file(s.paths.def, IMG_DEF_MAX, &s.def, &s.def_len) < 0) {
		close(lock);
		return err_wrap("VM '%s' has no launch definition", name);
	}
	s.h.version = (uint32_t)o->version;
	s.h.state = IMG_PARTIAL;
	s.h.created = cons_created(c, name, (uint64_t)time(NULL));
	s.h.def_offset = IMG_HEADER_SIZE;
	s.h.def_length = s.def_len;
	s.h.stream_offset = img_stream_offset(s.def_len);
	s.h.channels = o->version == 3 ? snap_channels(o->channels) : 1;
	if (o->golden)
		s.h.flags |= IMG_F_GOLDEN;
	str_copy(s.h.name, sizeof(s.h.name), name);
	sig_sha256(s.def, s.def_len, s.h.def_digest);

	if (qmp_connect(&s.q, s.paths.qmp, QMP_TIMEOUT_MS) < 0)
		goto out;
	if (snap_recover(c, name, &s.q, s.pid) < 0 || save_query_vm(&s) < 0 ||
	    (rc = inst_detect(&s.q, s.ram, sizeof(s.ram))) < 0)
		goto out;
	if (rc == INST_SHARED) { /* instant mode: a small stream, the RAM stays in its file */
		s.h.version = 4;
		s.h.channels = 1;
	}
	if (rc != INST_NONE)
		s.h.flags |= IMG_F_RAM_BACKEND;
	rc = -1;
	if (save_preflight(&s, target) < 0)
		goto out;
	if (s.h.version == 4)
		save_note_old_ram(&s, target);
	if (stor_create(&s.t, target, o->bypass_cache && s.h.version != 4, o->insisted) < 0)
		goto out;
	if (s.t.dfd >= 0)
		s.h.flags |= IMG_F_DIRECT_IO;
	s.file_uri = mig_file_transport(&s.q, (int)s.h.version, s.t.kind == STOR_REG, s.t.dfd >= 0);
	if (write_prologue(&s) < 0)
		goto out;

	if (s.h.flags & IMG_F_WAS_RUNNING) {
		snap_stop_mark(c, name, s.pid);
		if (qmp_call(&s.q, "stop", NULL, NULL, 0, NULL) < 0) {
			snap_stop_mark(c, name, 0);
			goto out;
		}
		s.stopped = true;
		stor_crash_point("after-stop"); /* VM paused, no migration yet */
	}
	if (migrate(&s, &st) < 0 || finish(&s) < 0)
		goto out;
	res->t.migrate = st.qemu_ms;
	s.migrating = false;
	if (s.fdset >= 0) {
		mig_remove_fdset(&s.q, s.fdset);
		s.fdset = -1;
	}
	if (o->keep_running) {
		if (s.stopped && qmp_call(&s.q, "cont", NULL, NULL, 0, NULL) < 0)
			log_error("image saved, but VM '%s' did not resume: %s", name, err_msg());
		else
			snap_stop_mark(c, name, 0);
	} else {
		uint64_t t = now_ms();
		if (qmp_call(&s.q, "quit", NULL, NULL, 0, NULL) < 0)
			log_debug("quit: %s", err_msg());
		if (vm_wait_gone(s.pid, 10000) < 0) {
			log_warn("QEMU of VM '%s' (pid %d) did not exit after quit", name, (int)s.pid);
		} else {
			vm_cleanup(c, name);
			snap_stop_mark(c, name, 0);
		}
		res->t.qemu_exit = now_ms() - t;
	}
	res->ram_size = s.h.ram_size;
	res->stream_length = s.h.stream_length;
	res->image_size = s.h.stream_offset + s.h.stream_length;
	res->channels = s.h.channels;
	res->version = (int)s.h.version;
	res->direct_io = s.t.dfd >= 0;
	rc = 0;
out:
	if (rc < 0) {
		enum after after = VM_UNTOUCHED;
		char gone[160];
		str_copy(saved_err, sizeof(saved_err), err_msg());
		saved_code = err_code();
		save_explain_full(&s, saved_err, sizeof(saved_err));
		if (s.q.fd > 0)
			after = save_roll_back(&s);
		snprintf(gone, sizeof(gone), "; QEMU of VM '%s' is gone: start it again with vmsnap run %s",
			 name, name);
		err_set(saved_code, "%s%s", saved_err,
			after == VM_GONE ? gone :
			after == VM_RUNNING_AGAIN ? "; the VM is running again" :
			after == VM_PAUSED ? "; the VM stays paused (a new save resumes it first)" : "");
		if (s.h.version == 4 && o->golden && s.h.ram_path[0] &&
		    inst_resolve(&s.h, s.t.path, s.old_ram, sizeof(s.old_ram)) == 0)
			unlink(s.old_ram); /* the link this save made */
	} else if (s.old_ram[0]) {
		struct stat old;
		/* The replaced golden image's RAM file, unless it is this one. */
		if (stat(s.old_ram, &old) == 0 && (uint64_t)old.st_ino != s.h.ram_ino)
			unlink(s.old_ram);
	}
	stor_close(&s.t);
	if (s.pipe[0] >= 0)
		close(s.pipe[0]);
	qmp_close(&s.q);
	free(s.def);
	close(lock);
	res->t.total = now_ms() - t0;
	return rc;
}
