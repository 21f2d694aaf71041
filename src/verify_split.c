/* verify_split: a signed v3 image checked in two steps (verify.h). A v3
 * stream is nearly all one RAM block's pages region: bytes QEMU copies into
 * the guest's memory without interpreting them. Everything else (the
 * stream's headers, bitmaps, device state: what QEMU parses) is checked
 * before QEMU starts, against the chunk table the save wrote after the
 * stream; the region's chunks are checked after QEMU has loaded them, from
 * QEMU's memory, before the guest runs: a restore checks the image without
 * a second pass over the disk. README, "What signing costs". */
#include "verify.h"
#include "err.h"
#include "log.h"
#include "mapped_ram.h"
#include "qemu_mem.h"
#include "relay.h"
#include "sign_job.h"
#include "util.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>

struct vfy_split {
	uint8_t *table;           /* the chunk hashes, their root the signed digest */
	uint8_t *deferred;        /* per chunk: 1 within the block's pages region */
	struct file_range region; /* the block's pages region (file offsets) */
	char block[MR_ID_MAX];    /* its id ("pc.ram") */
	uint64_t n;               /* chunks */
	struct relay_check ck;    /* v2: the relay's check of every chunk */
};

static void split_free(struct vfy_split *sp)
{
	if (!sp)
		return;
	free(sp->table);
	free(sp->deferred);
	free(sp);
}

/* The table, if the image has the true one. */
static struct vfy_split *read_table(int fd, uint64_t size, const struct img_header *h)
{
	uint64_t off = img_table_offset(h), len = img_table_length(h);
	struct vfy_split *sp;
	uint8_t root[SIG_HASH];

	if (!len || off + len > size || getenv("VMSNAP_NO_SPLIT_VERIFY"))
		return NULL;
	sp = calloc(1, sizeof(*sp));
	if (!sp || !(sp->table = malloc(len)) || !(sp->deferred = calloc(len / SIG_HASH, 1)) ||
	    pread_all(fd, sp->table, len, (off_t)off) != (ssize_t)len) {
		split_free(sp);
		return NULL;
	}
	sp->n = len / SIG_HASH;
	sig_payload_root(h->digest_chunk, h->stream_length, sp->table, sp->n, root);
	if (memcmp(root, h->payload_digest, SIG_HASH)) {
		log_info("the chunk table after the stream does not match the signed digest: the whole stream is checked first");
		split_free(sp);
		return NULL;
	}
	return sp;
}

/* A chunk that is a hole in the file, and zeros in the table: checked
 * before QEMU starts at no cost (the digest hashes holes without reading),
 * whatever QEMU's memory holds there (a chunk is as signed when either its
 * memory or the file matches: QEMU loads nothing from a hole that memory
 * would not already hold). A v3 guest's untouched RAM is such holes. */
static bool zero_hole(int fd, const struct img_header *h, const struct vfy_split *sp, uint64_t i,
		      const uint8_t zero[SIG_HASH])
{
	uint64_t at = h->stream_offset + i * h->digest_chunk;
	off_t d = lseek(fd, (off_t)at, SEEK_DATA);

	return !memcmp(sp->table + i * SIG_HASH, zero, SIG_HASH) &&
	       ((d < 0 && errno == ENXIO) || (d >= 0 && (uint64_t)d >= at + h->digest_chunk));
}

/* The largest RAM block's pages region, and its whole chunks marked but
 * zero holes. */
static bool find_block(int fd, const struct img_header *h, struct vfy_split *sp)
{
	struct file_range r[MR_MAX_BLOCKS];
	char ids[MR_MAX_BLOCKS][MR_ID_MAX];
	int n = mr_blocks(fd, h->stream_offset, h->stream_length, r, ids, MR_MAX_BLOCKS), best = -1;
	uint64_t c = h->digest_chunk, marked = 0;
	uint8_t zero[SIG_HASH];

	for (int i = 0; i < n; i++)
		if (best < 0 || r[i].end - r[i].start > r[best].end - r[best].start)
			best = i;
	if (best < 0)
		return false;
	sp->region = r[best];
	memcpy(sp->block, ids[best], MR_ID_MAX);
	sig_zero_hash(c, zero);
	for (uint64_t i = 0; i < sp->n; i++) {
		uint64_t at = h->stream_offset + i * c;
		sp->deferred[i] = at >= sp->region.start && at + c <= sp->region.end &&
				  (i + 1) * c <= h->stream_length && !zero_hole(fd, h, sp, i, zero);
		marked += sp->deferred[i];
	}
	return marked > 0;
}

int vfy_split_prepare(int fd, uint64_t size, const char *path, struct vfy_result *r)
{
	const struct img_header *h = &r->h;
	struct vfy_split *sp = read_table(fd, size, h);
	struct sig_pre pre;
	struct sig_info in = { 0 };
	uint8_t d[SIG_HASH];

	if (!sp)
		return 0;
	if (h->version == 2 && h->digest_chunk == RELAY_BUF) {
		sp->ck = (struct relay_check){ .table = sp->table, .n = sp->n };
		r->digest_bytes = h->stream_length;
		r->split = sp;
		return 0;
	}
	if (h->version != 3 || !find_block(fd, h, sp)) {
		split_free(sp);
		return 0;
	}
	/* The root over the file's chunks, the block's taken from the table:
	 * the signed digest only if every other chunk is as the table says. */
	pre = (struct sig_pre){ .hashes = sp->table, .done = sp->deferred, .n_chunks = sp->n,
				.off = h->stream_offset, .chunk = h->digest_chunk };
	if (sig_job_digest(fd, h->stream_offset, h->stream_length, h->digest_chunk, usable_cpus(),
			   &pre, d, &in) < 0) {
		split_free(sp);
		return -1;
	}
	if (memcmp(d, h->payload_digest, SIG_HASH)) {
		split_free(sp);
		return err_set(EXIT_REFUSED,
			       "image %s: payload digest mismatch: the QEMU stream was changed or is corrupt",
			       path);
	}
	r->digest_bytes = in.bytes;
	r->digest_read = in.bytes_read;
	r->digest_ms = in.ms;
	r->split = sp;
	log_debug("image %s: RAM block %s's pages (%llu bytes) checked after QEMU loads them", path,
		  sp->block, (unsigned long long)(sp->region.end - sp->region.start));
	return 0;
}

/* Chunk i from the file: 1 as the table says, 0 not, -1 a read error. */
static int file_chunk_ok(int fd, const struct img_header *h, const struct vfy_split *sp, uint64_t i)
{
	uint8_t *buf = malloc(h->digest_chunk), d[SIG_HASH];
	ssize_t n = buf ? pread_all(fd, buf, h->digest_chunk,
				    (off_t)(h->stream_offset + i * h->digest_chunk))
			: -1;

	if (n == (ssize_t)h->digest_chunk)
		sig_sha256(buf, h->digest_chunk, d);
	free(buf);
	if (n != (ssize_t)h->digest_chunk)
		return err_sys(EXIT_FAIL, "reading the image for its payload digest");
	return !memcmp(d, sp->table + i * SIG_HASH, SIG_HASH);
}

struct relay_check *vfy_split_check(struct vfy_result *r)
{
	return r->split && r->h.version == 2 ? &r->split->ck : NULL;
}

/* v2: the relay checked every chunk it handed to QEMU; all of them? */
static int relayed(struct vfy_result *r, const char *path)
{
	struct relay_check *ck = &r->split->ck;

	if (ck->checked != ck->n)
		return err_set(EXIT_FAIL, "image %s: %llu of %llu chunks were checked as QEMU read them",
			       path, (unsigned long long)ck->checked, (unsigned long long)ck->n);
	r->digest_read = r->h.stream_length;
	r->digest_ms = ck->us / 1000;
	r->payload_checked = true;
	return 0;
}

int vfy_split_finish(struct vfy_result *r, int fd, const struct qemu_mem *m, const char *path)
{
	const struct img_header *h = &r->h;
	struct vfy_split *sp = r->split;
	bool mem = m && m->fd >= 0 && !strcmp(m->block, sp->block);
	uint64_t t0 = now_ms(), again = 0;
	struct sig_pre *pre;
	int rc = 0;

	if (h->version == 2)
		return relayed(r, path);
	pre = mem ? sig_pre_from(m->fd, m->at, sp->region, h->stream_offset, h->stream_length,
				 h->digest_chunk, usable_cpus(), sp->deferred)
		  : sig_pre_from(fd, sp->region.start, sp->region, h->stream_offset,
				 h->stream_length, h->digest_chunk, usable_cpus(), sp->deferred);
	if (!pre)
		return -1;
	for (uint64_t i = 0; i < sp->n && rc >= 0; i++) {
		if (!sp->deferred[i] ||
		    (pre->done[i] && !memcmp(pre->hashes + i * SIG_HASH, sp->table + i * SIG_HASH, SIG_HASH)))
			continue;
		rc = mem ? file_chunk_ok(fd, h, sp, i) : 0;
		again++;
		if (rc == 0)
			rc = err_set(EXIT_REFUSED,
				     "image %s: payload digest mismatch at byte %llu (RAM block %s): the QEMU stream was changed or is corrupt; the guest did not run",
				     path, (unsigned long long)(h->stream_offset + i * h->digest_chunk),
				     sp->block);
	}
	if (mem)
		r->digest_memory = sig_pre_bytes(pre);
	else
		r->digest_read += sig_pre_bytes(pre);
	sig_pre_free(pre);
	r->digest_ms += now_ms() - t0;
	if (rc < 0)
		return -1;
	if (again)
		log_debug("payload digest: %llu chunks of QEMU's memory differed from the image, which matched",
			  (unsigned long long)again);
	r->payload_checked = true;
	return 0;
}

void vfy_split_free(struct vfy_split *sp)
{
	split_free(sp);
}
