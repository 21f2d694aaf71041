/* test_consume: the consumption record: an image restored once is refused
 * again (any copy, any state word), older images of the VM too, golden ones
 * never; the record's directory must be root's alone; creation times of new
 * images stay past the record even when the clock went back. */
#include "helpers.h"
#include "conf.h"
#include "consume.h"

static char dir[64];
static struct conf c;

static int setup(void **s)
{
	(void)s;
	tu_mkdtemp(dir);
	conf_defaults(&c);
	snprintf(c.save_dir, sizeof(c.save_dir), "%s/save", dir);
	return 0;
}

static int teardown(void **s)
{
	(void)s;
	tu_rmtree(dir);
	return 0;
}

/* An image file (the header is all cons_record writes) and its header. */
static int image(struct img_header *h, uint64_t created, const char *name)
{
	char p[128];
	int fd;

	tu_header(h, 10, 4096);
	h->created = created;
	tu_write_image(tu_path(p, dir, name), h, "-m 64M\n-x\n", 0, NULL);
	fd = open(p, O_RDONLY);
	assert_true(fd >= 0);
	return fd;
}

static void test_restored_once_then_refused(void **s)
{
	struct img_header h, copy;
	uint8_t buf[IMG_HEADER_SIZE];
	int fd = image(&h, 1000, "a.img");

	(void)s;
	err_clear();
	assert_int_equal(cons_check(&c, &h, "a.img"), 0); /* no record yet: allowed */
	assert_int_equal(cons_record(&c, fd, &h, "a.img"), 0);
	/* The header on disk says consumed: written through fd. */
	assert_int_equal(pread(fd, buf, sizeof(buf), 0), (ssize_t)sizeof(buf));
	assert_int_equal(img_decode(&copy, buf, 1u << 20), 0);
	assert_int_equal(copy.state, IMG_CONSUMED);
	/* A copy with the state forged back is the same identity: refused. */
	copy.state = IMG_COMPLETE;
	assert_int_equal(cons_check(&c, &copy, "copy.img"), -1);
	assert_err(EXIT_REFUSED, "already restored once");
	/* An older image of that VM: refused; a newer one: allowed. */
	copy.created = 999;
	assert_int_equal(cons_check(&c, &copy, "old.img"), -1);
	assert_err(EXIT_REFUSED, "older than the last image of VM 'vm1' restored (created 1000)");
	copy.created = 1001;
	assert_int_equal(cons_check(&c, &copy, "new.img"), 0);
	/* Another image of the same second (another payload): allowed once. */
	copy.created = 1000;
	copy.payload_digest[0] ^= 1;
	assert_int_equal(cons_check(&c, &copy, "same.img"), 0);
	assert_int_equal(cons_record(&c, fd, &copy, "same.img"), 0);
	assert_int_equal(cons_check(&c, &copy, "same.img"), -1);
	assert_int_equal(cons_check(&c, &h, "a.img"), -1); /* the first is still recorded */
	/* Another VM has a record of its own. */
	strcpy(copy.name, "vm2");
	assert_int_equal(cons_check(&c, &copy, "b.img"), 0);
	close(fd);
}

static void test_golden_is_never_recorded(void **s)
{
	struct img_header h;
	char p[128];
	int fd = image(&h, 2000, "g.img");

	(void)s;
	h.flags |= IMG_F_GOLDEN;
	assert_int_equal(cons_record(&c, fd, &h, "g.img"), 0);
	assert_int_equal(cons_check(&c, &h, "g.img"), 0);
	assert_int_equal(access(tu_path(p, dir, "save/.consumed/vm1"), F_OK), -1);
	close(fd);
}

static void test_store_must_be_roots_alone(void **s)
{
	struct img_header h;
	char p[128], q[128];
	int fd = image(&h, 3000, "c.img");

	(void)s;
	assert_int_equal(cons_record(&c, fd, &h, "c.img"), 0);
	assert_int_equal(chmod(tu_path(p, dir, "save/.consumed"), 0777), 0);
	assert_int_equal(cons_check(&c, &h, "c.img"), -1);
	assert_err(EXIT_USAGE, "writable by other users");
	assert_int_equal(chmod(p, 0700), 0);
	assert_int_equal(chmod(tu_path(p, dir, "save"), 0775), 0);
	assert_int_equal(cons_check(&c, &h, "c.img"), -1);
	assert_err(EXIT_USAGE, "replay protection needs a directory only root writes");
	assert_int_equal(chmod(p, 0700), 0);
	/* A symlink in place of the record directory is refused, not followed. */
	assert_int_equal(rename(tu_path(p, dir, "save/.consumed"), tu_path(q, dir, "elsewhere")), 0);
	assert_int_equal(symlink(q, p), 0);
	assert_int_equal(cons_check(&c, &h, "c.img"), -1);
	assert_err(EXIT_USAGE, "is not a directory");
	close(fd);
}

static void test_created_stays_past_the_record(void **s)
{
	struct img_header h;
	int fd = image(&h, 5000, "d.img");

	(void)s;
	assert_int_equal(cons_created(&c, "vm1", 4000), 4000); /* nothing recorded */
	assert_int_equal(cons_record(&c, fd, &h, "d.img"), 0);
	assert_int_equal(cons_created(&c, "vm1", 4000), 5001); /* the clock went back */
	assert_int_equal(cons_created(&c, "vm1", 5000), 5001);
	assert_int_equal(cons_created(&c, "vm1", 6000), 6000);
	assert_int_equal(cons_created(&c, "vm2", 4000), 4000);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_restored_once_then_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_golden_is_never_recorded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_must_be_roots_alone, setup, teardown),
		cmocka_unit_test_setup_teardown(test_created_stays_past_the_record, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
