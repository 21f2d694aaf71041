/* snap_save_digest: the payload digest of a signed save (snap_save.c's
 * steps): where it is hashed from, and when. README, "What signing costs". */
#include "snap_save.h"
#include "log.h"
#include "mapped_ram.h"
#include "sign.h"
#include "storage.h"
#include "util.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

/* --bypass-cache in a signed v3 save: QEMU writes through the page cache
 * rather than with direct-io, the digest hashes the pages from there while a
 * thread syncs them, and the synced range is dropped from the cache (what
 * --bypass-cache is for: no cache left full of the image). With direct-io
 * the digest would read the whole stream back from the disk: a second pass
 * at disk speed (README, "What signing costs"). Only when the stream fits in
 * the cache: pages evicted before they are hashed would be read back anyway.
 * The O_DIRECT fd was opened all the same, so a file system that refuses
 * O_DIRECT is refused as for any --bypass-cache save. Short of memory (or
 * with VMSNAP_SIGNED_DIRECT=1, for tests) direct-io stays and the digest
 * reads the stream back, dropped from the cache with the rest at the end. */
void snap_save_signed_through_cache(struct save *s)
{
	if (s->t.dfd < 0 || s->h.version != 3 || !s->o->sign_key)
		return;
	s->t.drop_cache = true; /* what the digest reads back, either way */
	if (s->h.ram_size >= mem_available() || getenv("VMSNAP_SIGNED_DIRECT"))
		return;
	close(s->t.dfd);
	s->t.dfd = -1;
}

/* A signed save QEMU writes into a fresh file of ours (the temporary file),
 * the VM stopped: the digest starts on the chunks QEMU has completed while it
 * writes the rest (sig_early_start). A v2 stream QEMU appends, so everything
 * below the file's size is final. A v3 (mapped-ram) stream is not
 * append-only: each RAM block's bitmap is written at the end into the page
 * that holds the block's header, so only the chunks within the blocks' pages
 * regions are final (early_keep). Instant mode keeps its own digests. */
void snap_save_start_early(struct save *s)
{
	uint64_t max = s->h.ram_size + s->plugged;

	if (!s->o->sign_key || s->t.kind != STOR_REG || getenv("VMSNAP_NO_EARLY_DIGEST"))
		return;
	s->early_fd = open(s->t.tmp, O_RDONLY | O_CLOEXEC);
	if (s->early_fd < 0)
		return;
	s->early = sig_early_start(s->early_fd, s->h.stream_offset, max + max / 8 + (64u << 20),
				   SIG_CHUNK, usable_cpus());
}

/* A v3 stream's chunks hashed early that stand: those within the pages
 * regions of its RAM blocks, where QEMU wrote each page once. */
static void early_keep(struct save *s)
{
	struct file_range r[MR_MAX_BLOCKS];
	int n;

	if (s->h.version != 3)
		return;
	n = mr_pages_regions(s->early_fd, s->h.stream_offset, s->h.stream_length, r, MR_MAX_BLOCKS);
	log_debug("early digest: %d pages regions of RAM blocks recognised in the v3 stream", n);
	sig_early_restrict(s->early, r, n > 0 ? (size_t)n : 0);
}

/* The payload digest of the stream just written. Hashed in flight by the
 * relay, or read back: from the page cache while a thread syncs the same
 * pages to the disk (the digest overlaps the sync instead of following it),
 * or, after QEMU's O_DIRECT writes, from the disk with O_DIRECT reads. */
int snap_save_digest(struct save *s)
{
	struct snap_digest *d = &s->res->digest;
	struct sig_info in = { 0 };
	int rfd, rc;

	s->h.digest_chunk = SIG_CHUNK;
	/* Without the relay's hash, O_DIRECT writes came from QEMU (v3). */
	d->from = s->hash ? "in flight" : s->t.dfd >= 0 ? "disk" : "page cache";
	if (s->hash) { /* the relay fed it every byte it counted in stream_length */
		rc = sig_stream_finish(s->hash, s->h.payload_digest, &in);
	} else if (s->early) {
		if (s->t.dfd < 0)
			stor_sync_start(&s->t);
		if (!s->sent_once)
			log_info("QEMU's page counts do not show each page sent once: the chunks hashed during the save are hashed again");
		early_keep(s);
		rc = sig_early_finish(s->early, s->sent_once, s->early_fd, s->h.stream_length, usable_cpus(),
				      s->h.payload_digest, &in);
		s->early = NULL;
	} else {
		/* Through an fd of its own: QEMU's are write-only. */
		rfd = open(s->t.kind == STOR_REG ? s->t.tmp : s->t.path, O_RDONLY | O_CLOEXEC);
		if (rfd < 0)
			return err_sys(EXIT_FAIL, "reading back %s", s->t.path);
		if (s->t.dfd < 0)
			stor_sync_start(&s->t);
		rc = sig_payload_digest_info(rfd, s->h.stream_offset, s->h.stream_length, SIG_CHUNK,
					     usable_cpus(), s->h.payload_digest, &in);
		close(rfd);
	}
	if (rc < 0)
		return -1;
	d->bytes = in.bytes;
	d->read = in.bytes_read;
	d->early = in.bytes_early;
	d->ms = in.ms;
	return 0;
}

