/* test_verify_split: a v3 stream checked in two steps (verify_split.c): all
 * but its largest RAM block's pages against the chunk table before QEMU
 * starts, those pages after the load, from "QEMU's memory" (here a file
 * holding the block), with the image as the fallback for a chunk whose
 * memory differs. */
#include "helpers.h"
#include "mr_stream.h"
#include "qemu_mem.h"
#include "relay.h"
#include "verify.h"

char dir[64];

struct fx {
	int fd, mem;
	uint64_t end, pages[3];
	struct vfy_result r;
	struct qemu_mem m;
};

static int setup(void **s)
{
	struct fx *f = calloc(1, sizeof(*f));
	uint8_t *ram = malloc(8 * MIB);
	struct sig_info in = { .keep_table = true };
	char path[4096];

	tu_mkdtemp(dir);
	f->fd = stream("img", f->pages, &f->end);
	for (uint64_t i = 0; i < 8 * MIB; i++)
		ram[i] = (uint8_t)(i * 13 + (i >> 12));
	/* pc.ram's pages in the image, and the same bytes as QEMU's memory */
	assert_int_equal(pwrite(f->fd, ram, 8 * MIB, f->pages[0]), 8 * MIB);
	f->mem = open(tu_path(path, dir, "mem"), O_RDWR | O_CREAT | O_TRUNC, 0644);
	assert_int_equal(pwrite(f->mem, ram, 8 * MIB, 0), 8 * MIB);
	free(ram);
	f->r.h = (struct img_header){ .version = 3, .stream_offset = OFF, .stream_length = f->end - OFF,
				      .digest_chunk = MIB };
	assert_int_equal(sig_payload_digest_info(f->fd, OFF, f->end - OFF, MIB, 2,
						 f->r.h.payload_digest, &in), 0);
	assert_int_equal(pwrite(f->fd, in.table, img_table_length(&f->r.h),
				(off_t)img_table_offset(&f->r.h)),
			 (ssize_t)img_table_length(&f->r.h));
	free(in.table);
	f->m = (struct qemu_mem){ .fd = f->mem, .at = 0, .block = "pc.ram" };
	*s = f;
	return 0;
}

static int teardown(void **s)
{
	struct fx *f = *s;

	vfy_free(&f->r);
	close(f->fd);
	close(f->mem);
	free(f);
	tu_rmtree(dir);
	return 0;
}

static uint64_t size(const struct fx *f)
{
	return img_table_offset(&f->r.h) + img_table_length(&f->r.h);
}

static void test_block_checked_from_memory_after_the_rest(void **s)
{
	struct fx *f = *s;

	assert_int_equal(vfy_split_prepare(f->fd, size(f), "img", &f->r), 0);
	assert_non_null(f->r.split);
	assert_false(f->r.payload_checked); /* not until the block is */
	assert_int_equal(vfy_split_finish(&f->r, f->fd, &f->m, "img"), 0);
	assert_true(f->r.payload_checked);
	assert_int_equal(f->r.digest_memory, 7 * MIB); /* the block's whole chunks */
}

/* A page QEMU left as it was (the bitmap does not name it) differs in
 * memory: that chunk is read from the image, which is as signed. */
static void test_memory_differing_from_a_true_image_passes(void **s)
{
	struct fx *f = *s;

	assert_int_equal(pwrite(f->mem, "x", 1, 3 * MIB + 5), 1);
	assert_int_equal(vfy_split_prepare(f->fd, size(f), "img", &f->r), 0);
	assert_int_equal(vfy_split_finish(&f->r, f->fd, &f->m, "img"), 0);
	assert_true(f->r.payload_checked);
}

static void test_a_changed_page_is_found_after_the_load(void **s)
{
	struct fx *f = *s;

	assert_int_equal(vfy_split_prepare(f->fd, size(f), "img", &f->r), 0);
	/* QEMU loaded the changed page: memory and image agree, not the table */
	assert_int_equal(pwrite(f->fd, "x", 1, f->pages[0] + 3 * MIB + 5), 1);
	assert_int_equal(pwrite(f->mem, "x", 1, 3 * MIB + 5), 1);
	assert_int_equal(vfy_split_finish(&f->r, f->fd, &f->m, "img"), -1);
	assert_err(EXIT_REFUSED, "payload digest mismatch at byte 3153920 (RAM block pc.ram)");
	assert_false(f->r.payload_checked);
}

/* Memory of another block (or none): the block is read from the image. */
static void test_without_the_blocks_memory_the_image_is_read(void **s)
{
	struct fx *f = *s;

	strcpy(f->m.block, "mach-virt.ram");
	assert_int_equal(vfy_split_prepare(f->fd, size(f), "img", &f->r), 0);
	assert_int_equal(vfy_split_finish(&f->r, f->fd, &f->m, "img"), 0);
	assert_int_equal(f->r.digest_memory, 0);
	assert_true(f->r.payload_checked);
	assert_int_equal(pwrite(f->fd, "x", 1, f->pages[0] + 2 * MIB + 5), 1);
	vfy_free(&f->r);
	assert_int_equal(vfy_split_prepare(f->fd, size(f), "img", &f->r), 0);
	assert_int_equal(vfy_split_finish(&f->r, f->fd, NULL, "img"), -1);
	assert_int_equal(err_code(), EXIT_REFUSED);
}

/* What QEMU parses (here the stream's prologue and a later block's pages)
 * is checked before QEMU starts. */
static void test_a_change_outside_the_block_is_found_first(void **s)
{
	struct fx *f = *s;

	assert_int_equal(pwrite(f->fd, "y", 1, OFF + 3), 1);
	assert_int_equal(vfy_split_prepare(f->fd, size(f), "img", &f->r), -1);
	assert_err(EXIT_REFUSED, "payload digest mismatch: the QEMU stream was changed");
	assert_null(f->r.split);
	assert_int_equal(pwrite(f->fd, "Q", 1, OFF), 1);
	assert_int_equal(pwrite(f->fd, "z", 1, f->pages[2] + 7), 1);
	assert_int_equal(vfy_split_prepare(f->fd, size(f), "img", &f->r), -1);
}

/* A table that is not the signed one, or none (an older vmsnap's image):
 * nothing split, the caller checks the whole stream. */
static void test_without_the_true_table_nothing_is_split(void **s)
{
	struct fx *f = *s;

	assert_int_equal(pwrite(f->fd, "t", 1, (off_t)img_table_offset(&f->r.h) + 40), 1);
	assert_int_equal(vfy_split_prepare(f->fd, size(f), "img", &f->r), 0);
	assert_null(f->r.split);
	assert_int_equal(vfy_split_prepare(f->fd, f->end, "img", &f->r), 0);
	assert_null(f->r.split);
}

/* A chunk of the block that is a hole in the image (RAM the guest never
 * touched) is checked before QEMU starts, from the file, for nothing: its
 * memory is not read. */
static void test_a_hole_in_the_block_is_not_read_from_memory(void **s)
{
	struct fx *f = *s;
	struct sig_info in = { .keep_table = true };

	assert_int_equal(fallocate(f->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				   OFF + 5 * MIB, MIB), 0);
	assert_int_equal(sig_payload_digest_info(f->fd, OFF, f->end - OFF, MIB, 2,
						 f->r.h.payload_digest, &in), 0);
	assert_int_equal(pwrite(f->fd, in.table, img_table_length(&f->r.h),
				(off_t)img_table_offset(&f->r.h)),
			 (ssize_t)img_table_length(&f->r.h));
	free(in.table);
	assert_int_equal(pwrite(f->mem, "junk", 4, 4 * MIB + 8192 + 100), 4); /* chunk 5 in memory */
	assert_int_equal(vfy_split_prepare(f->fd, size(f), "img", &f->r), 0);
	assert_int_equal(vfy_split_finish(&f->r, f->fd, &f->m, "img"), 0);
	assert_int_equal(f->r.digest_memory, 6 * MIB);
}

/* v2: nothing hashed before QEMU starts; the relay checks each chunk as
 * it hands the stream over (relay_check), QEMU getting none of a chunk
 * that differs; _finish wants every chunk checked. */
static uint64_t relay_all(struct fx *f, struct relay_check *ck, int *rc)
{
	struct relay rl;
	int p[2];
	uint64_t got = 0;
	char buf[65536];
	ssize_t n;

	assert_int_equal(pipe2(p, O_NONBLOCK), 0);
	assert_int_equal(relay_init(&rl, RELAY_RESTORE, p[1], f->fd, false, OFF, f->end - OFF, "img"), 0);
	rl.check = ck;
	while ((*rc = relay_step(&rl)) == 1 || *rc == 0)
		while ((n = read(p[0], buf, sizeof(buf))) > 0) /* both ends non-blocking */
			got += (uint64_t)n;
	close(p[1]);
	while ((n = read(p[0], buf, sizeof(buf))) > 0)
		got += (uint64_t)n;
	close(p[0]);
	relay_free(&rl);
	return got;
}

static void test_v2_chunks_checked_by_the_relay(void **s)
{
	struct fx *f = *s;
	struct relay_check *ck;
	int rc;

	f->r.h.version = 2;
	assert_int_equal(vfy_split_prepare(f->fd, size(f), "img", &f->r), 0);
	assert_non_null(ck = vfy_split_check(&f->r));
	assert_int_equal(f->r.digest_read, 0);
	assert_int_equal(vfy_split_finish(&f->r, f->fd, NULL, "img"), -1); /* nothing relayed yet */
	assert_int_equal(relay_all(f, ck, &rc), f->end - OFF);
	assert_int_equal(rc, 2);
	assert_int_equal(vfy_split_finish(&f->r, f->fd, NULL, "img"), 0);
	assert_true(f->r.payload_checked);
	/* chunk 2 changed: QEMU gets chunks 0 and 1, nothing of 2 */
	ck->checked = 0;
	assert_int_equal(pwrite(f->fd, "x", 1, OFF + 2 * MIB + 9), 1);
	assert_int_equal(relay_all(f, ck, &rc), 2 * MIB);
	assert_int_equal(rc, -1);
	assert_err(EXIT_REFUSED, "payload digest mismatch at byte 2105344");
	assert_int_equal(ck->checked, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_block_checked_from_memory_after_the_rest, setup, teardown),
		cmocka_unit_test_setup_teardown(test_memory_differing_from_a_true_image_passes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_changed_page_is_found_after_the_load, setup, teardown),
		cmocka_unit_test_setup_teardown(test_without_the_blocks_memory_the_image_is_read, setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_change_outside_the_block_is_found_first, setup, teardown),
		cmocka_unit_test_setup_teardown(test_without_the_true_table_nothing_is_split, setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_hole_in_the_block_is_not_read_from_memory, setup, teardown),
		cmocka_unit_test_setup_teardown(test_v2_chunks_checked_by_the_relay, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
