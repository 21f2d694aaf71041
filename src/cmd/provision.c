/* provision: copy a signed image onto a device's storage at the factory:
 * header, definition and signature checked first, the payload digest hashed
 * as the copy reads it (one read of the source), holes kept, header last,
 * the copy read back and verified. */
#include "cmd.h"
#include "copy.h"
#include "err.h"
#include "fsafe.h"
#include "image.h"
#include "instant.h"
#include "log.h"
#include "sign.h"
#include "storage.h"
#include "util.h"
#include "verify.h"
#include "vm_def.h"

#include <limits.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

enum { O_PUBKEY = 1, O_PROGRESS };


struct prov {
	const struct conf *c;
	const char *src, *dst;
	struct vfy_opts vo;
	int in;
	uint64_t size, end;       /* source size, end of the image in it */
	enum stor_kind kind;      /* of the target */
	struct stor_target t;
	struct copy cp;
	struct vfy_result sv, tv; /* source, target read back */
	uint64_t sync_ms;
	uint8_t *table;           /* the chunk hashes of the stream copied, written after it */
	bool table_written;
	bool touched;             /* the target has been written to */
	char ram[PATH_MAX];           /* v4: the target's RAM file */
	uint64_t ram_bytes;       /* v4: bytes of it written */
	int verity;               /* v4: fs-verity on the target's RAM file (1), not offered (0) */
};

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

/* From here on a signal stops the copy cleanly (temp file removed) instead of killing it. */
static void catch_signals(void)
{
	struct sigaction sa = { .sa_handler = on_signal };

	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
}

/* A golden pair is two files: TARGET must be neither the source's RAM file
 * (the copy would replace it) nor the name its own RAM file gets beside it. */
static int pair_overlap(const struct prov *p, const struct img_header *h)
{
	char ram[4200], own[4200];
	struct stat rs, ts;

	if (inst_resolve(h, p->src, ram, sizeof(ram)) < 0 ||
	    path_beside(own, sizeof(own), p->dst, h->ram_path) < 0)
		return err_set(EXIT_USAGE, "target %s: path too long", p->dst);
	if (stat(ram, &rs) == 0 && stat(p->dst, &ts) == 0 && rs.st_dev == ts.st_dev &&
	    rs.st_ino == ts.st_ino)
		return err_set(EXIT_USAGE,
			       "target %s is the RAM file of image %s: provision to another file or device",
			       p->dst, p->src);
	if (!strcmp(own, p->dst))
		return err_set(EXIT_USAGE,
			       "target %s has the name of the RAM file that goes beside it: choose another name",
			       p->dst);
	return 0;
}

/* Refusals that need no more than the header: before the long source check. */
static int check_target(struct prov *p, const struct img_header *h)
{
	struct stat ss, ts;
	uint64_t cap;
	char a[32], b[32];

	if (h->version == IMG_VERSION_INSTANT && (!(h->flags & IMG_F_GOLDEN) || h->ram_path[0] == '/'))
		return err_set(EXIT_USAGE,
			       "image %s is a resume-once instant image tied to this machine's RAM file: provision golden images (save --golden)",
			       p->src);
	if (stor_check_save(p->dst, (int)h->version, &p->kind, &cap) < 0)
		return -1;
	if (fstat(p->in, &ss) == 0 && stat(p->dst, &ts) == 0 &&
	    (S_ISBLK(ss.st_mode) ? S_ISBLK(ts.st_mode) && ss.st_rdev == ts.st_rdev
				 : ss.st_dev == ts.st_dev && ss.st_ino == ts.st_ino))
		return err_set(EXIT_USAGE, "target %s is the image %s itself: provision to another file or device",
			       p->dst, p->src);
	if (h->version == 4 && pair_overlap(p, h) < 0)
		return -1;
	if (p->kind == STOR_BLK && cap < p->end)
		return err_set(EXIT_USAGE,
			       "target %s holds %llu bytes (%s), but image %s is %llu bytes (%s): use a larger device",
			       p->dst, (unsigned long long)cap, fmt_bytes(cap, a, sizeof(a)), p->src,
			       (unsigned long long)p->end, fmt_bytes(p->end, b, sizeof(b)));
	return 0;
}

/* A regular file gets holes only where the source has them: size it first. */
static int prepare_file(struct prov *p)
{
	struct statvfs sv;
	char a[32], b[32];

	/* f_blocks 0: no fixed size (ramfs), nothing to compare with. */
	if (fstatvfs(p->t.fd, &sv) == 0 && sv.f_blocks &&
	    p->cp.data + IMG_HEADER_SIZE > (uint64_t)sv.f_bavail * sv.f_frsize)
		return err_set(EXIT_USAGE, "no room for image %s on the file system of %s: it needs %s, %s free",
			       p->src, p->dst, fmt_bytes(p->cp.data + IMG_HEADER_SIZE, a, sizeof(a)),
			       fmt_bytes((uint64_t)sv.f_bavail * sv.f_frsize, b, sizeof(b)));
	if (ftruncate(p->t.fd, (off_t)p->end) < 0)
		return err_sys(EXIT_FAIL, "sizing %s", p->t.tmp);
	return 0;
}

static int write_header(struct prov *p, const struct img_header *h)
{
	uint8_t buf[IMG_HEADER_SIZE];

	img_encode(h, buf);
	if (pwrite_all(p->t.fd, buf, sizeof(buf), 0) < 0 || fdatasync(p->t.fd) < 0)
		return err_sys(EXIT_FAIL, "writing the header of %s", p->dst);
	return 0;
}

/* The chunk table read back differs from the one written (-1, err set). */
static int table_differs(int fd, const struct img_header *h, const uint8_t *table)
{
	uint64_t len = img_table_length(h);
	uint8_t *got = malloc(len);
	int rc = 0;

	if (!got || pread_all(fd, got, len, (off_t)img_table_offset(h)) != (ssize_t)len ||
	    memcmp(got, table, len))
		rc = err_set(EXIT_FAIL, "its chunk table differs from the one written");
	free(got);
	return rc;
}

/* Read the target back from storage, not from the page cache, and check it as restore would. */
static int read_back(struct prov *p)
{
	const char *path = p->t.kind == STOR_REG ? p->t.tmp : p->t.path;
	uint64_t size;
	int fd, rc;

	if (stor_open_image(path, &fd, &size) < 0)
		return -1;
	posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	p->vo.payload_by_caller = false;
	p->vo.direct = true;
	rc = vfy_image(p->c, fd, size, path, &p->vo, &p->tv);
	if (rc == 0 && p->table_written)
		rc = table_differs(fd, &p->sv.h, p->table);
	close(fd);
	if (rc < 0) {
		/* The source passed the same checks: the storage failed, not the image. */
		char msg[512];
		str_copy(msg, sizeof(msg), err_msg());
		return err_set(EXIT_FAIL, "the copy does not verify (faulty storage?): %s", msg);
	}
	return 0;
}

/* Data synced, complete header written last and synced, then the copy is
 * read back and checked before a file is renamed into place; a device that
 * fails the check gets its partial header back. */
static int commit(struct prov *p, const struct img_header *partial)
{
	uint8_t hdr[IMG_HEADER_SIZE];
	uint64_t t = now_ms();

	img_encode(&p->sv.h, hdr);
	if (stor_seal(&p->t, hdr) < 0)
		return -1;
	p->sync_ms = now_ms() - t;
	if (read_back(p) < 0) {
		if (p->t.kind == STOR_BLK)
			write_header(p, partial);
		return -1;
	}
	if (interrupted && p->t.kind == STOR_REG)
		return err_set(EXIT_FAIL, "interrupted before the copy was moved into place");
	return stor_place(&p->t);
}

/* Hash what cp copies of [off, off + len) as it goes. */
static int digest_start(struct copy *cp, uint32_t chunk, uint64_t off, uint64_t len)
{
	cp->digest = sig_stream_new(chunk);
	cp->dig_off = off;
	cp->dig_end = off + len;
	return cp->digest ? 0 : -1;
}

/* After the copy: 0 what it read has the digest want, 1 it has another, -1
 * error. table (may be NULL) gets its chunk hashes (malloc'd). */
static int digest_differs(struct copy *cp, const uint8_t want[IMG_DIGEST], uint8_t **table)
{
	uint8_t d[SIG_HASH];
	struct sig_info in = { .keep_table = table != NULL };
	int rc = sig_stream_finish(cp->digest, d, &in);

	sig_stream_free(cp->digest);
	cp->digest = NULL;
	if (table)
		*table = in.table;
	return rc < 0 ? -1 : memcmp(d, want, SIG_HASH) != 0;
}

/* The RAM file to copy and its temp copy: fresh or our own stale one (never
 * another user's file or a symlink), in a directory others cannot change. */
static int open_ram(struct prov *p, struct copy *cp, char *tmp)
{
	cp->out = -1;
	cp->in = fsafe_open_read(p->sv.ram_path, false);
	if (cp->in < 0)
		return -1;
	if (fsafe_target_dir(p->ram) < 0 || (cp->out = fsafe_open_tmp(tmp)) < 0) {
		tmp[0] = 0; /* not ours to remove */
		return -1;
	}
	if (ftruncate(cp->out, 0) < 0) /* a stale copy's bytes must not show through holes */
		return err_sys(EXIT_FAIL, "truncating %s", tmp);
	return 0;
}

/* v4: the header carries a digest of the RAM file's content (zero: none). */
static bool ram_signed(const struct prov *p)
{
	static const uint8_t none[IMG_DIGEST];

	return memcmp(p->sv.h.ram_digest, none, IMG_DIGEST) != 0;
}

/* Instant mode: the golden pair's RAM file goes first, under the name the
 * signed header gives it, beside the image, once the bytes copied have the
 * signed RAM digest; the image's read-back check then covers both. */
static int provision_ram(struct prov *p)
{
	char tmp[PATH_MAX];
	struct copy cp = { .off = 0, .end = p->sv.h.ram_bytes, .sparse = true, .dout = -1,
			   .progress = p->cp.progress, .what = "provisioning", .cancel = p->cp.cancel };
	int rc = -1, differs;

	if (path_beside(p->ram, sizeof(p->ram), p->dst, p->sv.h.ram_path) < 0 ||
	    str_fmt(tmp, sizeof(tmp), "%s.vmsnap-partial", p->ram) < 0)
		return err_set(EXIT_USAGE, "target %s: path too long", p->dst);
	cp.src = p->sv.ram_path;
	cp.dst = p->ram;
	if (open_ram(p, &cp, tmp) < 0)
		goto out;
	if (IS_ENABLED(CONFIG_DIRECT_IO))
		cp.dout = stor_open_direct(tmp, O_WRONLY);
	if (ftruncate(cp.out, (off_t)cp.end) < 0) {
		err_sys(EXIT_FAIL, "sizing %s", tmp);
		goto out;
	}
	if (copy_plan(&cp) < 0 || (ram_signed(p) && digest_start(&cp, SIG_CHUNK, 0, cp.end) < 0) ||
	    copy_run(&cp) < 0)
		goto out;
	if (cp.digest && (differs = digest_differs(&cp, p->sv.h.ram_digest, NULL)) != 0) {
		if (differs > 0)
			vfy_ram_mismatch(p->src, p->sv.ram_path);
		goto out;
	}
	if (fdatasync(cp.out) < 0) {
		err_sys(EXIT_FAIL, "syncing %s", tmp);
		goto out;
	}
	posix_fadvise(cp.out, 0, 0, POSIX_FADV_DONTNEED); /* the check reads the disk */
	if (rename(tmp, p->ram) < 0) {
		err_sys(EXIT_FAIL, "renaming %s to %s", tmp, p->ram);
		goto out;
	}
	tmp[0] = 0;
	p->ram_bytes = cp.written;
	rc = fsync_parent(p->ram);
out:
	sig_stream_free(cp.digest);
	if (cp.in >= 0)
		close(cp.in);
	if (cp.dout >= 0)
		close(cp.dout);
	if (cp.out >= 0)
		close(cp.out);
	if (tmp[0])
		unlink(tmp);
	return rc;
}

/* The chunk table (image.h) after the stream, as save writes it, from the
 * hashes of the stream just copied: the true one, whatever the source had
 * there (none, if it was signed before tables). A device without room for
 * it goes without (its restores check the whole stream first). */
static int write_table(struct prov *p)
{
	const struct img_header *h = &p->sv.h;
	int rc;

	if (!p->table || !img_table_length(h) || h->version == IMG_VERSION_INSTANT)
		return 0;
	rc = stor_write_table(&p->t, h, p->table, p->end);
	p->table_written = rc > 0;
	return rc < 0 ? -1 : 0;
}

/* Copy the image after its header, hashing the stream as it is read: a
 * source whose payload digest differs is refused before the target's
 * header says complete. */
static int copy_stream(struct prov *p)
{
	const struct img_header *h = &p->sv.h;
	int differs;

	if (digest_start(&p->cp, h->digest_chunk, h->stream_offset, h->stream_length) < 0 ||
	    copy_run(&p->cp) < 0)
		return -1;
	if ((differs = digest_differs(&p->cp, h->payload_digest, &p->table)) > 0)
		return vfy_payload_mismatch(p->src);
	return differs < 0 ? -1 : write_table(p);
}

static int provision(struct prov *p)
{
	struct img_header h;
	char *def;

	if (stor_open_image(p->src, &p->in, &p->size) < 0) {
		p->in = -1;
		return -1;
	}
	if (vfy_read(p->in, p->size, p->src, &h, &def) < 0)
		return -1;
	free(def);
	p->end = h.stream_offset + h.stream_length;
	if (check_target(p, &h) < 0 || vfy_image(p->c, p->in, p->size, p->src, &p->vo, &p->sv) < 0)
		return -1;
	if (p->sv.h.flags & IMG_F_GOLDEN) {
		char what[PATH_MAX + 16];
		snprintf(what, sizeof(what), "golden image %s", p->src);
		vm_def_genid_warn(p->sv.def, p->sv.h.def_length, what);
	}
	p->cp.in = p->in;
	p->cp.what = "provisioning";
	p->cp.off = IMG_HEADER_SIZE;
	p->cp.end = p->end;
	/* Holes only on a file: a device may not read back zeros where nothing was written. */
	p->cp.sparse = p->kind != STOR_BLK;
	if (copy_plan(&p->cp) < 0)
		return -1;
	catch_signals();
	if (p->sv.h.version == IMG_VERSION_INSTANT && provision_ram(p) < 0)
		return -1;
	if (stor_create(&p->t, p->dst, IS_ENABLED(CONFIG_DIRECT_IO), false) < 0)
		return -1;
	if (p->t.kind == STOR_REG && prepare_file(p) < 0)
		return -1;
	/* Until the copy is complete and synced, the target says it is unfinished. */
	h = p->sv.h;
	h.state = IMG_PARTIAL;
	p->touched = true;
	if (write_header(p, &h) < 0)
		return -1;
	p->cp.out = p->t.fd;
	p->cp.dout = p->t.dfd;
	if (copy_stream(p) < 0 || commit(p, &h) < 0)
		return -1;
	/* The verified RAM file becomes immutable where the kernel offers it. */
	if (p->sv.h.version == IMG_VERSION_INSTANT && (p->verity = inst_enable_verity(p->ram)) < 0)
		return -1;
	return 0;
}

/* After a failure with the target open: say what it holds now. */
static void say_outcome(const struct prov *p)
{
	char msg[512];
	int code = err_code();

	if (!p->touched || (p->t.kind == STOR_REG && !p->t.tmp[0]))
		return;
	str_copy(msg, sizeof(msg), err_msg()); /* both 512: it fits */
	if (p->t.kind == STOR_BLK)
		err_set(code, "%s; %s now holds an unfinished image that will not verify: run provision again",
			msg, p->dst);
	else
		err_set(code, "%s; %s was not changed", msg, p->dst);
}

static void report(const struct prov *p, uint64_t total_ms)
{
	uint64_t written = p->cp.written + IMG_HEADER_SIZE, ms = p->cp.ms + p->sync_ms;
	char a[32], b[32], hex[2 * IMG_DIGEST + 1];

	printf("provisioned %s to %s (%s): v%u image of %s%s\n", p->src, p->dst,
	       stor_kind_name(p->t.kind), p->sv.h.version, fmt_bytes(p->end, a, sizeof(a)),
	       p->sv.h.flags & IMG_F_GOLDEN ? ", golden" : "");
	printf("wrote %s (%s%s) in %.2f s: %.1f MB/s (copy %.2f s, sync %.2f s)\n",
	       fmt_bytes(written, b, sizeof(b)), p->cp.sparse ? "holes kept" : "every byte",
	       p->cp.direct ? ", O_DIRECT" : ", page cache", (double)ms / 1e3,
	       ms ? (double)written / 1e3 / (double)ms : 0.0, (double)p->cp.ms / 1e3,
	       (double)p->sync_ms / 1e3);
	printf("verified: source (hashed as copied) and target read back (%.2f s): header, definition, signature (key %s, id %s), payload digest ok\n",
	       (double)p->tv.digest_ms / 1e3, p->tv.key_used,
	       fmt_hex(p->tv.h.key_id, 8, hex, sizeof(hex)));
	if (p->sv.h.version == IMG_VERSION_INSTANT)
		printf("RAM file %s: %s written (holes kept), digest verified; fs-verity %s\n", p->ram,
		       fmt_bytes(p->ram_bytes, b, sizeof(b)),
		       p->verity ? "enabled: the kernel checks every page read" : "not offered by this file system or kernel");
	printf("total %.2f s\n", (double)total_ms / 1e3);
}

/* A factory image must be signed and whole: no policy setting relaxes that. */
static struct prov *prov_new(const struct conf *c)
{
	struct prov *p = calloc(1, sizeof(*p)); /* large: off the stack */

	if (!p)
		return NULL;
	p->c = c;
	p->in = -1;
	p->vo.require_signature = p->vo.verify_payload = true;
	p->vo.payload_by_caller = true; /* the source's, as it is copied */
	p->cp.dout = -1;
	p->cp.cancel = &interrupted;
	p->t.fd = p->t.dfd = -1;
	return p;
}

const char cmd_provision_usage[] = "provision IMAGE TARGET [--pubkey FILE] [--progress]";

int cmd_provision(struct conf *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "pubkey", required_argument, 0, O_PUBKEY },
		{ "progress", no_argument, 0, O_PROGRESS },
		{ 0 },
	};
	const char *pubkey = NULL;
	bool progress = false;
	uint64_t t0 = now_ms();
	struct prov *p;
	int opt, rc;

	optind = 1;
	while ((opt = cmd_getopt(argc, argv, "", opts)) != -1) {
		if (opt == O_PUBKEY)
			pubkey = optarg;
		else if (opt == O_PROGRESS)
			progress = true;
		else
			return cmd_usage(cmd_provision_usage);
	}
	if (argc - optind != 2)
		return cmd_usage(cmd_provision_usage);
	if (!(p = prov_new(c))) {
		err_sys(EXIT_FAIL, "provisioning");
		return cmd_fail("provision");
	}
	p->vo.pubkey = pubkey;
	p->cp.progress = progress;
	p->src = p->cp.src = argv[optind];
	p->dst = p->cp.dst = argv[optind + 1];
	rc = provision(p);
	if (rc == 0)
		report(p, now_ms() - t0);
	else
		say_outcome(p);
	stor_close(&p->t);
	sig_stream_free(p->cp.digest);
	free(p->table);
	vfy_free(&p->sv);
	vfy_free(&p->tv);
	if (p->in >= 0)
		close(p->in);
	free(p);
	return rc < 0 ? cmd_fail("provision") : EXIT_OK;
}
