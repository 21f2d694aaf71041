/* mapped_ram: the pages regions of a v3 stream (mapped_ram.h). */
#include "mapped_ram.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define MR_HDR 28u               /* the MappedRamHeader's size */
#define MR_FIRST (64u << 10)     /* where the first block's header must be */
#define MR_BLOCK_HDR (1 + 255 + 8) /* id length, id, block length */

static uint64_t be(const uint8_t *p, int n)
{
	uint64_t v = 0;

	for (int i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

struct block {
	uint64_t page, bitmap, pages, used;
	char id[MR_ID_MAX];
};

/* The first block's id, which ends 8 bytes before its header at h (in buf):
 * a length byte, the id (printable), and before them the RAM section's
 * total size, whose low byte carries the MEM_SIZE flag (0x04). */
static void block_id(struct block *b, const uint8_t *buf, size_t h)
{
	b->id[0] = 0;
	for (size_t n = 1; n < MR_ID_MAX && n + 10 <= h; n++) {
		const uint8_t *id = buf + h - 8 - n;
		bool printable = true;
		for (size_t i = 0; i < n; i++)
			printable = printable && id[i] > ' ' && id[i] < 0x7f;
		if (id[-1] == n && printable && (id[-2] & 0x04)) {
			memcpy(b->id, id, n);
			b->id[n] = 0;
			return;
		}
	}
}

uint64_t mr_bitmap_len(uint64_t used, uint64_t page)
{
	return (used / page + 63) / 64 * 8;
}

/* The MappedRamHeader at file offset at, held in h (the 8 bytes before it
 * are the block's length): true if it is one, for a stream ending at end. */
static bool header_at(const uint8_t *h, uint64_t at, uint64_t end, struct block *b)
{
	uint64_t bitmap_len;

	b->used = be(h - 8, 8);
	b->page = be(h + 4, 8);
	b->bitmap = be(h + 12, 8);
	b->pages = be(h + 20, 8);
	if (be(h, 4) != 1 || b->page < 512 || b->page > (1u << 16) || (b->page & (b->page - 1)) ||
	    b->bitmap != at + MR_HDR || !b->used || b->used % b->page || b->pages % b->page)
		return false;
	bitmap_len = mr_bitmap_len(b->used, b->page);
	return b->pages >= b->bitmap + bitmap_len && b->pages <= end && b->used <= end - b->pages;
}

/* The first block's header within the stream's first bytes. */
static int first_block(int fd, uint64_t off, uint64_t end, struct block *b)
{
	size_t n = end - off < MR_FIRST ? (size_t)(end - off) : MR_FIRST;
	uint8_t *buf = malloc(n + 1);
	ssize_t r = buf ? pread_all(fd, buf, n, (off_t)off) : -1;
	int found = 0;

	for (size_t p = 8; r > 0 && !found && p + MR_HDR <= (size_t)r; p++)
		found = buf[p + 3] == 1 && header_at(buf + p, off + p, end, b);
	if (found)
		block_id(b, buf, (size_t)(b->bitmap - MR_HDR - off));
	free(buf);
	return r < 0 ? -1 : found;
}

/* The header of the block that starts at file offset at. */
static int next_block(int fd, uint64_t at, uint64_t end, const struct block *prev, struct block *b)
{
	uint8_t buf[MR_BLOCK_HDR + MR_HDR];
	ssize_t r = pread_all(fd, buf, sizeof(buf), (off_t)at);
	size_t h;

	if (r < 0)
		return -1;
	if (r < 1)
		return 0;
	h = 1 + (size_t)buf[0] + 8;
	if (buf[0] == 0 || (size_t)r < h + MR_HDR || !header_at(buf + h, at + h, end, b))
		return 0;
	b->id[0] = 0;
	if (buf[0] < MR_ID_MAX) {
		memcpy(b->id, buf + 1, buf[0]);
		b->id[buf[0]] = 0;
	}
	return b->page == prev->page;
}

int mr_pages_regions(int fd, uint64_t off, uint64_t len, struct file_range *r, int max)
{
	return mr_blocks(fd, off, len, r, NULL, max);
}

int mr_blocks(int fd, uint64_t off, uint64_t len, struct file_range *r, struct mr_info *info,
	      int max)
{
	uint64_t end = off + len;
	struct block b, next;
	int n = 0, k;

	if ((k = first_block(fd, off, end, &b)) <= 0)
		return k;
	do {
		if (n == max)
			break;
		if (info) {
			memcpy(info[n].id, b.id, MR_ID_MAX);
			info[n].page = b.page;
			info[n].bitmap = b.bitmap;
		}
		r[n++] = (struct file_range){ b.pages, b.pages + b.used };
		k = next_block(fd, b.pages + b.used, end, &b, &next);
		b = next;
	} while (k > 0);
	return k < 0 ? -1 : n;
}
