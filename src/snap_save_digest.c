/* snap_save_digest: the payload digest of a signed save (snap_save.c's
 * steps): where it is hashed from, and when. README, "What signing costs". */
#include "snap_save.h"
#include "log.h"
#include "mapped_ram.h"
#include "sign.h"
#include "storage.h"
#include "util.h"

#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* How a signed v3 save's digest will be hashed, chosen before the stop.
 * The main RAM block, nearly all of the stream, is hashed from QEMU's memory
 * while QEMU writes (the VM is stopped: the block's pages region holds
 * exactly that memory), with direct-io kept for --bypass-cache; the rest of
 * the stream, a few MB, is read back (snap_save_digest). Where QEMU's memory
 * cannot be read, a --bypass-cache save has QEMU write through the page
 * cache instead, the digest hashes the pages from there while a thread syncs
 * them, and the synced range is dropped from the cache (what --bypass-cache
 * is for: no cache left full of the image); reading a direct-io stream back
 * would be a second pass at disk speed. Only when the stream fits in the
 * cache: pages evicted before they are hashed would be read back anyway. The
 * O_DIRECT fd was opened all the same, so a file system that refuses
 * O_DIRECT is refused as for any --bypass-cache save. Short of memory (or
 * with VMSNAP_SIGNED_DIRECT=1, for tests) direct-io stays and the digest
 * reads the stream back, dropped from the cache with the rest at the end.
 * VMSNAP_NO_MEMORY_DIGEST=1 (tests, the bench's A/B rows) leaves QEMU's
 * memory alone. */
void snap_save_digest_plan(struct save *s)
{
	bool direct = getenv("VMSNAP_SIGNED_DIRECT") != NULL;

	if (s->h.version != 3 || !s->o->sign_key)
		return;
	if (!direct && !getenv("VMSNAP_NO_MEMORY_DIGEST") && qemu_mem_open(&s->q, s->pid, &s->mem) == 0)
		direct = true;
	if (s->t.dfd < 0)
		return;
	s->t.drop_cache = true; /* what the digest reads back, either way */
	if (direct || s->h.ram_size >= mem_available())
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

	if (!s->o->sign_key || getenv("VMSNAP_NO_EARLY_DIGEST"))
		return;
	/* QEMU's memory, hashed while QEMU writes: its chunks' places in the
	 * block follow from the stream's offset alone, as QEMU puts each pages
	 * region at a 1 MiB boundary (from_memory checks that it did). */
	if (s->mem.fd >= 0) {
		s->ahead = sig_ahead_start(s->mem.fd, s->mem.at, s->h.ram_size,
					   s->h.stream_offset % SIG_CHUNK, SIG_CHUNK, usable_cpus());
		return;
	}
	if (s->t.kind != STOR_REG)
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

/* A signed v3 save with direct-io: the main RAM block's chunks hashed from
 * QEMU's memory (*ahead: while QEMU wrote), a sample of them compared with
 * the file. NULL (then the file is read) if the stream's layout or the
 * sample does not agree. */
static struct sig_pre *from_memory(struct save *s, int rfd, bool *ahead)
{
	struct file_range r[MR_MAX_BLOCKS];
	struct mr_info info[MR_MAX_BLOCKS];
	struct sig_pre *pre = NULL;
	int n = mr_blocks(rfd, s->h.stream_offset, s->h.stream_length, r, info, MR_MAX_BLOCKS);

	for (int i = 0; i < n && !pre; i++) {
		if (strcmp(info[i].id, s->mem.block))
			continue;
		if (s->ahead && (pre = sig_ahead_take(s->ahead, r[i], s->h.stream_offset,
						      s->h.stream_length)) && !sig_pre_bytes(pre)) {
			sig_pre_free(pre); /* the region was not where the pieces were */
			pre = NULL;
		}
		*ahead = pre != NULL;
		if (!pre)
			pre = sig_pre_from(s->mem.fd, s->mem.at, r[i], s->h.stream_offset,
					   s->h.stream_length, SIG_CHUNK, usable_cpus());
		if (pre && sig_pre_check(pre, rfd, 8) != 0) {
			log_warn("payload digest: QEMU's memory does not match the image's RAM block %s: the image is read back instead",
				 s->mem.block);
			sig_pre_free(pre);
			pre = NULL;
		}
	}
	if (!pre)
		log_debug("payload digest: RAM block %s not hashed from memory", s->mem.block);
	return pre;
}

/* Read back: through an fd of its own (QEMU's are write-only), the main RAM
 * block from QEMU's memory when it may be. */
static int read_back(struct save *s, struct sig_info *in)
{
	struct snap_digest *d = &s->res->digest;
	struct sig_pre *pre = NULL;
	bool ahead = false;
	int rfd, rc;

	rfd = open(s->t.kind == STOR_REG ? s->t.tmp : s->t.path, O_RDONLY | O_CLOEXEC);
	if (rfd < 0)
		return err_sys(EXIT_FAIL, "reading back %s", s->t.path);
	if (s->t.dfd < 0)
		stor_sync_start(&s->t);
	if (s->mem.fd >= 0 && s->h.version == 3 && s->sent_once)
		pre = from_memory(s, rfd, &ahead);
	if (pre) {
		d->from = "memory";
		rc = sig_pre_digest(pre, rfd, s->h.stream_length, usable_cpus(), s->h.payload_digest, in);
		d->memory = in->bytes_early;
		if (!ahead)
			in->bytes_early = 0;
		sig_pre_free(pre);
	} else {
		rc = sig_payload_digest_info(rfd, s->h.stream_offset, s->h.stream_length, SIG_CHUNK,
					     usable_cpus(), s->h.payload_digest, in);
	}
	close(rfd);
	return rc;
}

/* The chunk table (image.h), after the stream: a restore checks chunks one
 * by one against it (verify_split.c): a v3 RAM block's once QEMU has loaded
 * them, a v2 stream's as the relay hands them to QEMU. Synced with the
 * stream, before the complete header. A device too small for it goes
 * without (its restores check the whole stream first). */
static int write_table(struct save *s, const uint8_t *table)
{
	return stor_write_table(&s->t, &s->h, table, s->h.stream_offset + s->h.stream_length) < 0 ? -1 : 0;
}

/* The payload digest of the stream just written. Hashed in flight by the
 * relay, or read back: from the page cache while a thread syncs the same
 * pages to the disk (the digest overlaps the sync instead of following it),
 * or, after QEMU's O_DIRECT writes, from QEMU's memory or the disk. */
int snap_save_digest(struct save *s)
{
	struct snap_digest *d = &s->res->digest;
	struct sig_info in = { 0 };
	uint64_t t0 = now_ms();
	int rc;

	s->h.digest_chunk = SIG_CHUNK;
	in.keep_table = s->h.version != IMG_VERSION_INSTANT;
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
		rc = read_back(s, &in);
	}
	if (rc == 0 && in.table)
		rc = write_table(s, in.table);
	free(in.table);
	if (rc < 0)
		return -1;
	d->bytes = in.bytes;
	d->read = in.bytes_read;
	d->early = in.bytes_early;
	d->ms = s->hash ? in.ms : now_ms() - t0;
	return 0;
}
