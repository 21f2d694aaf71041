/* mapped_ram: where a v3 stream (QEMU's mapped-ram format) keeps each RAM
 * block's pages. Each block's header in the stream is followed by a
 * MappedRamHeader (big-endian: u32 version 1, u64 page size, u64 bitmap
 * offset, u64 pages offset, file offsets), the block's page bitmap (written
 * at the end of the migration) and, at a 1 MiB boundary, its pages region,
 * each page at its own place; the stream continues after the region. */
#ifndef VMSNAP_MAPPED_RAM_H
#define VMSNAP_MAPPED_RAM_H

#include <stdint.h>

#include "util.h"

#define MR_MAX_BLOCKS 64

/* The pages regions [pages offset, + the block's length) of the RAM blocks
 * of the mapped-ram stream at [off, off + len) of fd, in file order, into r
 * (at most max). The first block's header is found in the stream's first
 * 64 KiB by the bitmap offset that points just past it; each next one
 * directly after the pages of the one before, until a header does not check
 * out. Returns the count (0: none recognised), or -1 on a read error. */
int mr_pages_regions(int fd, uint64_t off, uint64_t len, struct file_range *r, int max);
/* The same, and for each block its id ("pc.ram"), page size and bitmap
 * (file offset; mr_bitmap_len bytes, host-endian longs: bit i set means
 * page i is in the file, a clear bit a page QEMU leaves as it is) into info
 * (max of them). */
#define MR_ID_MAX 64
struct mr_info {
	char id[MR_ID_MAX];
	uint64_t page, bitmap;
};
int mr_blocks(int fd, uint64_t off, uint64_t len, struct file_range *r, struct mr_info *info,
	      int max);
uint64_t mr_bitmap_len(uint64_t used, uint64_t page);

#endif
