/* relay: moves a v2 (sequential) QEMU stream between a pipe and the image,
 * one non-blocking step at a time so the caller can watch QMP meanwhile;
 * splice() when buffered, aligned buffers when the image fd is O_DIRECT.
 * A restore through buffers reads (and, checked, hashes) the stream ahead
 * on threads and lends the buffers' pages to the pipe (vmsplice); a direct
 * save writes each block on a thread while the next ones fill. */
#ifndef VMSNAP_RELAY_H
#define VMSNAP_RELAY_H

#include "copy.h"
#include "sign.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct sig_stream;

#define RELAY_BUF (1u << 20)
/* Restore through buffers: the stream is read (and, checked, hashed) in
 * fetches of RELAY_FETCH bytes, each on a thread, RELAY_DEPTH of them in
 * flight while the one before goes to QEMU. */
#define RELAY_FETCH (4u * RELAY_BUF)
#define RELAY_DEPTH 4u
#define RELAY_SLOTS (RELAY_DEPTH + 2) /* the fetches, the out and the one before */

/* Save, direct: the write of one slot's block (and, signed, the hashes of
 * its chunks), on a thread. */
struct relay_put {
	int fd;
	const uint8_t *buf;
	uint32_t len;   /* to write: bytes, padded to a block */
	uint32_t bytes; /* of the stream */
	uint64_t at;
	int err;
	bool on, hash;
	pthread_t t;
	uint8_t sums[RELAY_FETCH / RELAY_BUF][SIG_HASH];
};

struct relay_fetch {
	struct read_job rd;
	uint32_t len;                                   /* stream bytes */
	bool hash;                                      /* hash each chunk */
	bool on;                                        /* thread t runs it */
	pthread_t t;
	uint64_t us;                                    /* time hashing */
	uint8_t sums[RELAY_FETCH / RELAY_BUF][SIG_HASH];
};

enum relay_dir { RELAY_SAVE, RELAY_RESTORE };

/* Restore: each chunk of RELAY_BUF bytes (the payload digest's, from the
 * stream's first byte) compared with its hash in table before QEMU gets a
 * byte of it; a chunk that differs ends the relay with an error. */
struct relay_check {
	const uint8_t *table; /* SIG_HASH bytes per chunk, in order */
	uint64_t n;           /* chunks */
	uint64_t checked;     /* of them passed so far */
	uint64_t us;          /* time spent hashing them */
};

struct relay {
	enum relay_dir dir;
	int pipe;          /* QEMU's other end: read (save) or write (restore) */
	int file;          /* the image, O_DIRECT when direct */
	bool direct;
	bool lend;         /* restore: out's pages go into the pipe (vmsplice) */
	uint64_t off;      /* image offset of the stream */
	uint64_t limit;    /* save: device capacity (0: none); restore: stream length */
	uint64_t done;     /* stream bytes moved so far */
	uint64_t ahead;    /* restore: read asked for (WILLNEED) up to here */
	const char *name;  /* image path, for messages */
	uint8_t *buf;      /* aligned: save, direct mode; restore, the fetches' */
	uint32_t fill;     /* bytes in buf (restore: in out) */
	uint32_t pos;      /* restore: bytes of out already handed to QEMU */
	const uint8_t *out;           /* restore: the fetch going to QEMU, in buf */
	struct relay_fetch fetch[RELAY_SLOTS]; /* restore: a ring, out's and */
	unsigned head, flight;        /* the fetches in flight, oldest first */
	uint64_t fetched;             /* stream bytes asked of them so far */
	struct relay_put put[RELAY_SLOTS]; /* save, direct: a ring, */
	unsigned slot;                /* this one filling */
	struct sig_stream *hash; /* save, direct: the payload digest of what passes */
	struct relay_check *check; /* restore: set after relay_init, or NULL */
};

int relay_init(struct relay *r, enum relay_dir dir, int pipe, int file, bool direct, uint64_t off,
	       uint64_t limit, const char *name);
/* Move what can be moved without waiting on the pipe: 1 moved something,
 * 0 the pipe would block, 2 finished (save: QEMU closed the pipe; restore:
 * all bytes handed over), -1 error. */
int relay_step(struct relay *r);
void relay_free(struct relay *r);

#endif
