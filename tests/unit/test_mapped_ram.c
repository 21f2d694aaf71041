/* test_mapped_ram: mr_pages_regions on streams laid out as QEMU's mapped-ram
 * writes them (a stream prologue, then per RAM block: id, length,
 * MappedRamHeader, bitmap, pages region at a 1 MiB boundary), and on
 * streams whose headers do not check out. */
#include "helpers.h"
#include "mapped_ram.h"
#include "mr_stream.h"

char dir[64];

static int setup(void **s)
{
	(void)s;
	tu_mkdtemp(dir);
	return 0;
}

static int teardown(void **s)
{
	(void)s;
	tu_rmtree(dir);
	return 0;
}

static void test_regions_of_every_block(void **s)
{
	uint64_t pages[3], end;
	struct file_range r[MR_MAX_BLOCKS];
	int fd = stream("a", pages, &end);

	(void)s;
	assert_int_equal(mr_pages_regions(fd, OFF, end - OFF, r, MR_MAX_BLOCKS), 3);
	assert_int_equal(r[0].start, MIB);
	assert_int_equal(r[0].end, 9 * MIB);
	assert_int_equal(r[1].start, 10 * MIB);
	assert_int_equal(r[1].end, 10 * MIB + (128 << 10));
	assert_int_equal(r[2].start, pages[2]);
	assert_int_equal(r[2].end, pages[2] + (256 << 10));
	assert_int_equal(mr_pages_regions(fd, OFF, end - OFF, r, 2), 2);
	close(fd);
}

/* A header whose bitmap offset does not point just past it is no header:
 * in the first block nothing is found, in a later one the walk stops. */
static void test_a_header_that_does_not_check_out_ends_the_walk(void **s)
{
	uint64_t pages[3], end;
	struct file_range r[MR_MAX_BLOCKS];
	int fd = stream("b", pages, &end);

	(void)s;
	/* the second block's header: after the first pages region, "\x14" + id + length */
	put_be(fd, 12345, 8, 9 * MIB + 1 + 20 + 8 + 12);
	assert_int_equal(mr_pages_regions(fd, OFF, end - OFF, r, MR_MAX_BLOCKS), 1);
	put_be(fd, 1, 8, OFF + 80 + 1 + 6 + 8 + 12);
	assert_int_equal(mr_pages_regions(fd, OFF, end - OFF, r, MR_MAX_BLOCKS), 0);
	close(fd);
}

/* A pages region that would run past the stream's end is not one. */
static void test_region_past_the_stream_end_is_refused(void **s)
{
	uint64_t pages[3], end;
	struct file_range r[MR_MAX_BLOCKS];
	int fd = stream("c", pages, &end);

	(void)s;
	assert_int_equal(mr_pages_regions(fd, OFF, 5 * MIB, r, MR_MAX_BLOCKS), 0);
	assert_int_equal(mr_pages_regions(fd, OFF, 9 * MIB - OFF, r, MR_MAX_BLOCKS), 1);
	close(fd);
}

static void test_a_v2_stream_has_none(void **s)
{
	char path[4096];
	uint8_t junk[65536];
	struct file_range r[MR_MAX_BLOCKS];
	int fd = open(tu_path(path, dir, "v2"), O_RDWR | O_CREAT | O_TRUNC, 0644);

	(void)s;
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (uint8_t)(i * 7 + (i >> 9));
	assert_int_equal(pwrite(fd, junk, sizeof(junk), OFF), (ssize_t)sizeof(junk));
	assert_int_equal(mr_pages_regions(fd, OFF, sizeof(junk), r, MR_MAX_BLOCKS), 0);
	assert_int_equal(mr_pages_regions(fd, OFF, 0, r, MR_MAX_BLOCKS), 0);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_regions_of_every_block),
		cmocka_unit_test(test_a_header_that_does_not_check_out_ends_the_walk),
		cmocka_unit_test(test_region_past_the_stream_end_is_refused),
		cmocka_unit_test(test_a_v2_stream_has_none),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
