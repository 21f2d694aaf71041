/* verify_split: a signed image checked against its chunk table chunk by
 * chunk as the restore hands the stream to QEMU (verify.h): the table read
 * and matched with the signed digest here, and for v3 the main RAM block's
 * place in the stream; v2's chunks are checked in the relay (relay.c), v3's
 * by vmsnap's own load of that block (verify_load.c). README, "What
 * signing costs". */
#include "verify.h"
#include "verify_split.h"
#include "err.h"
#include "log.h"
#include "mapped_ram.h"
#include "relay.h"
#include "sign_job.h"
#include "util.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>

static void split_free(struct vfy_split *sp)
{
	if (!sp)
		return;
	free(sp->table);
	free(sp->deferred);
	free(sp->edge[0].buf);
	free(sp->edge[1].buf);
	free(sp->bitmap);
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

/* A chunk that is a hole in the file, and zeros in the table: as signed
 * without being read (the digest hashes holes the same way), and zeros in
 * the guest's RAM (vfy_load_ram punches it). A v3 guest's untouched RAM is
 * such holes. */
static bool zero_hole(int fd, const struct img_header *h, const struct vfy_split *sp, uint64_t i,
		      const uint8_t zero[SIG_HASH])
{
	uint64_t at = h->stream_offset + i * h->digest_chunk;
	off_t d = lseek(fd, (off_t)at, SEEK_DATA);

	return !memcmp(sp->table + i * SIG_HASH, zero, SIG_HASH) &&
	       ((d < 0 && errno == ENXIO) || (d >= 0 && (uint64_t)d >= at + h->digest_chunk));
}

/* The largest RAM block's pages region, and its whole chunks that are not
 * zero holes marked (the ones vfy_load_ram reads and hashes). */
static bool find_block(int fd, const struct img_header *h, struct vfy_split *sp)
{
	struct file_range r[MR_MAX_BLOCKS];
	struct mr_info info[MR_MAX_BLOCKS];
	int n = mr_blocks(fd, h->stream_offset, h->stream_length, r, info, MR_MAX_BLOCKS), best = -1;
	uint64_t c = h->digest_chunk, marked = 0;
	uint8_t zero[SIG_HASH];

	for (int i = 0; i < n; i++)
		if (best < 0 || r[i].end - r[i].start > r[best].end - r[best].start)
			best = i;
	if (best < 0)
		return false;
	sp->region = r[best];
	sp->block = info[best];
	sig_zero_hash(c, zero);
	for (uint64_t i = 0; i < sp->n; i++) {
		uint64_t at = h->stream_offset + i * c;
		sp->deferred[i] = at >= sp->region.start && at + c <= sp->region.end &&
				  (i + 1) * c <= h->stream_length && !zero_hole(fd, h, sp, i, zero);
		marked += sp->deferred[i];
	}
	return marked > 0;
}

void vfy_split_prepare(int fd, uint64_t size, struct vfy_result *r)
{
	const struct img_header *h = &r->h;
	struct vfy_split *sp = read_table(fd, size, h);

	if (!sp)
		return;
	if (h->version == 2 && h->digest_chunk == RELAY_BUF) {
		sp->ck = (struct relay_check){ .table = sp->table, .n = sp->n };
		r->digest_bytes = h->stream_length;
		r->split = sp;
	} else if (h->version == 3 && find_block(fd, h, sp)) {
		r->digest_bytes = h->stream_length;
		r->split = sp;
	} else {
		split_free(sp);
	}
}

struct relay_check *vfy_split_check(struct vfy_result *r)
{
	return r->split && r->h.version == 2 ? &r->split->ck : NULL;
}

int vfy_split_relayed(struct vfy_result *r, const char *path)
{
	struct relay_check *ck = &r->split->ck;

	if (ck->checked != ck->n)
		return err_set(EXIT_FAIL, "image %s: %llu of %llu chunks were checked as QEMU read them",
			       path, (unsigned long long)ck->checked, (unsigned long long)ck->n);
	r->digest_read = r->h.stream_length;
	r->digest_ms = ck->us / 1000;
	r->payload_checked = true;
	r->in_flight = true;
	return 0;
}

const char *vfy_split_block(const struct vfy_result *r, uint64_t *len)
{
	if (!r->split || r->h.version != 3)
		return NULL;
	*len = r->split->region.end - r->split->region.start;
	return r->split->block.id;
}

void vfy_split_free(struct vfy_split *sp)
{
	split_free(sp);
}
