/* digest_stream: the payload digest of a stream fed in order (sign.h). The
 * caller copies each chunk into the next slot of a ring; slot k is hashed by
 * worker k % threads, each worker taking its slots in ring order, so a pair
 * of semaphores per slot is all the handing over there is (no locks). The
 * caller collects a slot's hash when it comes round to that slot again, so
 * only the caller touches the growing list of chunk hashes. */
#include "sign.h"
#include "err.h"
#include "util.h"

#include <pthread.h>
#include <semaphore.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define SLOTS_PER_WORKER 2 /* one being hashed while the caller fills the other */
#define SLOTS (SIG_MAX_THREADS * SLOTS_PER_WORKER)

struct slot {
	uint8_t *buf;
	uint32_t len;      /* 0 in a slot handed over: stop */
	uint64_t idx;
	bool queued;       /* handed to its worker, hash not yet collected */
	sem_t ready, done; /* caller -> worker, worker -> caller */
	uint8_t hash[SIG_HASH];
};

struct sig_stream {
	uint32_t chunk;
	int nthreads, nslots, nsems;
	pthread_t tid[SIG_MAX_THREADS];
	struct slot slot[SLOTS];
	int cur;         /* the slot being filled */
	bool taken;      /* ... already emptied and numbered */
	uint64_t length; /* bytes fed */
	uint64_t n, cap; /* chunks so far; room in hashes */
	uint8_t *hashes;
	uint8_t zero[SIG_HASH];
	uint64_t t0;
};

struct start {
	struct sig_stream *s;
	int first;
};

static void *worker(void *arg)
{
	struct sig_stream *s = ((struct start *)arg)->s;
	int k = ((struct start *)arg)->first;

	free(arg);
	for (;;) {
		struct slot *sl = &s->slot[k];
		while (sem_wait(&sl->ready) < 0)
			;
		if (!sl->len)
			return NULL;
		sig_sha256(sl->buf, sl->len, sl->hash);
		sem_post(&sl->done);
		k = (k + s->nthreads) % s->nslots;
	}
}

static int put_hash(struct sig_stream *s, uint64_t idx, const uint8_t h[SIG_HASH])
{
	if (idx >= s->cap) {
		uint64_t cap = s->cap ? 2 * s->cap : 1024;
		uint8_t *p;
		while (cap <= idx)
			cap *= 2;
		p = realloc(s->hashes, cap * SIG_HASH);
		if (!p)
			return err_sys(EXIT_FAIL, "payload digest");
		s->hashes = p;
		s->cap = cap;
	}
	memcpy(s->hashes + idx * SIG_HASH, h, SIG_HASH);
	return 0;
}

/* Wait for slot k's worker and collect its hash. */
static int reclaim(struct sig_stream *s, int k)
{
	struct slot *sl = &s->slot[k];

	if (!sl->queued)
		return 0;
	while (sem_wait(&sl->done) < 0)
		;
	sl->queued = false;
	return put_hash(s, sl->idx, sl->hash);
}

/* The slot being filled, emptied and numbered on first use. */
static struct slot *current(struct sig_stream *s)
{
	struct slot *sl = &s->slot[s->cur];

	if (s->taken)
		return sl;
	if (reclaim(s, s->cur) < 0)
		return NULL;
	sl->len = 0;
	sl->idx = s->n;
	s->taken = true;
	return sl;
}

static void queue(struct sig_stream *s)
{
	struct slot *sl = &s->slot[s->cur];

	sl->queued = true;
	sem_post(&sl->ready);
	s->n++;
	s->cur = (s->cur + 1) % s->nslots;
	s->taken = false;
}

int sig_stream_add(struct sig_stream *s, const uint8_t *buf, uint64_t n)
{
	while (n) {
		struct slot *sl;
		uint32_t take;
		if (!s->taken && n >= s->chunk && !buf) {
			/* A whole zero chunk: its hash is known. */
			if (put_hash(s, s->n, s->zero) < 0)
				return -1;
			s->n++;
			s->length += s->chunk;
			n -= s->chunk;
			continue;
		}
		if (!(sl = current(s)))
			return -1;
		take = s->chunk - sl->len < n ? s->chunk - sl->len : (uint32_t)n;
		if (buf)
			memcpy(sl->buf + sl->len, buf, take);
		else
			memset(sl->buf + sl->len, 0, take);
		sl->len += take;
		s->length += take;
		n -= take;
		if (buf)
			buf += take;
		if (sl->len == s->chunk)
			queue(s);
	}
	return 0;
}

uint64_t sig_stream_length(const struct sig_stream *s)
{
	return s->length;
}

static int start_workers(struct sig_stream *s, int threads)
{
	for (; s->nthreads < threads; s->nthreads++) {
		struct start *a = malloc(sizeof(*a));
		if (!a)
			break;
		a->s = s;
		a->first = s->nthreads;
		if (pthread_create(&s->tid[s->nthreads], NULL, worker, a)) {
			free(a);
			break;
		}
	}
	return s->nthreads;
}

struct sig_stream *sig_stream_new(uint32_t chunk, int threads)
{
	struct sig_stream *s = calloc(1, sizeof(*s));

	if (!s) {
		err_sys(EXIT_FAIL, "payload digest");
		return NULL;
	}
	s->chunk = chunk;
	s->t0 = now_ms();
	threads = sig_threads(threads, SIG_MAX_THREADS);
	s->nslots = threads * SLOTS_PER_WORKER;
	for (; s->nsems < s->nslots; s->nsems++) {
		struct slot *sl = &s->slot[s->nsems];
		sem_init(&sl->ready, 0, 0);
		sem_init(&sl->done, 0, 0);
		if (!(sl->buf = malloc(chunk))) {
			s->nsems++;
			err_sys(EXIT_FAIL, "payload digest");
			sig_stream_free(s);
			return NULL;
		}
	}
	sig_zero_hash(chunk, s->zero);
	/* Fewer threads than asked for would leave slots nobody hashes. */
	if (start_workers(s, threads) < threads) {
		err_set(EXIT_FAIL, "payload digest: cannot start %d threads", threads);
		sig_stream_free(s);
		return NULL;
	}
	return s;
}

static int drain(struct sig_stream *s)
{
	int rc = 0;

	for (int k = 0; k < s->nslots; k++)
		if (reclaim(s, k) < 0)
			rc = -1;
	return rc;
}

int sig_stream_finish(struct sig_stream *s, uint8_t out[SIG_HASH], struct sig_info *info)
{
	if (s->taken && s->slot[s->cur].len)
		queue(s);
	if (drain(s) < 0)
		return -1;
	sig_payload_root(s->chunk, s->length, s->hashes, s->n, out);
	if (info) {
		info->bytes = info->bytes_read = s->length;
		info->ms = now_ms() - s->t0;
		info->threads = s->nthreads;
	}
	return 0;
}

void sig_stream_free(struct sig_stream *s)
{
	if (!s)
		return;
	drain(s);
	/* Each worker waits on its next slot: the next nthreads slots from cur. */
	for (int i = 0; i < s->nthreads; i++) {
		struct slot *sl = &s->slot[(s->cur + i) % s->nslots];
		sl->len = 0;
		sem_post(&sl->ready);
	}
	for (int i = 0; i < s->nthreads; i++)
		pthread_join(s->tid[i], NULL);
	for (int k = 0; k < s->nsems; k++) {
		free(s->slot[k].buf);
		sem_destroy(&s->slot[k].ready);
		sem_destroy(&s->slot[k].done);
	}
	free(s->hashes);
	free(s);
}
