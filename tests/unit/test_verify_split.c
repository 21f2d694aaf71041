/* test_verify_split: a signed image checked against its chunk table as the
 * restore hands it to QEMU. v3 (verify_split.c, verify_load.c): QEMU gets a
 * copy of the stream without the largest RAM block's pages and with its
 * bitmap cleared, every chunk of it checked before QEMU starts; vmsnap
 * loads the block's pages into the guest's memory (here a memfd), checking
 * each chunk where it landed. v2: the relay checks each chunk. */
#include "helpers.h"
#include "mr_stream.h"
#include "relay_drive.h"
#include "storage.h"
#include "verify.h"

#include <sys/mman.h>

char dir[64];

#define BITMAP (OFF + 80 + 1 + 6 + 8 + 28) /* pc.ram's, 256 bytes: 2048 pages */

struct fx {
	int fd, ram;
	uint64_t end, pages[3];
	struct vfy_result r;
};

/* The payload digest of the image as it is now and its chunk table after
 * the stream, as the save writes them. */
static void sign_payload(struct fx *f)
{
	struct sig_info in = { .keep_table = true };

	assert_int_equal(sig_payload_digest_info(f->fd, OFF, f->end - OFF, MIB, 2,
						 f->r.h.payload_digest, &in), 0);
	assert_int_equal(pwrite(f->fd, in.table, img_table_length(&f->r.h),
				(off_t)img_table_offset(&f->r.h)),
			 (ssize_t)img_table_length(&f->r.h));
	free(in.table);
}

static int setup(void **s)
{
	struct fx *f = calloc(1, sizeof(*f));
	uint8_t *ram = malloc(8 * MIB), ones[256];

	tu_mkdtemp(dir);
	f->fd = stream("img", f->pages, &f->end);
	for (uint64_t i = 0; i < 8 * MIB; i++)
		ram[i] = (uint8_t)(i * 13 + (i >> 12));
	assert_int_equal(pwrite(f->fd, ram, 8 * MIB, f->pages[0]), 8 * MIB); /* pc.ram's pages */
	memset(ones, 0xff, sizeof(ones));
	assert_int_equal(pwrite(f->fd, ones, sizeof(ones), BITMAP), sizeof(ones)); /* all named */
	free(ram);
	f->r.h = (struct img_header){ .version = 3, .stream_offset = OFF, .stream_length = f->end - OFF,
				      .digest_chunk = MIB, .ram_size = 8 * MIB };
	sign_payload(f);
	/* Bytes already in the guest's RAM before the load (vmsnap owes the guest exactly the image). */
	f->ram = memfd_create("ram", MFD_CLOEXEC);
	assert_int_equal(ftruncate(f->ram, 8 * MIB), 0);
	assert_int_equal(pwrite(f->ram, "rom image", 9, 4096), 9);
	assert_int_equal(pwrite(f->ram, "rom image", 9, 5 * MIB), 9);
	*s = f;
	return 0;
}

static int teardown(void **s)
{
	struct fx *f = *s;

	vfy_free(&f->r);
	close(f->fd);
	close(f->ram);
	free(f);
	tu_rmtree(dir);
	return 0;
}

static uint64_t size(const struct fx *f)
{
	return img_table_offset(&f->r.h) + img_table_length(&f->r.h);
}

/* The guest's RAM equals the image's pages, page by page (those the
 * bitmap does not name: zero). */
static void assert_ram_is_image(const struct fx *f, uint64_t unnamed_page)
{
	uint8_t *img = malloc(8 * MIB), *ram = malloc(8 * MIB);

	assert_int_equal(pread(f->fd, img, 8 * MIB, (off_t)f->pages[0]), 8 * MIB);
	assert_int_equal(pread(f->ram, ram, 8 * MIB, 0), 8 * MIB);
	if (unnamed_page)
		memset(img + unnamed_page * 4096, 0, 4096);
	assert_memory_equal(ram, img, 8 * MIB);
	free(img);
	free(ram);
}

static void test_block_loaded_by_vmsnap_qemu_gets_the_rest(void **s)
{
	struct fx *f = *s;
	uint8_t *a = malloc(f->end), *b = malloc(f->end), zero[256] = { 0 };
	int copy;

	vfy_split_prepare(f->fd, size(f), &f->r);
	assert_non_null(f->r.split);
	assert_false(f->r.payload_checked); /* nothing hashed yet */
	assert_true((copy = vfy_load_stream(&f->r, f->fd, "img")) >= 0);
	assert_int_equal(fcntl(copy, F_GETFL) & O_ACCMODE, O_RDONLY); /* as QEMU opens the file */
	/* the copy: the image but pc.ram's pages (a hole) and its bitmap (cleared) */
	assert_int_equal(pread(f->fd, a, f->end, 0), (ssize_t)f->end);
	assert_int_equal(pread(copy, b, f->end, 0), (ssize_t)f->end);
	assert_memory_equal(b + OFF, a + OFF, BITMAP - OFF);
	assert_memory_equal(b + BITMAP, zero, sizeof(zero));
	assert_memory_equal(b + BITMAP + 256, a + BITMAP + 256, f->pages[0] - BITMAP - 256);
	for (uint64_t i = 0; i < 8 * MIB; i += 4096)
		assert_memory_equal(b + f->pages[0] + i, zero, 256);
	assert_memory_equal(b + f->pages[1], a + f->pages[1], f->end - f->pages[1]);
	close(copy);
	assert_false(f->r.payload_checked);
	assert_int_equal(vfy_load_ram(&f->r, f->fd, f->ram, "img"), 0);
	assert_true(f->r.payload_checked);
	assert_true(f->r.in_flight);
	assert_ram_is_image(f, 0); /* what was there overwritten, the edge chunks' parts too */
	free(a);
	free(b);
}

/* A page the bitmap does not name is zero in the guest, whatever the
 * image or QEMU's reset left there. */
static void test_unnamed_pages_are_zero(void **s)
{
	struct fx *f = *s;
	uint8_t bits = 0xfd; /* page 1 not named */
	int copy;

	assert_int_equal(pwrite(f->fd, &bits, 1, BITMAP), 1);
	sign_payload(f);
	vfy_split_prepare(f->fd, size(f), &f->r);
	assert_true((copy = vfy_load_stream(&f->r, f->fd, "img")) >= 0);
	close(copy);
	assert_int_equal(vfy_load_ram(&f->r, f->fd, f->ram, "img"), 0);
	assert_ram_is_image(f, 1);
}

static void test_a_changed_page_is_found_as_it_is_loaded(void **s)
{
	struct fx *f = *s;
	int copy;

	vfy_split_prepare(f->fd, size(f), &f->r);
	assert_true((copy = vfy_load_stream(&f->r, f->fd, "img")) >= 0);
	close(copy);
	assert_int_equal(pwrite(f->fd, "x", 1, f->pages[0] + 3 * MIB + 5), 1);
	assert_int_equal(vfy_load_ram(&f->r, f->fd, f->ram, "img"), -1);
	assert_err(EXIT_REFUSED, "payload digest mismatch at byte 3153920 (RAM block pc.ram)");
	assert_false(f->r.payload_checked);
}

/* What QEMU parses (here the stream's prologue and a later block's pages)
 * is checked before QEMU starts. */
static void test_a_change_outside_the_block_is_found_before_qemu(void **s)
{
	struct fx *f = *s;

	assert_int_equal(pwrite(f->fd, "y", 1, OFF + 3), 1);
	vfy_split_prepare(f->fd, size(f), &f->r);
	assert_int_equal(vfy_load_stream(&f->r, f->fd, "img"), -1);
	assert_err(EXIT_REFUSED, "payload digest mismatch at byte 8192: the QEMU stream was changed or is corrupt; QEMU was not started");
	assert_int_equal(pwrite(f->fd, "Q", 1, OFF), 1);
	assert_int_equal(pwrite(f->fd, "z", 1, f->pages[2] + 7), 1);
	vfy_free(&f->r);
	vfy_split_prepare(f->fd, size(f), &f->r);
	assert_int_equal(vfy_load_stream(&f->r, f->fd, "img"), -1);
	assert_int_equal(err_code(), EXIT_REFUSED);
}

/* A table that is not the signed one, or none (an older vmsnap's image):
 * nothing split, the whole stream is checked. */
static void test_without_the_true_table_nothing_is_split(void **s)
{
	struct fx *f = *s;

	assert_int_equal(pwrite(f->fd, "t", 1, (off_t)img_table_offset(&f->r.h) + 40), 1);
	vfy_split_prepare(f->fd, size(f), &f->r);
	assert_null(f->r.split);
	vfy_split_prepare(f->fd, f->end, &f->r);
	assert_null(f->r.split);
	assert_int_equal(vfy_payload_whole(f->fd, "img", &f->r), 0);
	assert_true(f->r.payload_checked);
	assert_int_equal(pwrite(f->fd, "x", 1, f->pages[0] + 5), 1);
	assert_int_equal(vfy_payload_whole(f->fd, "img", &f->r), -1);
	assert_err(EXIT_REFUSED, "payload digest mismatch");
}

/* A chunk of the block that is a hole in the image (RAM the guest never
 * touched) and zeros in the table is not read: it is zeros in the guest. */
static void test_a_hole_in_the_block_is_not_read(void **s)
{
	struct fx *f = *s;
	int copy;

	assert_int_equal(fallocate(f->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				   OFF + 5 * MIB, MIB), 0);
	sign_payload(f);
	assert_int_equal(pwrite(f->ram, "junk", 4, 4 * MIB + 8192 + 100), 4); /* chunk 5 */
	vfy_split_prepare(f->fd, size(f), &f->r);
	assert_true((copy = vfy_load_stream(&f->r, f->fd, "img")) >= 0);
	close(copy);
	f->r.digest_read = 0;
	assert_int_equal(vfy_load_ram(&f->r, f->fd, f->ram, "img"), 0);
	assert_int_equal(f->r.digest_read, 6 * MIB); /* the block's whole chunks but the hole */
	assert_ram_is_image(f, 0);
}

/* v2: nothing hashed before QEMU starts; the relay checks each chunk as
 * it hands the stream over (relay_check), QEMU getting none of a chunk
 * that differs; _relayed wants every chunk checked. */
static uint64_t relay_all(struct fx *f, struct relay_check *ck, bool direct, bool slow, int *rc)
{
	return relay_drive(f->fd, OFF, f->end - OFF, ck, direct, slow, rc);
}

static void test_v2_chunks_checked_by_the_relay(void **s)
{
	struct fx *f = *s;
	struct relay_check *ck;
	int rc;

	f->r.h.version = 2;
	vfy_split_prepare(f->fd, size(f), &f->r);
	assert_non_null(ck = vfy_split_check(&f->r));
	assert_int_equal(f->r.digest_read, 0);
	assert_int_equal(vfy_split_relayed(&f->r, "img"), -1); /* nothing relayed yet */
	assert_int_equal(relay_all(f, ck, false, false, &rc), f->end - OFF);
	assert_int_equal(rc, 2);
	assert_int_equal(vfy_split_relayed(&f->r, "img"), 0);
	assert_true(f->r.payload_checked);
	ck->checked = 0;
	assert_int_equal(relay_all(f, ck, true, false, &rc), f->end - OFF);
	assert_int_equal(rc, 2);
	assert_int_equal(ck->checked, ck->n);
	for (int direct = 0; direct <= 1; direct++) { /* QEMU slow: lent pages wait in the pipe */
		ck->checked = 0;
		assert_int_equal(relay_all(f, ck, direct, true, &rc), f->end - OFF);
		assert_int_equal(rc, 2);
		assert_int_equal(ck->checked, ck->n);
	}
	/* the second chunk of the second fetch changed: QEMU gets the first
	 * fetch, nothing of the second (its first chunk passed the check) */
	assert_int_equal(pwrite(f->fd, "x", 1, OFF + RELAY_FETCH + MIB + 9), 1);
	assert_int_equal(fsync(f->fd), 0);
	for (int direct = 0; direct <= 1; direct++) {
		char want[96];
		ck->checked = 0;
		assert_int_equal(relay_all(f, ck, direct, false, &rc), RELAY_FETCH);
		assert_int_equal(rc, -1);
		snprintf(want, sizeof(want), "payload digest mismatch at byte %u", OFF + RELAY_FETCH + MIB);
		assert_err(EXIT_REFUSED, want);
		assert_int_equal(ck->checked, RELAY_FETCH / MIB + 1);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_block_loaded_by_vmsnap_qemu_gets_the_rest, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unnamed_pages_are_zero, setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_changed_page_is_found_as_it_is_loaded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_change_outside_the_block_is_found_before_qemu, setup, teardown),
		cmocka_unit_test_setup_teardown(test_without_the_true_table_nothing_is_split, setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_hole_in_the_block_is_not_read, setup, teardown),
		cmocka_unit_test_setup_teardown(test_v2_chunks_checked_by_the_relay, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
