/* snap_restore: start QEMU from an image and resume the guest (snap.h).
 * Every check runs before QEMU reads a byte, except that of a signed v3
 * image's main RAM block, checked once QEMU has copied it into the guest's
 * memory and before the guest runs (verify_split.c); the image is opened read-only
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
#include <limits.h>
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
 * once. It cuts the request to its read-ahead window (8 MiB on the
 * development machine), so this reads the start of the stream only; the
 * relay asks as it goes (relay.c). Only when the stream and the guest's RAM
 * both fit in available memory. */
static bool fits_in_memory(const struct img_header *h)
{
	return h->stream_length + h->ram_size < mem_available();
}

static void read_ahead(int fd, const struct img_header *h)
{
	if (fits_in_memory(h))
		posix_fadvise(fd, (off_t)h->stream_offset, (off_t)h->stream_length, POSIX_FADV_WILLNEED);
}

/* --bypass-cache after the payload digest has just read the whole stream
 * through the page cache: QEMU loads it from there rather than from the disk
 * a second time, and the range is dropped from the cache afterwards, so the
 * cache is left as --bypass-cache promises. Only when it all fits in memory;
 * otherwise the first pages would be evicted by the time QEMU wants them. */
static bool load_warm(const struct restore_opts *o, const struct vfy_result *v)
{
	return o->bypass_cache && v->payload_checked && v->h.version != IMG_VERSION_INSTANT &&
	       fits_in_memory(&v->h);
}

static void note_digest(const struct vfy_result *v, struct restore_result *res)
{
	if (!v->payload_checked)
		return;
	res->digest.bytes = v->digest_bytes;
	res->digest.read = v->digest_read;
	res->digest.ms = v->digest_ms;
	res->digest.from = v->in_flight ? "in flight" : "image";
	res->t.digest = v->digest_ms;
}

/* Into QEMU: v3 and (QEMU 8.2+) v2 on a file through QEMU's file:
 * transport; else, and for a v2 image whose chunks are checked on the way
 * (check), through the relay. */
static int load(struct qmp *q, const struct img_header *h, int fd, int dfd, const char *path,
		unsigned channels, bool progress, struct relay_check *check, struct mig_stats *st)
{
	struct stat sb;
	bool known = fstat(fd, &sb) == 0, regular = known && S_ISREG(sb.st_mode);
	/* A checked relay from a block device reads it past the page cache:
	 * the image is read once, and copying it out of the cache cost the 2
	 * CPUs as much as hashing it (4 GiB: 1 s of system time, was 3). */
	bool past_cache = check && dfd < 0 && known && S_ISBLK(sb.st_mode);
	int own = -1;

	if (dfd < 0 && !past_cache)
		read_ahead(fd, h);
	struct mig_opts mo = { .version = (int)h->version, .channels = channels,
			       .direct_io = h->version == 3 && dfd >= 0, .incoming = true };
	struct relay r;
	char uri[96];
	int p[2], rc;
	long long fdset;

	if (mig_setup(q, &mo) < 0)
		return -1;
	if (!check && mig_file_transport(q, (int)h->version, regular, dfd >= 0)) {
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
	if (past_cache && (own = stor_reopen_direct(fd)) >= 0) /* else through the cache */
		dfd = own;
	if (rc < 0 || relay_init(&r, RELAY_RESTORE, p[1], dfd >= 0 ? dfd : fd, dfd >= 0,
				 h->stream_offset, h->stream_length, path) < 0) {
		close(p[1]);
		if (own >= 0)
			close(own);
		return -1;
	}
	r.check = check;
	rc = mig_start(q, &mo, "fd:vmsnap-stream");
	if (rc == 0)
		rc = mig_wait(q, &mo, &r, h->ram_size, progress, st);
	close(p[1]);
	relay_free(&r);
	if (own >= 0)
		close(own);
	return rc;
}

/* --bypass-cache: *dfd, the image opened with O_DIRECT; or -1 where its file
 * system refuses that and the user did not insist (then the page cache). */
static int open_direct(const char *path, bool insisted, int *dfd)
{
	*dfd = stor_open_direct(path, O_RDONLY);
	if (*dfd >= 0)
		return 0;
	if (errno != EINVAL)
		return err_sys(EXIT_FAIL, "opening %s with O_DIRECT", path);
	if (insisted)
		return err_set(EXIT_USAGE,
			       "the file system of %s refuses O_DIRECT (tmpfs or ramfs?): drop --bypass-cache",
			       path);
	log_warn("the file system of %s refuses O_DIRECT; reading through the page cache instead", path);
	return 0;
}

/* What a restore holds from the first check to the running guest. */
struct restore {
	int fd, dfd;          /* the image; with O_DIRECT, or -1 */
	int stream_fd;        /* v3, RAM block loaded by vmsnap: the checked copy QEMU loads, or -1 */
	int ram_fd;           /* then the guest's RAM, a memfd QEMU shares; else -1 */
	struct vfy_result v;  /* its checked header and definition */
	struct vm_def d;      /* the definition QEMU runs */
	int lock;             /* the VM's, once it has a name */
	const char *name;
	bool launched;        /* QEMU started: a failure kills it again */
	bool warm;            /* --bypass-cache, the stream just digested: loaded from the cache */
	pid_t pid;
	struct qmp q;
	const struct conf *c;
	const char *image;
	const struct restore_opts *o;
	struct restore_result *res;
};

/* The definition QEMU runs: --vm-file's, or the one in the image; both
 * kept off vmsnap's control plane. */
static int load_def(struct restore *r)
{
	char origin[PATH_MAX + 32];

	if (r->o->vm_file)
		return vm_def_load(&r->d, r->o->vm_file) < 0 ? -1 : vm_def_check(&r->d, r->c->run_dir);
	snprintf(origin, sizeof(origin), "image %s definition", r->image);
	if (vm_def_parse(&r->d, r->v.def, r->v.h.def_length, origin, EXIT_REFUSED) < 0 ||
	    vm_def_check(&r->d, r->c->run_dir) < 0)
		return -1;
	/* An image whose signature was not checked runs only allowed options. */
	if (r->c->unsigned_options[0] && !r->v.signature_checked)
		return vm_def_allowed(&r->d, r->c->unsigned_options, "unsigned_options");
	return 0;
}

/* The name the VM runs under (--name, else the image's), locked and free. */
static int claim_name(struct restore *r)
{
	const char *name = r->o->name ? r->o->name : r->v.h.name;

	r->name = name;
	if (!conf_name_ok(name))
		return err_set(r->o->name ? EXIT_USAGE : EXIT_REFUSED, "VM name '%s' is not valid%s",
			       name, r->o->name ? "" : " (from the image; give --name)");
	str_copy(r->res->name, sizeof(r->res->name), name);
	if ((r->lock = vm_lock(r->c, name)) < 0)
		return -1;
	if (vm_pid(r->c, name))
		return err_set(EXIT_FAIL,
			       "VM '%s' is already running: stop it first or restore with --name", name);
	return 0;
}

/* A v3 image with its chunk table: its main RAM block, when that is the
 * machine's whole RAM as the definition asks for it, is loaded by vmsnap
 * into a memfd QEMU then runs on (verify_load.c); here the checked copy of
 * the rest of the stream that QEMU loads. Otherwise the whole stream is
 * checked now, before QEMU starts. */
static int preload(struct restore *r)
{
	const struct img_header *h = &r->v.h;
	uint64_t len;
	const char *id = vfy_split_block(&r->v, &len);
	int s = -2;

	if (!id)
		return 0;
	if (!(h->flags & IMG_F_RAM_BACKEND) && len == h->ram_size &&
	    inst_plain_ram(&r->d, h->ram_size) && !getenv("VMSNAP_NO_RAM_LOAD"))
		s = vfy_load_stream(&r->v, r->fd, r->image);
	if (s == -2) /* QEMU loads it all: all checked first */
		return vfy_payload_whole(r->fd, r->image, &r->v);
	r->stream_fd = s;
	return s < 0 ? -1 : 0;
}

/* QEMU waiting for the stream, with the RAM backend the image needs: v4
 * maps the RAM file (resume-once: the guest continues in it; golden: every
 * boot starts from the same pristine file, mapped privately, through the fd
 * verify checked). */
static int start_qemu(struct restore *r)
{
	const struct img_header *h = &r->v.h;
	const char *const *extra = NULL;
	struct inst_args ia;
	struct vm_paths p;
	uint64_t t = now_ms();

	if (h->version == IMG_VERSION_INSTANT) {
		if ((r->res->golden ? inst_args_fd(&ia, r->v.ram_fd, h->ram_bytes)
				    : inst_args(&ia, r->v.ram_path, h->ram_bytes, false)) < 0)
			return -1;
		extra = ia.argv;
	} else if (h->flags & IMG_F_RAM_BACKEND) {
		inst_args_anon(&ia, h->ram_size);
		extra = ia.argv;
	} else if (r->stream_fd >= 0) {
		uint64_t len;
		if ((r->ram_fd = inst_args_memfd(&ia, vfy_split_block(&r->v, &len), h->ram_size)) < 0)
			return -1;
		extra = ia.argv;
	}
	/* A golden image's every restore is a new generation of the VM. */
	if (vm_def_genid(&r->d, r->res->golden, r->res->genid, sizeof(r->res->genid)) < 0)
		return -1;
	if (vm_launch(r->c, r->name, &r->d, extra, true) < 0)
		return -1;
	r->launched = true;
	r->pid = vm_pid(r->c, r->name);
	if (vm_paths(r->c, r->name, &p) < 0 || qmp_connect(&r->q, p.qmp, QMP_TIMEOUT_MS) < 0)
		return -1;
	r->res->t.qemu_start = now_ms() - t;
	return 0;
}

/* The stream into QEMU, then the guest runs (or stays paused). */
static int resume_guest(struct restore *r)
{
	const struct restore_opts *o = r->o;
	struct restore_result *res = r->res;
	struct img_header *h = &r->v.h;
	struct mig_stats st;

	res->version = (int)h->version;
	res->channels = h->version == 3 ? snap_channels(o->channels) : 1;
	res->direct_io = r->dfd >= 0;
	res->ram_size = h->ram_size;
	res->stream_length = h->stream_length;
	if (r->ram_fd >= 0) { /* the RAM block checked into QEMU's memory, the rest from the copy */
		if (r->dfd < 0)
			read_ahead(r->fd, h);
		if (vfy_load_ram(&r->v, r->dfd >= 0 ? r->dfd : r->fd, r->ram_fd, r->image) < 0 ||
		    load(&r->q, h, r->stream_fd, -1, r->image, res->channels, o->progress, NULL, &st) < 0)
			return -1;
	} else if (load(&r->q, h, r->fd, r->dfd, r->image, res->channels, o->progress,
			vfy_split_check(&r->v), &st) < 0) {
		return -1;
	}
	res->t.migrate = st.qemu_ms;
	if (vfy_split_check(&r->v) && vfy_split_relayed(&r->v, r->image) < 0)
		return -1;
	if (r->v.split && !r->v.payload_checked) /* cannot be: say so rather than run it */
		return err_set(EXIT_FAIL, "image %s: its payload was not checked", r->image);
	note_digest(&r->v, res);
	/* Consumed before the guest runs a single instruction: a crash in
	 * between then costs a cold start, never a replay against moved-on disks. */
	if (cons_record(r->c, r->fd, h, r->image) < 0)
		return -1;
	res->running = o->running >= 0 ? o->running : (h->flags & IMG_F_WAS_RUNNING) != 0;
	if (res->running && qmp_call(&r->q, "cont", NULL, NULL, 0, NULL) < 0)
		return -1;
	return 0;
}

/* Every check before QEMU reads a byte, then QEMU, the stream, the guest. */
static int restore_steps(struct restore *r, uint64_t size)
{
	const struct restore_opts *o = r->o;
	struct vfy_opts vo = { .pubkey = o->pubkey, .require_signature = r->c->require_signature,
			       .verify_payload = r->c->verify_payload, .allow_consumed = o->again,
			       .split = true };

	if (vfy_image(r->c, r->fd, size, r->image, &vo, &r->v) < 0 ||
	    admit(r->c, r->image, o, &r->v.h) < 0)
		return -1;
	r->res->golden = r->v.h.flags & IMG_F_GOLDEN;
	if (load_def(r) < 0 || claim_name(r) < 0 || preload(r) < 0)
		return -1;
	note_digest(&r->v, r->res);
	r->warm = load_warm(o, &r->v);
	/* v3: QEMU's page reads use it; v2: the relay reads aligned blocks with it. */
	if (o->bypass_cache && r->v.h.version != IMG_VERSION_INSTANT && !r->warm &&
	    open_direct(r->image, o->insisted, &r->dfd) < 0)
		return -1;
	return start_qemu(r) < 0 ? -1 : resume_guest(r);
}

/* A QEMU this restore started goes again when the restore fails; the
 * error stays the restore's. */
static void release(struct restore *r, bool failed)
{
	if (failed && r->launched) {
		char msg[512];
		int code = err_code();
		str_copy(msg, sizeof(msg), err_msg());
		qmp_close(&r->q);
		vm_kill(r->c, r->name, r->pid);
		err_set(code, "%s", msg);
	}
	qmp_close(&r->q);
	vm_def_free(&r->d);
	vfy_free(&r->v);
	if (r->dfd >= 0)
		close(r->dfd);
	if (r->ram_fd >= 0)
		close(r->ram_fd);
	if (r->stream_fd >= 0)
		close(r->stream_fd);
	/* --bypass-cache: what the checks read through the cache goes too. */
	if (r->warm || r->o->bypass_cache)
		posix_fadvise(r->fd, (off_t)r->v.h.stream_offset, (off_t)r->v.h.stream_length,
			      POSIX_FADV_DONTNEED);
	close(r->fd);
	if (r->lock >= 0)
		close(r->lock);
	free(r);
}

int snap_restore(const struct conf *c, const char *image, const struct restore_opts *o,
		 struct restore_result *res)
{
	struct restore *r;
	uint64_t size, t0 = now_ms();
	int fd, rc;

	memset(res, 0, sizeof(*res));
	if (stor_open_image(image, &fd, &size) < 0)
		return -1;
	r = calloc(1, sizeof(*r)); /* large: off the stack */
	if (!r) {
		close(fd);
		return err_sys(EXIT_FAIL, "restoring %s", image);
	}
	*r = (struct restore){ .fd = fd, .dfd = -1, .stream_fd = -1, .ram_fd = -1, .lock = -1, .q = { .fd = -1 },
			       .c = c, .image = image, .o = o, .res = res };
	rc = restore_steps(r, size);
	if (rc == 0) {
		res->t.total = now_ms() - t0;
		snap_guest_time(c, r->name, &r->d, r->v.h.created, res);
	}
	release(r, rc < 0);
	return rc;
}
