/* relay: the v2 stream pump between QEMU's pipe and the image (relay.h). */
#include "relay.h"
#include "err.h"
#include "sign.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
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
	if (fcntl(pipe, F_SETFL, fcntl(pipe, F_GETFL) | O_NONBLOCK) < 0)
		return err_sys(EXIT_FAIL, "relay pipe");
	if (direct && dir == RELAY_SAVE && posix_memalign((void **)&r->buf, DIO_ALIGN, RELAY_BUF))
		return err_set(EXIT_FAIL, "relay: out of memory");
	return 0;
}

void relay_free(struct relay *r)
{
	if (r->next_on)
		pthread_join(r->next_t, NULL);
	r->next_on = false;
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

/* Direct mode: the image gets whole aligned blocks only. */
static int flush_block(struct relay *r, uint32_t len)
{
	uint64_t at = r->off + r->done - r->fill;

	if (r->limit && at + len > r->limit)
		return write_error(r, ENOSPC);
	if (pwrite_all(r->file, r->buf, len, (off_t)at) < 0)
		return write_error(r, errno);
	r->fill = 0;
	return 0;
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
	n = read(r->pipe, r->buf + r->fill, RELAY_BUF - r->fill);
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
			memset(r->buf + r->fill, 0, len - r->fill);
			if (flush_block(r, len) < 0)
				return -1;
		}
		return 2;
	}
	/* Hashed as it passes: the chunks start at the stream's first byte, as
	 * sig_payload_digest's do, so the root is the one a read-back gives. */
	if (r->hash && sig_stream_feed(r->hash, r->buf + r->fill, (size_t)n) < 0)
		return -1;
	r->fill += (uint32_t)n;
	r->done += (uint64_t)n;
	if (r->fill == RELAY_BUF && flush_block(r, RELAY_BUF) < 0)
		return -1;
	return 1;
}

/* The chunk just read, against its hash in the table. */
static int check_chunk(struct relay *r, const uint8_t *buf, uint32_t len)
{
	struct relay_check *c = r->check;
	uint64_t i = r->done / RELAY_BUF;
	uint8_t h[SIG_HASH];
	uint64_t t0 = now_us();

	sig_sha256(buf, len, h);
	c->us += now_us() - t0;
	if (i >= c->n || memcmp(h, c->table + i * SIG_HASH, SIG_HASH))
		return err_set(EXIT_REFUSED,
			       "image %s: payload digest mismatch at byte %llu: the QEMU stream was changed or is corrupt; QEMU got none of that chunk and the guest did not run",
			       r->name, (unsigned long long)(r->off + r->done));
	c->checked++;
	return 0;
}

/* The read of the chunk at stream byte `from` (an aligned block: a tail reads
 * on past the stream) into the half of buf that is not going out. */
static void next_read(struct relay *r, uint64_t from)
{
	uint64_t left = r->limit - from;

	r->next = (struct read_job){ r->file, r->direct ? r->file : -1,
				     r->buf + (r->out == r->buf ? RELAY_BUF : 0),
				     left < RELAY_BUF ? ALIGN_UP(left, DIO_ALIGN) : RELAY_BUF,
				     r->off + from, 0, 0 };
}

/* The next chunk to hand out: read ahead while the one before went out (or
 * now), checked, and the read of the one after it started. */
static int next_chunk(struct relay *r, uint64_t left)
{
	uint32_t need = left < RELAY_BUF ? (uint32_t)left : RELAY_BUF;

	if (!r->buf && posix_memalign((void **)&r->buf, DIO_ALIGN, 2 * RELAY_BUF))
		return err_set(EXIT_FAIL, "relay: out of memory");
	if (r->next_on)
		pthread_join(r->next_t, NULL);
	else {
		next_read(r, r->done);
		read_job_run(&r->next);
	}
	r->next_on = false;
	errno = r->next.err;
	if (r->next.got < 0)
		return err_sys(EXIT_FAIL, "reading %s", r->name);
	if ((uint64_t)r->next.got < need)
		return err_set(EXIT_FAIL, "%s ended %llu bytes before the end of its stream", r->name,
			       (unsigned long long)(left - (uint64_t)r->next.got));
	if (r->check && check_chunk(r, r->next.buf, need) < 0)
		return -1; /* fill == pos still: nothing of it goes out */
	r->out = r->next.buf;
	r->fill = need;
	r->pos = 0;
	if (left > need) {
		next_read(r, r->done + need);
		r->next_on = !pthread_create(&r->next_t, NULL, read_job_run, &r->next);
	}
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
		if (r->pos == r->fill && next_chunk(r, left) < 0)
			return -1;
		n = write(r->pipe, r->out + r->pos, r->fill - r->pos);
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
