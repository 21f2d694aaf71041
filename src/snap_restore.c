/* snap_restore: start QEMU from an image and resume the guest (snap.h).
 * Every check runs before QEMU reads a byte; the image is opened read-only
 * and a resume-once image is consumed (consume.h) once QEMU has loaded it,
 * before the guest runs. */
#include "snap.h"
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
#include <unistd.h>

/* Which images may run at all: resume restores only the VM's own image (an
 * image of another VM at its path is refused); a resume-once image runs once
 * (restore --again overrides that for an operator who means it). */
static int admit(const struct conf *c, const char *image, const struct restore_opts *o,
		 const struct img_header *h)
{
	if (o->own_image && o->name && strcmp(h->name, o->name))
		return err_set(EXIT_REFUSED, "image %s belongs to VM '%s', not to VM '%s': refused",
			       image, h->name, o->name);
	return o->again ? 0 : cons_check(c, h, image);
}

/* Through the page cache, ask the kernel to read the whole stream ahead at
 * once: large sequential reads instead of the small, scattered ones QEMU's
 * channels make (they share one file description, so one readahead window).
 * Only when the stream and the guest's RAM both fit in available memory, so
 * read-ahead pages are not evicted before QEMU gets to them. */
static void read_ahead(int fd, const struct img_header *h)
{
	char line[128];
	unsigned long long kb = 0;
	FILE *f = fopen("/proc/meminfo", "re");

	if (!f)
		return;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1)
			break;
	fclose(f);
	if (h->stream_length + h->ram_size < kb * 1024)
		posix_fadvise(fd, (off_t)h->stream_offset, (off_t)h->stream_length, POSIX_FADV_WILLNEED);
}

static int load(struct qmp *q, const struct img_header *h, int fd, int dfd, const char *path,
		unsigned channels, bool progress, struct mig_stats *st)
{
	struct stat sb;
	bool regular = fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode);

	if (dfd < 0)
		read_ahead(fd, h);
	struct mig_opts mo = { .version = (int)h->version, .channels = channels,
			       .direct_io = h->version == 3 && dfd >= 0, .incoming = true };
	struct relay r;
	char uri[96];
	int p[2], rc;
	long long fdset;

	if (mig_setup(q, &mo) < 0)
		return -1;
	if (mig_file_transport(q, (int)h->version, regular, dfd >= 0)) {
		int fds[2] = { fd, dfd };
		if (mig_add_fdset(q, fds, dfd >= 0 ? 2 : 1, &fdset) < 0)
			return -1;
		snprintf(uri, sizeof(uri), "file:/dev/fdset/%lld,offset=%llu", fdset,
			 (unsigned long long)h->stream_offset);
		rc = mig_start(q, &mo, uri);
		if (rc == 0)
			rc = mig_wait(q, &mo, NULL, h->ram_size, progress, st);
		mig_remove_fdset(q, fdset);
		return rc;
	}
	if (pipe2(p, O_CLOEXEC) < 0)
		return err_sys(EXIT_FAIL, "pipe");
	rc = mig_getfd(q, p[0], "vmsnap-stream");
	close(p[0]);
	if (rc < 0 || relay_init(&r, RELAY_RESTORE, p[1], dfd >= 0 ? dfd : fd, dfd >= 0,
				 h->stream_offset, h->stream_length, path) < 0) {
		close(p[1]);
		return -1;
	}
	rc = mig_start(q, &mo, "fd:vmsnap-stream");
	if (rc == 0)
		rc = mig_wait(q, &mo, &r, h->ram_size, progress, st);
	close(p[1]);
	relay_free(&r);
	return rc;
}

static int open_direct(const char *path, bool insisted)
{
	int dfd = stor_open_direct(path, O_RDONLY);

	if (dfd >= 0 || errno != EINVAL)
		return dfd >= 0 ? dfd : err_sys(EXIT_FAIL, "opening %s with O_DIRECT", path);
	if (insisted)
		return err_set(EXIT_USAGE,
			       "the file system of %s refuses O_DIRECT (tmpfs or ramfs?): drop --bypass-cache",
			       path);
	log_warn("the file system of %s refuses O_DIRECT; reading through the page cache instead", path);
	return -2;
}

int snap_restore(const struct conf *c, const char *image, const struct restore_opts *o,
		 struct restore_result *res)
{
	struct vfy_opts vo = { .pubkey = o->pubkey, .require_signature = c->require_signature,
			       .verify_payload = c->verify_payload, .allow_consumed = o->again };
	struct vfy_result v = { 0 };
	struct vm_def d = { 0 };
	struct qmp q = { .fd = -1 };
	struct mig_stats st;
	char origin[4200];
	const char *name = NULL;
	int fd = -1, dfd = -1, lock = -1, rc = -1;
	uint64_t size, t0 = now_ms(), t;
	struct inst_args ia;
	const char *const *extra = NULL;
	pid_t pid = 0;
	bool launched = false;

	memset(res, 0, sizeof(*res));
	if (stor_open_image(image, &fd, &size) < 0)
		return -1;
	if (vfy_image(c, fd, size, image, &vo, &v) < 0 || admit(c, image, o, &v.h) < 0)
		goto out;
	res->t.digest = v.digest_ms;
	res->golden = v.h.flags & IMG_F_GOLDEN;
	if (o->vm_file) {
		if (vm_def_load(&d, o->vm_file) < 0 || vm_def_check(&d, c->run_dir) < 0)
			goto out;
	} else {
		snprintf(origin, sizeof(origin), "image %s definition", image);
		if (vm_def_parse(&d, v.def, v.h.def_length, origin, EXIT_REFUSED) < 0 ||
		    vm_def_check(&d, c->run_dir) < 0)
			goto out;
	}
	name = o->name ? o->name : v.h.name;
	if (!conf_name_ok(name)) {
		err_set(o->name ? EXIT_USAGE : EXIT_REFUSED, "VM name '%s' is not valid%s", name,
			o->name ? "" : " (from the image; give --name)");
		goto out;
	}
	str_copy(res->name, sizeof(res->name), name);
	if ((lock = vm_lock(c, name)) < 0)
		goto out;
	if (vm_pid(c, name)) {
		err_set(EXIT_FAIL, "VM '%s' is already running: stop it first or restore with --name", name);
		goto out;
	}
	/* v3: QEMU's page reads use it; v2: the relay reads aligned blocks with it. */
	if (o->bypass_cache && v.h.version != 4 && (dfd = open_direct(image, o->insisted)) == -1)
		goto out;
	if (dfd < 0)
		dfd = -1;

	if (v.h.version == 4) {
		/* Resume-once: the guest continues in its RAM file; golden: every
		 * boot starts from the same pristine file, mapped privately. */
		inst_args(&ia, v.ram_path, v.h.ram_bytes, res->golden);
		extra = ia.argv;
	} else if (v.h.flags & IMG_F_RAM_BACKEND) {
		inst_args_anon(&ia, v.h.ram_size);
		extra = ia.argv;
	}
	t = now_ms();
	if (vm_launch(c, name, &d, extra, true) < 0)
		goto out;
	launched = true;
	pid = vm_pid(c, name);
	{
		struct vm_paths p;
		if (vm_paths(c, name, &p) < 0 || qmp_connect(&q, p.qmp, QMP_TIMEOUT_MS) < 0)
			goto out;
	}
	res->t.qemu_start = now_ms() - t;
	res->version = (int)v.h.version;
	res->channels = v.h.version == 3 ? snap_channels(o->channels) : 1;
	res->direct_io = dfd >= 0;
	res->ram_size = v.h.ram_size;
	res->stream_length = v.h.stream_length;
	if (load(&q, &v.h, fd, dfd, image, res->channels, o->progress, &st) < 0)
		goto out;
	res->t.migrate = st.qemu_ms;
	/* Consumed before the guest runs a single instruction: a crash in
	 * between then costs a cold start, never a replay against moved-on disks. */
	if (cons_record(c, fd, &v.h, image) < 0)
		goto out;
	res->running = o->running >= 0 ? o->running : (v.h.flags & IMG_F_WAS_RUNNING) != 0;
	if (res->running && qmp_call(&q, "cont", NULL, NULL, 0, NULL) < 0)
		goto out;
	res->t.total = now_ms() - t0;
	rc = 0;
out:
	if (rc < 0 && launched) {
		char msg[512];
		int code = err_code();
		str_copy(msg, sizeof(msg), err_msg());
		qmp_close(&q);
		vm_kill(c, name, pid);
		err_set(code, "%s", msg);
	}
	qmp_close(&q);
	vm_def_free(&d);
	vfy_free(&v);
	if (dfd >= 0)
		close(dfd);
	close(fd);
	if (lock >= 0)
		close(lock);
	return rc;
}
