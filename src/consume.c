/* consume: the record of restored resume-once images (consume.h). One small
 * file per VM, <save_dir>/.consumed/NAME: the creation time of the newest
 * image of that VM restored so far and the identities restored at that time.
 * Anything older, or the same again, is a replay. Its size is bounded by the
 * number of VMs, not by how many images were ever restored; that needs images
 * of a VM created in increasing order, which cons_created provides. */
#include "consume.h"
#include "err.h"
#include "log.h"
#include "sign.h"
#include "storage.h"
#include "util.h"

#include <errno.h>
#include <stdlib.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define STORE ".consumed"
#define IDS_MAX 32 /* images of one VM restored with the same creation second */

struct record {
	uint64_t mark; /* created of the newest image restored; 0: none yet */
	unsigned n;
	uint8_t ids[IDS_MAX][SIG_HASH];
};

/* What the signature covers (the header without state, signature and header
 * digest), hashed: the image's identity, the same in every copy of it. */
static void identity(const struct img_header *h, uint8_t id[SIG_HASH])
{
	uint8_t b[IMG_HEADER_SIZE];

	img_signed_bytes(h, b);
	sig_sha256(b, sizeof(b), id);
}

/* Only root (vmsnap's user) may write the record or the directory above it:
 * whoever can rename it away can undo every record in it. */
static int private_dir(const struct stat *st, const char *path)
{
	if (!S_ISDIR(st->st_mode))
		return err_set(EXIT_USAGE, "%s is not a directory: replay protection needs it to be one", path);
	if (st->st_uid != geteuid() || (st->st_mode & 022))
		return err_set(EXIT_USAGE,
			       "%s is writable by other users (owner %u, mode %03o): replay protection needs a directory only root writes; chown root and chmod go-w it",
			       path, (unsigned)st->st_uid, (unsigned)(st->st_mode & 0777));
	return 0;
}

/* Open the store directory: 1 open in *dfd, 0 it does not exist (and create
 * is false), -1 error. */
static int store_open(const struct conf *c, bool create, int *dfd)
{
	char path[CONF_PATH_MAX + 16];
	struct stat st;

	if (stat(c->save_dir, &st) < 0) {
		if (errno != ENOENT || !create)
			return errno == ENOENT ? 0 : err_sys(EXIT_FAIL, "save_dir %s", c->save_dir);
		if (mkdir(c->save_dir, 0700) < 0 || stat(c->save_dir, &st) < 0)
			return err_sys(EXIT_FAIL, "creating save_dir %s", c->save_dir);
	}
	if (private_dir(&st, c->save_dir) < 0)
		return -1;
	if (str_fmt(path, sizeof(path), "%s/" STORE, c->save_dir) < 0)
		return err_set(EXIT_USAGE, "save_dir %s: too long", c->save_dir);
	if (lstat(path, &st) < 0) {
		if (errno != ENOENT || !create)
			return errno == ENOENT ? 0 : err_sys(EXIT_FAIL, "%s", path);
		if (mkdir(path, 0700) < 0 || fsync_parent(path) < 0 || lstat(path, &st) < 0)
			return err_sys(EXIT_FAIL, "creating %s", path);
	}
	if (private_dir(&st, path) < 0)
		return -1;
	*dfd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	return *dfd < 0 ? err_sys(EXIT_FAIL, "%s", path) : 1;
}

static int nibble(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* "CREATED HEXID": a decimal, one space, 2n lower-case hex digits. */
static int parse_line(const char *l, unsigned long long *created, uint8_t *out, size_t n)
{
	char *end;

	if (*l < '0' || *l > '9')
		return -1;
	errno = 0;
	*created = strtoull(l, &end, 10);
	if (errno || *end++ != ' ' || strlen(end) != 2 * n)
		return -1;
	for (size_t i = 0; i < n; i++) {
		int hi = nibble(end[2 * i]), lo = nibble(end[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

/* Read VM name's record; a missing one is empty. Lines: "CREATED HEXID". */
static int record_load(int dfd, const char *name, struct record *r)
{
	char buf[IDS_MAX * 96];
	unsigned long long created;
	struct stat st;
	ssize_t len;
	int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

	memset(r, 0, sizeof(*r));
	if (fd < 0)
		return errno == ENOENT ? 0 : err_sys(EXIT_FAIL, "consumption record of VM '%s'", name);
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
	    (len = pread_all(fd, buf, sizeof(buf) - 1, 0)) < 0) {
		close(fd);
		return err_set(EXIT_FAIL, "consumption record of VM '%s' is not a file of root's: remove it", name);
	}
	close(fd);
	buf[len] = 0;
	for (char *save, *l = strtok_r(buf, "\n", &save); l && r->n < IDS_MAX; l = strtok_r(NULL, "\n", &save)) {
		if (parse_line(l, &created, r->ids[r->n], SIG_HASH) < 0)
			return err_set(EXIT_FAIL, "consumption record of VM '%s' is corrupt: remove it (the next restore of each image is then allowed once more)", name);
		r->mark = created;
		r->n++;
	}
	return 0;
}

static bool recorded(const struct record *r, const uint8_t id[SIG_HASH])
{
	for (unsigned i = 0; i < r->n; i++)
		if (!memcmp(r->ids[i], id, SIG_HASH))
			return true;
	return false;
}

/* Replace the record: temp file, synced, renamed, directory synced. */
static int record_store(int dfd, const char *name, const struct record *r)
{
	char tmp[CONF_NAME_MAX + 16], line[2 * SIG_HASH + 32];
	int fd, rc = 0;

	snprintf(tmp, sizeof(tmp), ".%s.tmp", name);
	fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return err_sys(EXIT_FAIL, "writing the consumption record of VM '%s'", name);
	for (unsigned i = 0; i < r->n && rc == 0; i++) {
		int n = snprintf(line, sizeof(line), "%llu ", (unsigned long long)r->mark);
		for (unsigned j = 0; j < SIG_HASH; j++)
			n += snprintf(line + n, sizeof(line) - (size_t)n, "%02x", r->ids[i][j]);
		line[n++] = '\n';
		rc = write_all(fd, line, (size_t)n);
	}
	if (rc == 0)
		rc = fsync(fd);
	if (close(fd) < 0 || rc < 0 || renameat(dfd, tmp, dfd, name) < 0 || fsync(dfd) < 0) {
		unlinkat(dfd, tmp, 0);
		return err_sys(EXIT_FAIL, "writing the consumption record of VM '%s'", name);
	}
	return 0;
}

static int name_ok(const struct img_header *h, const char *image)
{
	return conf_name_ok(h->name) ? 0
		: err_set(EXIT_REFUSED, "image %s: its VM name '%s' is not valid", image, h->name);
}

int cons_check(const struct conf *c, const struct img_header *h, const char *image)
{
	struct record r;
	uint8_t id[SIG_HASH];
	int dfd = -1, rc;

	if (h->flags & IMG_F_GOLDEN)
		return 0;
	if (name_ok(h, image) < 0)
		return -1;
	if ((rc = store_open(c, false, &dfd)) <= 0)
		return rc; /* nothing recorded yet (0), or an unsafe store (-1) */
	rc = record_load(dfd, h->name, &r);
	close(dfd);
	if (rc < 0)
		return -1;
	identity(h, id);
	if (h->created < r.mark)
		return err_set(EXIT_REFUSED,
			       "image %s (created %llu) is older than the last image of VM '%s' restored (created %llu): restoring it would replay the guest against disks that moved on (restore --again overrides)",
			       image, (unsigned long long)h->created, h->name, (unsigned long long)r.mark);
	if (h->created == r.mark && recorded(&r, id))
		return err_set(EXIT_REFUSED,
			       "image %s of VM '%s' was already restored once (recorded in %s/" STORE "): restoring it again would replay the guest against disks that moved on (restore --again overrides)",
			       image, h->name, c->save_dir);
	return 0;
}

/* The state field, written through the verified fd: /proc/self/fd reopens
 * that very file, whatever the path names by now. Informative (inspect shows
 * it); the record is what refuses a replay, so a read-only image is fine. */
static void mark_image(int fd, struct img_header *h, const char *image)
{
	uint8_t buf[IMG_HEADER_SIZE];
	struct stat a, b;
	int wfd;

	h->state = IMG_CONSUMED;
	img_encode(h, buf);
	wfd = stor_reopen(fd, O_WRONLY);
	if (wfd < 0 || fstat(fd, &a) < 0 || fstat(wfd, &b) < 0 || a.st_dev != b.st_dev ||
	    a.st_ino != b.st_ino || a.st_rdev != b.st_rdev ||
	    pwrite_all(wfd, buf, sizeof(buf), 0) < 0 || fdatasync(wfd) < 0)
		log_warn("image %s: not marked consumed in its header (%s); the record keeps it from being restored again",
			 image, strerror(errno));
	if (wfd >= 0)
		close(wfd);
}

int cons_record(const struct conf *c, int fd, struct img_header *h, const char *image)
{
	struct record r;
	uint8_t id[SIG_HASH];
	int dfd = -1, rc;

	if (h->flags & IMG_F_GOLDEN)
		return 0;
	if (name_ok(h, image) < 0 || store_open(c, true, &dfd) < 0)
		return err_wrap("image %s: recording it as restored", image);
	rc = record_load(dfd, h->name, &r);
	identity(h, id);
	if (rc == 0 && h->created >= r.mark && !recorded(&r, id)) {
		if (h->created > r.mark)
			r.n = 0;
		else if (r.n == IDS_MAX) /* same second: the oldest entry goes */
			memmove(r.ids[0], r.ids[1], (IDS_MAX - 1) * SIG_HASH), r.n--;
		r.mark = h->created;
		memcpy(r.ids[r.n++], id, SIG_HASH);
		rc = record_store(dfd, h->name, &r);
	}
	close(dfd);
	if (rc < 0)
		return -1;
	mark_image(fd, h, image);
	return 0;
}

uint64_t cons_created(const struct conf *c, const char *name, uint64_t now)
{
	struct record r;
	int dfd = -1;

	if (!conf_name_ok(name) || store_open(c, false, &dfd) <= 0) {
		err_clear();
		return now;
	}
	if (record_load(dfd, name, &r) < 0)
		err_clear();
	close(dfd);
	return r.mark >= now ? r.mark + 1 : now;
}
