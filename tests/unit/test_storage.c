/* test_storage: stor_check_save on files, directories, pipes and character
 * devices; stor_create/commit/discard of regular files and the busy lock. */
#include "helpers.h"
#include "storage.h"

static int check(const char *path, int version, enum stor_kind *kind)
{
	uint64_t size = 99;
	int rc;

	err_clear();
	rc = stor_check_save(path, version, kind, &size);
	assert_int_equal(size, 0);
	return rc;
}

static void test_path_dir(void **s)
{
	char d[8];

	(void)s;
	assert_int_equal(path_dir(d, sizeof(d), "img"), 0);
	assert_string_equal(d, ".");
	assert_int_equal(path_dir(d, sizeof(d), "/img"), 0);
	assert_string_equal(d, "/");
	assert_int_equal(path_dir(d, sizeof(d), "/a/b/img"), 0);
	assert_string_equal(d, "/a/b");
	assert_int_equal(path_dir(d, sizeof(d), "a/img"), 0);
	assert_string_equal(d, "a");
	assert_int_equal(path_dir(d, sizeof(d), "/long/dir/img"), -1);
}

static void test_path_beside(void **s)
{
	char d[12];

	(void)s;
	assert_int_equal(path_beside(d, sizeof(d), "img", "x.ram"), 0);
	assert_string_equal(d, "x.ram");
	assert_int_equal(path_beside(d, sizeof(d), "/img", "x.ram"), 0);
	assert_string_equal(d, "/x.ram");
	assert_int_equal(path_beside(d, sizeof(d), "/a/b/img", "x.ram"), 0);
	assert_string_equal(d, "/a/b/x.ram");
	assert_int_equal(path_beside(d, sizeof(d), "/a/b/img", "xyz.ram"), -1);
}

static void test_new_file_in_existing_directory_is_ok(void **s)
{
	char p[4096];
	enum stor_kind kind = STOR_OTHER;

	(void)s;
	for (int v = 2; v <= 3; v++) {
		assert_int_equal(check(tu_path(p, tu_dir, "new.img"), v, &kind), 0);
		assert_int_equal(kind, STOR_MISSING);
	}
}

static void test_existing_regular_file_is_ok(void **s)
{
	char p[4096];
	enum stor_kind kind = STOR_OTHER;

	(void)s;
	tu_write_str(tu_path(p, tu_dir, "old.img"), "old");
	assert_int_equal(check(p, 3, &kind), 0);
	assert_int_equal(kind, STOR_REG);
}

static void test_missing_directory_is_usage_error(void **s)
{
	char d[4096], p[4096];
	enum stor_kind kind;

	(void)s;
	tu_path(d, tu_dir, "nodir");
	assert_int_equal(check(tu_path(p, d, "x.img"), 2, &kind), -1);
	assert_err(EXIT_USAGE, d);
	/* A file where the directory should be. */
	tu_write_str(d, "");
	assert_int_equal(check(p, 2, &kind), -1);
	assert_int_equal(err_code(), EXIT_USAGE);
	unlink(d);
}

static void test_fifo_is_refused_for_v2_and_v3(void **s)
{
	char p[4096];
	enum stor_kind kind;

	(void)s;
	assert_int_equal(mkfifo(tu_path(p, tu_dir, "pipe"), 0600), 0);
	for (int v = 2; v <= 3; v++) {
		assert_int_equal(check(p, v, &kind), -1);
		assert_int_equal(kind, STOR_OTHER);
		assert_err(EXIT_USAGE, "a pipe");
		assert_err(EXIT_USAGE, p);
	}
	unlink(p);
}

static void test_directory_is_refused(void **s)
{
	enum stor_kind kind;

	(void)s;
	for (int v = 2; v <= 3; v++) {
		assert_int_equal(check(tu_dir, v, &kind), -1);
		assert_err(EXIT_USAGE, "a directory");
	}
}

static void test_v3_to_character_device_is_refused(void **s)
{
	enum stor_kind kind;

	(void)s;
	assert_int_equal(check("/dev/null", 3, &kind), -1);
	assert_int_equal(kind, STOR_OTHER);
	assert_err(EXIT_USAGE, "character device");
	assert_err(EXIT_USAGE, "v3");
	assert_int_equal(check("/dev/null", 2, &kind), -1);
	assert_err(EXIT_USAGE, "character device");
}

static void test_create_then_commit_moves_temp_into_place(void **s)
{
	char p[4096], tmp[4096], buf[IMG_HEADER_SIZE + 6];
	uint8_t hdr[IMG_HEADER_SIZE];
	struct stor_target t;
	int fd;

	(void)s;
	tu_path(p, tu_dir, "vm1.img");
	tu_path(tmp, tu_dir, ".vm1.img.vmsnap-partial");
	assert_int_equal(stor_create(&t, p, false, false), 0);
	assert_int_equal(t.kind, STOR_REG);
	assert_string_equal(t.tmp, tmp);
	assert_int_equal(t.dfd, -1);
	assert_int_equal(access(tmp, F_OK), 0);
	assert_int_equal(access(p, F_OK), -1);
	assert_int_equal(pwrite(t.fd, "stream", 6, IMG_HEADER_SIZE), 6);
	memset(hdr, 0xab, sizeof(hdr));
	memcpy(hdr, IMG_MAGIC, 8);
	assert_int_equal(stor_commit(&t, hdr), 0);
	assert_int_equal(access(tmp, F_OK), -1);
	stor_close(&t); /* closes; the committed image stays */
	fd = open(p, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(read(fd, buf, sizeof(buf)), (ssize_t)sizeof(buf));
	close(fd);
	assert_memory_equal(buf, hdr, IMG_HEADER_SIZE);
	assert_memory_equal(buf + IMG_HEADER_SIZE, "stream", 6);
	unlink(p);
}

static void test_commit_replaces_an_older_image(void **s)
{
	char p[4096], *text;
	uint8_t hdr[IMG_HEADER_SIZE] = "NEWHEADER";
	struct stor_target t;
	size_t len;

	(void)s;
	tu_write_str(tu_path(p, tu_dir, "vm2.img"), "old image");
	assert_int_equal(stor_create(&t, p, false, false), 0);
	assert_int_equal(stor_commit(&t, hdr), 0);
	stor_close(&t);
	assert_int_equal(read_file(p, 1 << 20, &text, &len), 0);
	assert_int_equal(len, IMG_HEADER_SIZE);
	assert_string_equal(text, "NEWHEADER");
	free(text);
	unlink(p);
}

static void test_discard_keeps_the_older_image(void **s)
{
	char p[4096], tmp[4096], *text;
	struct stor_target t;
	size_t len;

	(void)s;
	tu_write_str(tu_path(p, tu_dir, "vm3.img"), "old image");
	assert_int_equal(stor_create(&t, p, false, false), 0);
	assert_int_equal(write(t.fd, "partial junk", 12), 12);
	assert_int_equal(access(t.tmp, F_OK), 0);
	strcpy(tmp, t.tmp);
	stor_close(&t);
	assert_int_equal(access(tmp, F_OK), -1);
	assert_int_equal(t.fd, -1);
	assert_int_equal(read_file(p, 1 << 20, &text, &len), 0);
	assert_string_equal(text, "old image");
	free(text);
	unlink(p);
}

static void test_second_create_on_same_target_is_busy(void **s)
{
	char p[4096], tmp[4096];
	struct stor_target a, b;
	struct stat st;

	(void)s;
	tu_path(p, tu_dir, "vm4.img");
	assert_int_equal(stor_create(&a, p, false, false), 0);
	assert_int_equal(write(a.fd, "first", 5), 5);
	strcpy(tmp, a.tmp);
	err_clear();
	assert_int_equal(stor_create(&b, p, false, false), -1);
	assert_err(EXIT_FAIL, "busy");
	stor_close(&b); /* must not remove the first save's file */
	assert_int_equal(stat(tmp, &st), 0);
	assert_int_equal(st.st_size, 5); /* nor truncated it */
	stor_close(&a);
	assert_int_equal(access(tmp, F_OK), -1);
	/* Free again once the first is gone. */
	assert_int_equal(stor_create(&b, p, false, false), 0);
	stor_close(&b);
}

/* A temp name another user (or a link) put there first is never written
 * through: not another user's file, not a hard link to some other file. */
static void test_foreign_or_linked_temp_file_is_refused(void **s)
{
	char p[4096], tmp[4096], victim[4096], *text;
	struct stor_target t;
	struct stat st;
	size_t len;

	(void)s;
	tu_path(p, tu_dir, "vm5.img");
	tu_path(tmp, tu_dir, ".vm5.img.vmsnap-partial");
	tu_write_str(tmp, "planted");
	assert_int_equal(chown(tmp, 65534, 65534), 0);
	assert_int_equal(chmod(tmp, 0666), 0);
	err_clear();
	assert_int_equal(stor_create(&t, p, false, false), -1);
	assert_err(EXIT_FAIL, "another user's file");
	stor_close(&t);
	assert_int_equal(stat(tmp, &st), 0); /* left alone: not ours to remove */
	assert_int_equal(st.st_size, 7);
	unlink(tmp);
	tu_write_str(tu_path(victim, tu_dir, "victim"), "precious");
	assert_int_equal(link(victim, tmp), 0);
	assert_int_equal(stor_create(&t, p, false, false), -1);
	assert_err(EXIT_FAIL, "hard links");
	stor_close(&t);
	assert_int_equal(read_file(victim, 1 << 20, &text, &len), 0);
	assert_string_equal(text, "precious");
	free(text);
	unlink(tmp);
	/* our own stale one from a crash is reused, with mode 0600 */
	tu_write_str(tmp, "stale");
	assert_int_equal(chmod(tmp, 0644), 0);
	assert_int_equal(stor_create(&t, p, false, false), 0);
	assert_int_equal(fstat(t.fd, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(st.st_size, 0);
	stor_close(&t);
}

/* Targets only in directories no other user can change (sticky /tmp style
 * directories of root's excepted: there others cannot touch our names). */
static void test_directory_writable_by_others_is_refused(void **s)
{
	char d[4096], p[4096];
	struct stor_target t;

	(void)s;
	tu_path(d, tu_dir, "pub");
	assert_int_equal(mkdir(d, 0777), 0);
	assert_int_equal(chmod(d, 0777), 0);
	tu_path(p, d, "x.img");
	err_clear();
	assert_int_equal(stor_create(&t, p, false, false), -1);
	assert_err(EXIT_USAGE, "writable by group or others");
	stor_close(&t);
	assert_int_equal(access(d, F_OK), 0);
	assert_int_equal(chmod(d, 01777), 0);
	assert_int_equal(stor_create(&t, p, false, false), 0);
	stor_close(&t);
	assert_int_equal(chmod(d, 0755), 0);
	assert_int_equal(chown(d, 65534, 65534), 0);
	assert_int_equal(stor_create(&t, p, false, false), -1);
	assert_err(EXIT_USAGE, "belongs to another user");
	stor_close(&t);
}

/* A symlinked target is followed only if it is root's or ours. */
static void test_other_users_symlink_target_is_refused(void **s)
{
	char p[4096], victim[4096], *text;
	struct stor_target t;
	size_t len;

	(void)s;
	tu_write_str(tu_path(victim, tu_dir, "victim2"), "precious");
	assert_int_equal(symlink(victim, tu_path(p, tu_dir, "link.img")), 0);
	assert_int_equal(lchown(p, 65534, 65534), 0);
	err_clear();
	assert_int_equal(stor_create(&t, p, false, false), -1);
	assert_err(EXIT_USAGE, "symbolic link of another user");
	stor_close(&t);
	assert_int_equal(read_file(victim, 1 << 20, &text, &len), 0);
	assert_string_equal(text, "precious");
	free(text);
	assert_int_equal(lchown(p, 0, 0), 0);
	assert_int_equal(stor_create(&t, p, false, false), 0); /* root's own link: followed */
	assert_string_equal(t.path, victim);
	stor_close(&t);
	unlink(p);
}

/* Reading an image never blocks on a FIFO and refuses special files. */
static void test_open_image_refuses_fifo_without_blocking(void **s)
{
	char p[4096];
	uint64_t size;
	int fd = -1;

	(void)s;
	assert_int_equal(mkfifo(tu_path(p, tu_dir, "fifo.img"), 0600), 0);
	alarm(10); /* the old code hung here in open() */
	err_clear();
	assert_int_equal(stor_open_image(p, &fd, &size), -1);
	alarm(0);
	assert_err(EXIT_USAGE, "pipe");
	assert_int_equal(stor_open_image("/dev/null", &fd, &size), -1);
	assert_err(EXIT_USAGE, "character device");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_path_dir),
		cmocka_unit_test(test_path_beside),
		cmocka_unit_test(test_new_file_in_existing_directory_is_ok),
		cmocka_unit_test(test_existing_regular_file_is_ok),
		cmocka_unit_test(test_missing_directory_is_usage_error),
		cmocka_unit_test(test_fifo_is_refused_for_v2_and_v3),
		cmocka_unit_test(test_directory_is_refused),
		cmocka_unit_test(test_v3_to_character_device_is_refused),
		cmocka_unit_test(test_create_then_commit_moves_temp_into_place),
		cmocka_unit_test(test_commit_replaces_an_older_image),
		cmocka_unit_test(test_discard_keeps_the_older_image),
		cmocka_unit_test(test_second_create_on_same_target_is_busy),
		cmocka_unit_test(test_foreign_or_linked_temp_file_is_refused),
		cmocka_unit_test(test_directory_writable_by_others_is_refused),
		cmocka_unit_test(test_open_image_refuses_fifo_without_blocking),
		cmocka_unit_test(test_other_users_symlink_target_is_refused),
	};

	return cmocka_run_group_tests(tests, tu_dir_setup, tu_dir_teardown);
}
