/* copy: the sparse-aware, O_DIRECT-where-possible image copy (copy.h): while
 * one block is written, a thread reads the next and another hashes this one,
 * so reading, writing and hashing overlap. */
#include "copy.h"
#include "err.h"
#include "log.h"
#include "sign.h"
#include "storage.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define ALIGN_DOWN(x, a) ((x) / (a) * (a))
/* COPY_BUF holds two blocks: one is written while the next is read. */
#define COPY_BLOCK (COPY_BUF / 2)

/* The next range to copy at or after pos: [*a, *b), widened to COPY_ALIGN
 * (a hole shorter than that is copied as zeros). 1 found, 0 none, -1 error. */
static int next_range(const struct copy *c, uint64_t pos, uint64_t *a, uint64_t *b)
{
	off_t d, h;

	if (pos >= c->end)
		return 0;
	*a = pos;
	*b = c->end;
	if (!c->sparse)
		return 1;
	d = lseek(c->in, (off_t)pos, SEEK_DATA);
	if (d < 0 && errno == ENXIO)
		return 0; /* only holes up to the end of the file */
	if (d < 0)
		return errno == EINVAL ? 1 : err_sys(EXIT_FAIL, "finding the data in %s", c->src);
	if ((uint64_t)d >= c->end)
		return 0;
	h = lseek(c->in, d, SEEK_HOLE);
	if (h < 0)
		return err_sys(EXIT_FAIL, "finding the holes in %s", c->src);
	if (ALIGN_DOWN((uint64_t)d, COPY_ALIGN) > pos)
		*a = ALIGN_DOWN((uint64_t)d, COPY_ALIGN);
	if (ALIGN_UP((uint64_t)h, COPY_ALIGN) < c->end)
		*b = ALIGN_UP((uint64_t)h, COPY_ALIGN);
	return 1;
}

int copy_plan(struct copy *c)
{
	uint64_t pos = c->off, a, b;
	int rc;

	c->data = 0;
	while ((rc = next_range(c, pos, &a, &b)) > 0) {
		c->data += b - a;
		pos = b;
	}
	return rc;
}

static int write_error(struct copy *c, uint64_t at)
{
	char a[32], b[32], f[32];
	struct statvfs sv;
	int e = errno;

	if ((e == ENOSPC || e == EDQUOT) && fstatvfs(c->out, &sv) == 0)
		return err_set(EXIT_FAIL, "no space left on %s at byte %llu: %s written of %s, %s free",
			       c->dst, (unsigned long long)at, fmt_bytes(c->written, a, sizeof(a)),
			       fmt_bytes(c->data, b, sizeof(b)),
			       fmt_bytes((uint64_t)sv.f_bavail * sv.f_frsize, f, sizeof(f)));
	errno = e;
	return err_sys(EXIT_FAIL, "writing %s at byte %llu", c->dst, (unsigned long long)at);
}

/* Whole aligned blocks go through the O_DIRECT fd, a short tail through the
 * buffered one (the header records the image's exact end). */
static int put(struct copy *c, const uint8_t *buf, size_t n, uint64_t at)
{
	size_t direct = c->dout >= 0 && at % COPY_ALIGN == 0 ? ALIGN_DOWN(n, COPY_ALIGN) : 0;

	if (direct && pwrite_all(c->dout, buf, direct, (off_t)at) < 0) {
		if (errno != EINVAL || c->direct)
			return write_error(c, at);
		log_warn("%s refuses O_DIRECT writes; writing through the page cache instead", c->dst);
		c->dout = -1; /* the caller owns and closes it */
		direct = 0;
	}
	c->direct += direct;
	if (direct < n && pwrite_all(c->out, buf + direct, n - direct, (off_t)(at + direct)) < 0)
		return write_error(c, at + direct);
	return 0;
}

/* Bytes, percent of what is to be written, MB/s over the last interval. */
static void progress_line(const struct copy *c, struct rate *p)
{
	char a[32], b[32];
	double mbps, secs;

	rate_step(p, c->written, &mbps, &secs);
	log_info("%s %s: %s of %s (%.0f%%), %.0f MB/s, %.1f s", c->what, c->dst,
		 fmt_bytes(c->written, a, sizeof(a)), fmt_bytes(c->data, b, sizeof(b)),
		 c->data ? 100.0 * (double)c->written / (double)c->data : 100.0, mbps, secs);
}

/* Feed the digest the part of [a, b) within its region: buf holds the bytes
 * from a, or is NULL for a hole. */
static int dig_span(struct copy *c, const uint8_t *buf, uint64_t a, uint64_t b)
{
	uint64_t from = a > c->dig_off ? a : c->dig_off, to = b < c->dig_end ? b : c->dig_end;

	if (!c->digest || from >= to)
		return 0;
	if (!buf)
		return sig_stream_zeros(c->digest, to - from);
	return sig_stream_feed(c->digest, buf + (from - a), (size_t)(to - from));
}

struct hash_job {
	struct copy *c;
	const uint8_t *buf;
	uint64_t a, b;
	int rc;
};

static void *hash_job_run(void *arg)
{
	struct hash_job *j = arg;

	j->rc = dig_span(j->c, j->buf, j->a, j->b);
	return NULL;
}

/* Write the block read into buf while another thread hashes it (both only
 * read buf); hashed here if no thread starts. */
static int put_hashed(struct copy *c, const uint8_t *buf, size_t n, uint64_t at)
{
	struct hash_job j = { c, buf, at, at + n, 0 };
	pthread_t t;
	bool threaded = c->digest && !pthread_create(&t, NULL, hash_job_run, &j);
	int rc = put(c, buf, n, at);

	if (threaded)
		pthread_join(t, NULL);
	else if (rc == 0)
		j.rc = dig_span(c, buf, at, at + n);
	return rc < 0 ? rc : j.rc;
}

/* Whole aligned blocks straight from the disk (its cached pages are slower
 * to read here than the disk: 4 GiB 10-11 s, O_DIRECT 5-6 s), a tail
 * through the page cache. */
void *read_job_run(void *arg)
{
	struct read_job *r = arg;
	size_t d = r->dfd >= 0 && r->at % COPY_ALIGN == 0 ? ALIGN_DOWN(r->n, COPY_ALIGN) : 0;
	ssize_t got = d ? pread_all(r->dfd, r->buf, d, (off_t)r->at) : 0;

	if (got == (ssize_t)d && d < r->n) {
		ssize_t t = pread_all(r->fd, r->buf + d, r->n - d, (off_t)(r->at + d));
		got = t < 0 ? t : got + t;
	}
	r->got = got;
	r->err = errno;
	return NULL;
}

static int read_check(const struct copy *c, const struct read_job *r)
{
	errno = r->err;
	if (r->got < 0)
		return err_sys(EXIT_FAIL, "reading %s at byte %llu", c->src, (unsigned long long)r->at);
	if ((size_t)r->got != r->n)
		return err_set(EXIT_FAIL, "%s ends at byte %llu, before the image does (did it change?)",
			       c->src, (unsigned long long)(r->at + (uint64_t)r->got));
	return 0;
}

/* Copy [a, b) through the two halves of buf: while one block is written
 * (and hashed), a thread reads the next into the other half. */
static int copy_range(struct copy *c, int din, uint8_t *buf, uint64_t a, uint64_t b, struct rate *p)
{
	struct read_job r = { c->in, din, buf, b - a < COPY_BLOCK ? (size_t)(b - a) : COPY_BLOCK, a, 0, 0 };

	read_job_run(&r);
	for (;;) {
		uint64_t at = r.at + r.n;
		struct read_job next = { c->in, din, r.buf == buf ? buf + COPY_BLOCK : buf,
					 b - at < COPY_BLOCK ? (size_t)(b - at) : COPY_BLOCK, at, 0, 0 };
		bool ahead;
		pthread_t t;
		char w[32], d[32];
		int rc;

		if (c->cancel && *c->cancel)
			return err_set(EXIT_FAIL, "interrupted after %s of %s was written",
				       fmt_bytes(c->written, w, sizeof(w)), fmt_bytes(c->data, d, sizeof(d)));
		if (read_check(c, &r) < 0)
			return -1;
		ahead = at < b && !pthread_create(&t, NULL, read_job_run, &next);
		rc = put_hashed(c, r.buf, r.n, r.at);
		if (ahead)
			pthread_join(t, NULL);
		if (rc < 0)
			return -1;
		c->written += r.n;
		if (c->progress && now_ms() >= p->next)
			progress_line(c, p);
		if (at >= b)
			return 0;
		if (!ahead)
			read_job_run(&next);
		r = next;
	}
}

int copy_run(struct copy *c)
{
	struct rate p;
	uint64_t pos = c->off, a, b;
	uint8_t *buf;
	/* Read as the target is written: past the page cache. */
	int rc, din = c->dout >= 0 ? stor_reopen_direct(c->in) : -1;

	c->written = c->direct = 0;
	rate_start(&p);
	if (posix_memalign((void **)&buf, COPY_ALIGN, 2 * COPY_BLOCK))
		return err_set(EXIT_FAIL, "copying %s: out of memory", c->src);
	posix_fadvise(c->in, (off_t)c->off, (off_t)(c->end - c->off), POSIX_FADV_SEQUENTIAL);
	while ((rc = next_range(c, pos, &a, &b)) > 0) {
		if (dig_span(c, NULL, pos, a) < 0 || copy_range(c, din, buf, a, b, &p) < 0) {
			rc = -1;
			break;
		}
		pos = b;
	}
	if (rc == 0 && dig_span(c, NULL, pos, c->end) < 0)
		rc = -1;
	free(buf);
	if (din >= 0)
		close(din);
	c->ms = now_ms() - p.t0;
	if (rc == 0 && c->progress)
		progress_line(c, &p);
	return rc;
}
