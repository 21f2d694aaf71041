/* relay: the v2 stream pump between QEMU's pipe and the image (relay.h). */
#include "relay.h"
#include "err.h"
#include "sign.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/statvfs.h>
#include <sys/uio.h>
#include <unistd.h>

#define DIO_ALIGN 4096u
#define AHEAD (24u << 20)
#define AHEAD_STEP (2u << 20)

int relay_init(struct relay *r, enum relay_dir dir, int pipe, int file, bool direct, uint64_t off,
	       uint64_t limit, const char *name)
{
	memset(r, 0, sizeof(*r));
	r->dir = dir;
	r->pipe = pipe;
	r->file = file;
	r->direct = direct;
	r->off = off;
	r->limit = limit;
	r->name = name;
	r->ahead = off;
	/* Bigger pipe, fewer wake-ups; the kernel may cap it, which is fine. */
	fcntl(pipe, F_SETPIPE_SZ, RELAY_BUF);
	/* A restore through buffers lends their pages to the pipe (vmsplice)
	 * where the pipe is no bigger than a fetch: see next_out. */
	r->lend = dir == RELAY_RESTORE && fcntl(pipe, F_GETPIPE_SZ) <= (int)RELAY_FETCH;
	if (fcntl(pipe, F_SETFL, fcntl(pipe, F_GETFL) | O_NONBLOCK) < 0)
		return err_sys(EXIT_FAIL, "relay pipe");
	if (direct && dir == RELAY_SAVE &&
	    posix_memalign((void **)&r->buf, DIO_ALIGN, RELAY_SLOTS * (size_t)RELAY_FETCH))
		return err_set(EXIT_FAIL, "relay: out of memory");
	return 0;
}

void relay_free(struct relay *r)
{
	for (unsigned i = 0; i < RELAY_SLOTS; i++) {
		if (r->fetch[i].on)
			pthread_join(r->fetch[i].t, NULL);
		if (r->put[i].on)
			pthread_join(r->put[i].t, NULL);
		r->fetch[i].on = r->put[i].on = false;
	}
	free(r->buf);
	r->buf = NULL;
}

static int write_error(struct relay *r, int e)
{
	char a[32], b[32];
	struct statvfs sv;

	if (e == ENOSPC || e == EFBIG) {
		if (r->limit)
			return err_set(EXIT_FAIL, "%s is full: %s of stream written, the device holds %s",
				       r->name, fmt_bytes(r->done, a, sizeof(a)),
				       fmt_bytes(r->limit, b, sizeof(b)));
		if (fstatvfs(r->file, &sv) == 0)
			return err_set(EXIT_FAIL,
				       "no space left for %s after %s of stream (%s free on its file system)",
				       r->name, fmt_bytes(r->done, a, sizeof(a)),
				       fmt_bytes((uint64_t)sv.f_bavail * sv.f_frsize, b, sizeof(b)));
	}
	errno = e;
	return err_sys(EXIT_FAIL, "writing %s after %s of stream", r->name,
		       fmt_bytes(r->done, a, sizeof(a)));
}

static void *put_run(void *arg)
{
	struct relay_put *w = arg;

	for (uint32_t at = 0; w->hash && at < w->bytes; at += RELAY_BUF)
		sig_sha256(w->buf + at, w->bytes - at < RELAY_BUF ? w->bytes - at : RELAY_BUF,
			   w->sums[at / RELAY_BUF]);
	w->err = pwrite_all(w->fd, w->buf, w->len, (off_t)w->at) < 0 ? errno : 0;
	return NULL;
}

/* The write of a slot, finished: its error, if any; signed, its chunks'
 * hashes into the digest (slots finish in stream order). */
static int put_wait(struct relay *r, struct relay_put *w)
{
	if (w->on)
		pthread_join(w->t, NULL);
	w->on = false;
	if (w->err)
		return write_error(r, w->err);
	for (uint32_t at = 0; w->hash && at < w->bytes; at += RELAY_BUF)
		if (sig_stream_put(r->hash, w->sums[at / RELAY_BUF],
				   w->bytes - at < RELAY_BUF ? w->bytes - at : RELAY_BUF) < 0)
			return -1;
	w->hash = false;
	return 0;
}

/* Direct mode: the image gets whole aligned blocks only, each hashed (if
 * signed) and written on a thread while the slots after it fill
 * (RELAY_SLOTS - 1 in flight); the next slot is free once its write has
 * finished. Hashed as they pass: blocks and chunks start at the stream's
 * first byte, as sig_payload_digest's do, so the root is a read-back's. */
static int put_block(struct relay *r, uint32_t len)
{
	struct relay_put *w = &r->put[r->slot];

	*w = (struct relay_put){ .fd = r->file, .buf = r->buf + r->slot * (size_t)RELAY_FETCH,
				 .len = len, .bytes = r->fill, .at = r->off + r->done - r->fill,
				 .hash = r->hash != NULL };
	if (r->limit && w->at + len > r->limit)
		return write_error(r, ENOSPC);
	w->on = !pthread_create(&w->t, NULL, put_run, w);
	if (!w->on)
		put_run(w);
	r->fill = 0;
	r->slot = (r->slot + 1) % RELAY_SLOTS;
	return put_wait(r, &r->put[r->slot]);
}

/* All writes finished, or the first that failed. */
static int put_all(struct relay *r)
{
	int rc = 0;

	for (unsigned i = 1; i <= RELAY_SLOTS; i++)
		if (put_wait(r, &r->put[(r->slot + i) % RELAY_SLOTS]) < 0 && rc == 0)
			rc = -1;
	return rc;
}

static int save_step(struct relay *r)
{
	ssize_t n;

	if (!r->direct) {
		loff_t at = (loff_t)(r->off + r->done);
		size_t want = RELAY_BUF;
		if (r->limit && r->off + r->done + want > r->limit)
			want = r->limit > r->off + r->done ? (size_t)(r->limit - r->off - r->done) : 0;
		if (!want) {
			/* Full device: is there more stream? Then it does not fit. */
			char probe;
			n = read(r->pipe, &probe, 1);
			if (n < 0 && errno == EAGAIN)
				return 0;
			if (n == 0)
				return 2;
			return write_error(r, ENOSPC);
		}
		n = splice(r->pipe, NULL, r->file, &at, want, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
		if (n < 0 && errno == EAGAIN)
			return 0;
		if (n < 0 && errno == EINTR)
			return 1;
		if (n < 0)
			return write_error(r, errno);
		if (n == 0)
			return 2;
		r->done += (uint64_t)n;
		return 1;
	}
	uint8_t *b = r->buf + r->slot * (size_t)RELAY_FETCH;
	n = read(r->pipe, b + r->fill, RELAY_FETCH - r->fill);
	if (n < 0 && errno == EAGAIN)
		return 0;
	if (n < 0 && errno == EINTR)
		return 1;
	if (n < 0)
		return err_sys(EXIT_FAIL, "reading the stream from QEMU");
	if (n == 0) {
		/* Pad the tail to a block: the header records the exact length. */
		uint32_t len = (uint32_t)ALIGN_UP(r->fill, DIO_ALIGN);
		if (r->fill) {
			memset(b + r->fill, 0, len - r->fill);
			if (put_block(r, len) < 0)
				return -1;
		}
		return put_all(r) < 0 ? -1 : 2;
	}
	r->fill += (uint32_t)n;
	r->done += (uint64_t)n;
	if (r->fill == RELAY_FETCH && put_block(r, RELAY_FETCH) < 0)
		return -1;
	return 1;
}

/* Read a fetch's bytes and, checked, hash each chunk of them. */
static void *fetch_run(void *arg)
{
	struct relay_fetch *f = arg;
	uint64_t t0;

	read_job_run(&f->rd);
	if (!f->hash || f->rd.got < (ssize_t)f->len)
		return NULL;
	t0 = now_us();
	for (uint32_t at = 0; at < f->len; at += RELAY_BUF)
		sig_sha256(f->rd.buf + at, f->len - at < RELAY_BUF ? f->len - at : RELAY_BUF,
			   f->sums[at / RELAY_BUF]);
	f->us = now_us() - t0;
	return NULL;
}

/* Start fetches until RELAY_DEPTH are in flight or the stream is asked for,
 * each into a slot of the ring that is neither in flight, nor going out, nor
 * the one that went out before (its pages may still be in the pipe). A tail
 * reads on to a whole block (past the stream: the device or file's). */
static void fetch_more(struct relay *r)
{
	while (r->flight < RELAY_DEPTH && r->fetched < r->limit) {
		unsigned i = (r->head + r->flight) % RELAY_SLOTS;
		struct relay_fetch *f = &r->fetch[i];
		uint64_t left = r->limit - r->fetched;

		f->len = left < RELAY_FETCH ? (uint32_t)left : RELAY_FETCH;
		f->rd = (struct read_job){ r->file, r->direct ? r->file : -1, r->buf + i * RELAY_FETCH,
					   ALIGN_UP(f->len, DIO_ALIGN), r->off + r->fetched, 0, 0 };
		f->hash = r->check != NULL;
		f->on = !pthread_create(&f->t, NULL, fetch_run, f);
		if (!f->on)
			fetch_run(f);
		r->fetched += f->len;
		r->flight++;
	}
}

/* The fetch just joined, its chunks' hashes against the table's. */
static int check_fetch(struct relay *r, const struct relay_fetch *f)
{
	struct relay_check *c = r->check;

	c->us += f->us;
	for (uint32_t at = 0; at < f->len; at += RELAY_BUF) {
		uint64_t i = (r->done + at) / RELAY_BUF;
		if (i >= c->n || memcmp(f->sums[at / RELAY_BUF], c->table + i * SIG_HASH, SIG_HASH))
			return err_set(EXIT_REFUSED,
				       "image %s: payload digest mismatch at byte %llu: the QEMU stream was changed or is corrupt; QEMU got none of that chunk and the guest did not run",
				       r->name, (unsigned long long)(r->off + r->done + at));
		c->checked++;
	}
	return 0;
}

/* The next bytes to hand out (the out before them all handed over): the
 * oldest fetch, joined and checked; the ring topped up again. */
static int next_out(struct relay *r, uint64_t left)
{
	struct relay_fetch *f;
	int queued = -1;

	if (!r->buf &&
	    posix_memalign((void **)&r->buf, DIO_ALIGN, RELAY_SLOTS * (size_t)RELAY_FETCH))
		return err_set(EXIT_FAIL, "relay: out of memory");
	/* Lent pages: the slot fetch_more refills below went out before the
	 * one that just did, so the pipe (FIFO) holds none of it once it holds
	 * no more than that one's bytes. A pipe of at most RELAY_FETCH bytes
	 * always does; QEMU growing its pipe would stop the relay here. */
	if (r->lend && r->out && (ioctl(r->pipe, FIONREAD, &queued) < 0 || (uint32_t)queued > r->fill))
		return err_set(EXIT_FAIL, "relay: QEMU's pipe holds %d bytes, more than the %u handed over last: a fetch would overwrite bytes QEMU has not read",
			       queued, r->fill);
	fetch_more(r); /* the first time */
	f = &r->fetch[r->head];
	if (f->on)
		pthread_join(f->t, NULL);
	f->on = false;
	r->head = (r->head + 1) % RELAY_SLOTS;
	r->flight--;
	errno = f->rd.err;
	if (f->rd.got < 0)
		return err_sys(EXIT_FAIL, "reading %s", r->name);
	if ((uint64_t)f->rd.got < f->len)
		return err_set(EXIT_FAIL, "%s ended %llu bytes before the end of its stream", r->name,
			       (unsigned long long)(left - (uint64_t)f->rd.got));
	if (r->check && check_fetch(r, f) < 0)
		return -1; /* fill == pos still: nothing of it goes out */
	r->out = f->rd.buf;
	r->fill = f->len;
	r->pos = 0;
	fetch_more(r); /* into the slot of the out before */
	return 0;
}

static int restore_step(struct relay *r)
{
	uint64_t left = r->limit - r->done;
	ssize_t n;

	if (!left)
		return 2;
	/* Through the page cache, the disk kept reading 24-26 MiB ahead (the
	 * kernel's own read-ahead is a few MiB, and waits for the reader), in
	 * 2 MiB requests: the kernel cuts one WILLNEED to its read-ahead window
	 * (2.5 MiB on a loop device; 8 MiB steps left gaps, 2G:75 checked from
	 * a device: 3.6-4.1 s, with 2 MiB 2.5-3.0 s). */
	while (!r->direct && r->ahead < r->off + r->limit && r->ahead < r->off + r->done + AHEAD) {
		posix_fadvise(r->file, (off_t)r->ahead, AHEAD_STEP, POSIX_FADV_WILLNEED);
		r->ahead += AHEAD_STEP;
	}
	if (!r->direct && !r->check) {
		loff_t at = (loff_t)(r->off + r->done);
		n = splice(r->file, &at, r->pipe, NULL, left < RELAY_BUF ? (size_t)left : RELAY_BUF,
			   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
		if (n == 0)
			return err_set(EXIT_FAIL, "%s ended %llu bytes before the end of its stream", r->name,
				       (unsigned long long)left);
	} else {
		if (r->pos == r->fill && next_out(r, left) < 0)
			return -1;
		struct iovec v = { (void *)(r->out + r->pos), r->fill - r->pos };
		/* Lent: the pipe takes the pages themselves, not a copy. */
		n = r->lend ? vmsplice(r->pipe, &v, 1, SPLICE_F_NONBLOCK) : write(r->pipe, v.iov_base, v.iov_len);
		if (n > 0)
			r->pos += (uint32_t)n;
	}
	if (n < 0 && errno == EAGAIN)
		return 0;
	if (n < 0 && errno == EINTR)
		return 1;
	if (n < 0 && errno == EPIPE)
		return err_set(EXIT_FAIL, "QEMU stopped reading the stream after %llu bytes",
			       (unsigned long long)r->done);
	if (n < 0)
		return err_sys(EXIT_FAIL, "relaying %s to QEMU", r->name);
	r->done += (uint64_t)n;
	return r->done == r->limit ? 2 : 1;
}

int relay_step(struct relay *r)
{
	return r->dir == RELAY_SAVE ? save_step(r) : restore_step(r);
}
