/* copy: copy a byte range of an image to a target, holes kept (SEEK_DATA/
 * SEEK_HOLE) when the target is a fresh file, in large aligned O_DIRECT reads
 * and writes. */
#ifndef VMSNAP_COPY_H
#define VMSNAP_COPY_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct sig_stream;

/* The copy's buffer: a block read while one is written. 16 MiB blocks keep
 * four 4 MiB requests in flight each way (4 GiB direct to direct, dd: 4 MiB
 * blocks 9.2-9.6 s, 16 MiB 7.1-7.4 s). */
#define COPY_BUF (32u << 20)
#define COPY_ALIGN 4096u    /* O_DIRECT offsets and lengths; extents are widened to it */

struct copy {
	int in;                        /* source, readable */
	int out;                       /* target, buffered writes */
	int dout;                      /* the target with O_DIRECT, or -1 */
	uint64_t off, end;             /* copy [off, end) to the same offsets */
	bool sparse;                   /* skip holes: the target is a fresh file already sized */
	bool progress;                 /* a line a second on stderr, */
	const char *what;              /* starting with this ("provisioning") */
	const char *src, *dst;         /* names for messages */
	volatile sig_atomic_t *cancel; /* set by a signal handler: stop with an error */
	struct sig_stream *digest;     /* or NULL: fed the bytes of [dig_off, dig_end) */
	uint64_t dig_off, dig_end;     /* as copied, holes as zeros, in order */
	uint64_t data;                 /* copy_plan: the bytes copy_run will write */
	uint64_t written, direct;      /* copy_run: bytes written, of them with O_DIRECT */
	uint64_t ms;                   /* copy_run: time taken */
};

/* A read of [at, at+n) of a source into buf, on a thread of its own or
 * not: whole aligned blocks through dfd (O_DIRECT) when it is not -1, the
 * rest through fd; got: bytes read or -1 with err, errno. */
struct read_job {
	int fd, dfd;
	uint8_t *buf;
	size_t n;
	uint64_t at;
	ssize_t got;
	int err;
};
void *read_job_run(void *job);

/* Count the bytes to write (the data extents when sparse) into c->data. */
int copy_plan(struct copy *c);
/* Copy. A target that refuses O_DIRECT writes gets buffered ones instead.
 * Each block is written while the next is read and, with c->digest, hashed,
 * each on a thread of its own (started per block: 16 MiB, a few µs each).
 * With c->dout, the source is read with O_DIRECT too. */
int copy_run(struct copy *c);

#endif
