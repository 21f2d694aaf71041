/* test_relay: the v2 restore relay over a stream long enough for its ring of
 * fetches to come round several times, every chunk checked, read through the
 * page cache and with O_DIRECT, QEMU (the test) reading at once or slowly.
 * The pipe holds the relay's own pages (vmsplice): a slot refilled too soon
 * would change bytes QEMU has not read yet, which the slow reader sees. */
#include "relay_drive.h"
#include "sign.h"

#define MIB (1u << 20)
#define OFF 8192u                                   /* where the stream starts */
#define LEN ((RELAY_SLOTS + 3) * RELAY_FETCH + 12345u) /* a tail past whole fetches */
#define CHUNKS ((LEN + MIB - 1) / MIB)

struct fx {
	int fd;
	uint8_t table[CHUNKS][SIG_HASH];
	struct relay_check ck;
};

static int setup(void **s)
{
	struct fx *f = calloc(1, sizeof(*f));
	uint8_t *b = malloc(LEN);
	char path[4096];

	tu_dir_setup(s);
	f->fd = open(tu_path(path, tu_dir, "img"), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(f->fd >= 0);
	srand(7);
	for (uint32_t i = 0; i < LEN; i++)
		b[i] = (uint8_t)rand();
	assert_int_equal(pwrite(f->fd, b, LEN, OFF), LEN);
	assert_int_equal(pwrite(f->fd, "after", 5, OFF + LEN), 5); /* a tail reads on past it */
	for (uint32_t i = 0; i < CHUNKS; i++)
		sig_sha256(b + (size_t)i * MIB, LEN - i * MIB < MIB ? LEN - i * MIB : MIB, f->table[i]);
	free(b);
	f->ck = (struct relay_check){ .table = &f->table[0][0], .n = CHUNKS };
	*s = f;
	return 0;
}

static int teardown(void **s)
{
	struct fx *f = *s;

	close(f->fd);
	free(f);
	return tu_dir_teardown(s);
}

static uint64_t relay(struct fx *f, bool direct, bool slow, int *rc)
{
	f->ck.checked = 0;
	return relay_drive(f->fd, OFF, LEN, &f->ck, direct, slow, rc);
}

static void test_every_byte_handed_over_checked(void **s)
{
	struct fx *f = *s;
	int rc;

	for (int mode = 0; mode < 4; mode++) {
		assert_int_equal(relay(f, mode & 1, mode & 2, &rc), LEN);
		assert_int_equal(rc, 2);
		assert_int_equal(f->ck.checked, CHUNKS);
	}
}

/* A chunk of a late fetch changed: QEMU gets the fetches before it whole,
 * nothing of its own, however slowly it reads. */
static void test_a_late_changed_chunk_stops_the_relay_at_its_fetch(void **s)
{
	struct fx *f = *s;
	uint64_t at = (RELAY_SLOTS + 1) * (uint64_t)RELAY_FETCH + 2 * MIB + 77;
	char want[96];
	int rc;

	assert_int_equal(pwrite(f->fd, "x", 1, (off_t)(OFF + at)), 1);
	assert_int_equal(fsync(f->fd), 0);
	snprintf(want, sizeof(want), "payload digest mismatch at byte %llu",
		 (unsigned long long)(OFF + at - 77));
	for (int mode = 0; mode < 4; mode++) {
		assert_int_equal(relay(f, mode & 1, mode & 2, &rc), at - 77 - 2 * MIB);
		assert_int_equal(rc, -1);
		assert_err(EXIT_REFUSED, want);
		assert_int_equal(f->ck.checked, (at - 77) / MIB);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_every_byte_handed_over_checked, setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_late_changed_chunk_stops_the_relay_at_its_fetch, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
