/* sign: ECDSA P-256 keys in PEM, signatures over image headers, and the
 * payload digest: a SHA-256 root over per-chunk hashes, computed by threads. */
#ifndef VMSNAP_SIGN_H
#define VMSNAP_SIGN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "err.h"
#include "util.h"

#define SIG_HASH 32u
#define SIG_CHUNK (1u << 20) /* payload digest chunk */

/* SHA-256 of a buffer. */
void sig_sha256(const void *buf, size_t len, uint8_t out[SIG_HASH]);

#define SIG_MAX_THREADS 16

/* What a digest covered and cost, for --verbose and --json. */
struct sig_info {
	uint64_t bytes;      /* the region's length */
	uint64_t bytes_read; /* of it read (holes are not) or, streaming, fed */
	uint64_t bytes_early; /* of it hashed early (sig_early_*), before the stream ended */
	uint64_t ms;
	int threads;
	bool keep_table;     /* in: hand over the chunk hashes, */
	uint8_t *table;      /* out: here (malloc'd; the caller frees) */
};

/* Digest of the bytes [off, off+len) of fd in chunks of `chunk`, with
 * `threads` threads; chunks that are holes are hashed without reading.
 * _info also says what it read and how long it took (info may be NULL). */
int sig_payload_digest_info(int fd, uint64_t off, uint64_t len, uint32_t chunk, int threads,
			    uint8_t out[SIG_HASH], struct sig_info *info);
static inline int sig_payload_digest(int fd, uint64_t off, uint64_t len, uint32_t chunk,
				     int threads, uint8_t out[SIG_HASH])
{
	return sig_payload_digest_info(fd, off, len, chunk, threads, out, NULL);
}

/* The payload digest of a stream QEMU writes itself into a fresh regular
 * file at off (v3, or v2 through file:), with the VM stopped: threads hash
 * each chunk once it is complete (no hole left) while QEMU still writes.
 * NULL if it could not start (then digest the usual way). _finish stops
 * them and digests the rest of [off, off+len) through fd; keep false (QEMU
 * may have written some byte twice) drops what they hashed. _finish frees e. */
struct sig_early;
struct sig_early *sig_early_start(int fd, uint64_t off, uint64_t max_len, uint32_t chunk,
				  int threads);
int sig_early_finish(struct sig_early *e, bool keep, int fd, uint64_t len, int threads,
		     uint8_t out[SIG_HASH], struct sig_info *info);
void sig_early_free(struct sig_early *e);
/* Stops e's threads and keeps only the chunks hashed early that lie wholly
 * within one of the n ranges (file offsets): the rest of the file QEMU may
 * have written again after they were hashed (a v3 stream's block headers). */
void sig_early_restrict(struct sig_early *e, const struct file_range *final, size_t n);

/* Chunks of a digest's region hashed from the same bytes held elsewhere
 * (sign_from.c): those of [off, off + len) that lie wholly within `in`
 * (file offsets), read from src at src_off + (chunk start - in.start); for a
 * v3 save, the RAM block's pages region from the stopped VM's memory. NULL
 * with err set on a read error. _check compares up to n of them, spread
 * over the region, with the file's bytes: 0 all equal, 1 one differs, -1
 * error. _digest: the payload digest of fd's region with those chunks taken
 * from pre, the rest read. */
struct sig_pre;
struct sig_pre *sig_pre_from(int src, uint64_t src_off, struct file_range in, uint64_t off,
			     uint64_t len, uint32_t chunk, int threads);
int sig_pre_check(const struct sig_pre *pre, int fd, int n);
int sig_pre_digest(const struct sig_pre *pre, int fd, uint64_t len, int threads,
		   uint8_t out[SIG_HASH], struct sig_info *info);
void sig_pre_free(struct sig_pre *pre);
uint64_t sig_pre_bytes(const struct sig_pre *pre); /* what its chunks cover */
/* The same, hashed ahead, before the region's layout is known: threads hash
 * src's pieces [src_off + phase + j * chunk, + chunk) for all j within
 * src_len while the caller goes on. _take waits for them and gives the
 * chunks of [off, off + len) within `in` whose place in src (src_off +
 * chunk start - in.start) is one of those pieces: all of them when off -
 * in.start = phase (mod chunk), none otherwise. NULL (err set): a read error.
 * _free stops the threads; _take does not free a. */
struct sig_ahead;
struct sig_ahead *sig_ahead_start(int src, uint64_t src_off, uint64_t src_len, uint64_t phase,
				  uint32_t chunk, int threads);
struct sig_pre *sig_ahead_take(struct sig_ahead *a, struct file_range in, uint64_t off,
			       uint64_t len);
void sig_ahead_free(struct sig_ahead *a);

/* The pieces both ways of computing the digest share: the hash of len zero
 * bytes, the root over the chunk hashes. */
void sig_zero_hash(uint64_t len, uint8_t out[SIG_HASH]);
void sig_payload_root(uint32_t chunk, uint64_t len, const uint8_t *hashes, uint64_t n,
		      uint8_t out[SIG_HASH]);

/* The payload digest of a stream that passes through vmsnap (the v2
 * O_DIRECT relay), fed in order: the same root sig_payload_digest
 * computes from the stored bytes, without reading them back. Hashed on the
 * caller's thread (sign_stream.c says why). */
struct sig_stream;
struct sig_stream *sig_stream_new(uint32_t chunk); /* NULL: err set */
/* Append n bytes of buf, or (buf NULL) n zero bytes: a hole. */
int sig_stream_add(struct sig_stream *s, const uint8_t *buf, uint64_t n);
static inline int sig_stream_feed(struct sig_stream *s, const void *buf, size_t n)
{
	return sig_stream_add(s, buf, n);
}
static inline int sig_stream_zeros(struct sig_stream *s, uint64_t n)
{
	return sig_stream_add(s, NULL, n);
}
/* A chunk hashed elsewhere (sig_sha256 of its n bytes: a whole chunk, or
 * fewer for the stream's last), at a chunk boundary after whole chunks. */
int sig_stream_put(struct sig_stream *s, const uint8_t h[SIG_HASH], uint32_t n);
uint64_t sig_stream_length(const struct sig_stream *s);
/* The root over everything fed; the stream can take no more after it. */
int sig_stream_finish(struct sig_stream *s, uint8_t out[SIG_HASH], struct sig_info *info);
void sig_stream_free(struct sig_stream *s);

struct img_header;

#if CONFIG_SIGNING
/* Sign an image header with the private key at key_path: its key id, then
 * a signature over its signed bytes (the digest fields must be final). */
int sig_sign_header(struct img_header *h, const char *key_path);
/* New P-256 key pair: private PEM (mode 0600, never overwritten) and public PEM. */
int sig_keygen(const char *priv_path, const char *pub_path);
/* key_id of the private key at path: SHA-256 of its public key (DER). */
int sig_key_id(const char *key_path, uint8_t key_id[SIG_HASH]);
/* Sign hash with the private key at path. */
int sig_sign(const char *key_path, const uint8_t hash[SIG_HASH], uint8_t *sig, uint16_t *sig_len,
	     size_t sig_max);
/* Verify with one public key file: 0 good, -1 (EXIT_REFUSED) bad or wrong key. */
int sig_verify(const char *pub_path, const uint8_t hash[SIG_HASH], const uint8_t *sig,
	       size_t sig_len, const uint8_t key_id[SIG_HASH]);
/* Verify with whichever key in dir has key_id; names the key used in *used. */
int sig_verify_dir(const char *dir, const uint8_t hash[SIG_HASH], const uint8_t *sig,
		   size_t sig_len, const uint8_t key_id[SIG_HASH], char *used, size_t used_size);
#else
static inline int sig_unavailable(void)
{
	return err_set(EXIT_USAGE, "this vmsnap was built without signing (CONFIG_SIGNING)");
}
static inline int sig_sign_header(struct img_header *h, const char *k) { (void)h; (void)k; return sig_unavailable(); }
static inline int sig_keygen(const char *a, const char *b) { (void)a; (void)b; return sig_unavailable(); }
static inline int sig_key_id(const char *k, uint8_t id[SIG_HASH]) { (void)k; (void)id; return sig_unavailable(); }
static inline int sig_sign(const char *k, const uint8_t h[SIG_HASH], uint8_t *s, uint16_t *l, size_t m)
{ (void)k; (void)h; (void)s; (void)l; (void)m; return sig_unavailable(); }
static inline int sig_verify(const char *p, const uint8_t h[SIG_HASH], const uint8_t *s, size_t l,
			     const uint8_t id[SIG_HASH])
{ (void)p; (void)h; (void)s; (void)l; (void)id; return sig_unavailable(); }
static inline int sig_verify_dir(const char *d, const uint8_t h[SIG_HASH], const uint8_t *s,
				 size_t l, const uint8_t id[SIG_HASH], char *u, size_t us)
{ (void)d; (void)h; (void)s; (void)l; (void)id; (void)u; (void)us; return sig_unavailable(); }
#endif

#endif
