/* sign_stream: the payload digest of a stream fed in order (sign.h): each
 * piece goes straight into the running SHA-256 of its chunk, no copy; a whole
 * chunk of zeros (a hole) takes the known zero-chunk hash. Hashed on the
 * caller's thread, or elsewhere a whole chunk at a time (sig_stream_put: the
 * O_DIRECT relay hashes each block on the thread that writes it). */
#include "sign.h"
#include "err.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

#include "mbedtls/sha256.h"

struct sig_stream {
	uint32_t chunk, fill;  /* chunk size; bytes of the current chunk so far */
	uint64_t length, n, cap; /* bytes fed; chunks hashed; room in hashes */
	uint8_t *hashes;
	uint8_t zero[SIG_HASH];
	uint64_t t0;
	mbedtls_sha256_context c; /* of the current chunk */
};

static int put_hash(struct sig_stream *s, const uint8_t h[SIG_HASH])
{
	if (s->n == s->cap) {
		uint64_t cap = s->cap ? 2 * s->cap : 1024;
		uint8_t *p = realloc(s->hashes, cap * SIG_HASH);
		if (!p)
			return err_sys(EXIT_FAIL, "payload digest");
		s->hashes = p;
		s->cap = cap;
	}
	memcpy(s->hashes + s->n++ * SIG_HASH, h, SIG_HASH);
	return 0;
}

/* The current chunk is complete (or the stream ended inside it). */
static int end_chunk(struct sig_stream *s)
{
	uint8_t h[SIG_HASH];

	mbedtls_sha256_finish(&s->c, h);
	mbedtls_sha256_starts(&s->c, 0);
	s->fill = 0;
	return put_hash(s, h);
}

int sig_stream_add(struct sig_stream *s, const uint8_t *buf, uint64_t n)
{
	static const uint8_t zero[512];

	while (n) {
		uint32_t take;
		if (!s->fill && n >= s->chunk && !buf) {
			if (put_hash(s, s->zero) < 0) /* a whole zero chunk: its hash is known */
				return -1;
			s->length += s->chunk;
			n -= s->chunk;
			continue;
		}
		take = s->chunk - s->fill < n ? s->chunk - s->fill : (uint32_t)n;
		if (!buf && take > sizeof(zero))
			take = sizeof(zero);
		mbedtls_sha256_update(&s->c, buf ? buf : zero, take);
		s->fill += take;
		s->length += take;
		n -= take;
		if (buf)
			buf += take;
		if (s->fill == s->chunk && end_chunk(s) < 0)
			return -1;
	}
	return 0;
}

int sig_stream_put(struct sig_stream *s, const uint8_t h[SIG_HASH], uint32_t n)
{
	if (s->fill || s->length % s->chunk || !n || n > s->chunk)
		return err_set(EXIT_FAIL, "payload digest: a chunk's hash out of place");
	s->length += n;
	return put_hash(s, h);
}

uint64_t sig_stream_length(const struct sig_stream *s)
{
	return s->length;
}

struct sig_stream *sig_stream_new(uint32_t chunk)
{
	struct sig_stream *s = calloc(1, sizeof(*s));

	if (!s) {
		err_sys(EXIT_FAIL, "payload digest");
		return NULL;
	}
	s->chunk = chunk;
	s->t0 = now_ms();
	sig_zero_hash(chunk, s->zero);
	mbedtls_sha256_init(&s->c);
	mbedtls_sha256_starts(&s->c, 0);
	return s;
}

int sig_stream_finish(struct sig_stream *s, uint8_t out[SIG_HASH], struct sig_info *info)
{
	if (s->fill && end_chunk(s) < 0)
		return -1;
	sig_payload_root(s->chunk, s->length, s->hashes, s->n, out);
	if (info && info->keep_table) {
		info->table = s->hashes;
		s->hashes = NULL;
	}
	if (info) {
		info->bytes = info->bytes_read = s->length;
		info->ms = now_ms() - s->t0;
		info->threads = 1;
	}
	return 0;
}

void sig_stream_free(struct sig_stream *s)
{
	if (!s)
		return;
	mbedtls_sha256_free(&s->c);
	free(s->hashes);
	free(s);
}
