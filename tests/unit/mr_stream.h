/* mr_stream: v3 streams laid out as QEMU's mapped-ram writes them (a
 * stream prologue, then per RAM block: id, length, MappedRamHeader, bitmap,
 * pages region at a 1 MiB boundary), for the unit tests that read them. The
 * test defines `dir`, its temporary directory. */
#ifndef VMSNAP_TEST_MR_STREAM_H
#define VMSNAP_TEST_MR_STREAM_H

#include "helpers.h"

#define MIB (1u << 20)
#define OFF 8192u /* where the stream starts in the file */

extern char dir[64];

static inline void put_be(int fd, uint64_t v, int n, uint64_t at)
{
	uint8_t b[8];

	for (int i = 0; i < n; i++)
		b[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
	assert_int_equal(pwrite(fd, b, (size_t)n, (off_t)at), n);
}

/* One block's header at `at`; returns where the stream goes on. */
static inline uint64_t put_block(int fd, uint64_t at, const char *id, uint64_t used, uint64_t *pages)
{
	uint8_t len = (uint8_t)strlen(id);
	uint64_t h = at + 1 + len + 8, bitmap = h + 28, bitmap_len = (used / 4096 + 63) / 64 * 8;

	assert_int_equal(pwrite(fd, &len, 1, (off_t)at), 1);
	assert_int_equal(pwrite(fd, id, len, (off_t)(at + 1)), len);
	put_be(fd, used, 8, at + 1 + len);
	*pages = ALIGN_UP(bitmap + bitmap_len, MIB);
	put_be(fd, 1, 4, h);
	put_be(fd, 4096, 8, h + 4);
	put_be(fd, bitmap, 8, h + 12);
	put_be(fd, *pages, 8, h + 20);
	return *pages + used;
}

/* A stream of three blocks, as QEMU lays it out; its end into *end. */
static inline int stream(const char *name, uint64_t want[3], uint64_t *end)
{
	static const char prologue[] = "QEVM\0\0\0\3\7\0\0\0\13pc-q35-10.0\1\0\0\0\1\3ram";
	const char *ids[3] = { "pc.ram", "/rom@etc/acpi/tables", "pc.bios" };
	uint64_t used[3] = { 8 * MIB, 128 << 10, 256 << 10 }, at = OFF + 80;
	char path[4096];
	int fd = open(tu_path(path, dir, name), O_RDWR | O_CREAT | O_TRUNC, 0644);

	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, prologue, sizeof(prologue), OFF), (ssize_t)sizeof(prologue));
	/* the RAM section's total size, its low byte carrying the MEM_SIZE flag */
	put_be(fd, (8 * MIB + (384 << 10)) | 0x04, 8, at - 8);
	for (int i = 0; i < 3; i++)
		at = put_block(fd, at, ids[i], used[i], &want[i]);
	put_be(fd, 0x10, 8, at); /* what follows the RAM: no block header */
	*end = at + 4096;
	assert_int_equal(ftruncate(fd, (off_t)*end), 0);
	return fd;
}

#endif
