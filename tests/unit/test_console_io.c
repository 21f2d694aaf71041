/* test_console_io: the console's line reader (line ends, length limit,
 * control bytes, UTF-8, editing, echo) and its output lines, over pipes. */
#include "helpers.h"
#include "console_io.h"

/* A console reading `in` (then EOF), echoing into a pipe when echo is set. */
struct rig {
	struct con k;
	int echo_fd;
};

static void rig_open(struct rig *r, const char *in, size_t n, bool echo)
{
	int p[2], e[2];

	con_open_stdio(&r->k);
	assert_int_equal(pipe(p), 0);
	assert_int_equal(pipe(e), 0);
	assert_int_equal(write(p[1], in, n), (ssize_t)n);
	close(p[1]);
	r->k.in = p[0];
	r->k.out = e[1];
	r->k.echo = r->k.crlf = echo;
	r->k.prompt = false;
	r->echo_fd = e[0];
}

/* What the console wrote so far (echo and output), NUL-terminated. */
static const char *rig_output(struct rig *r)
{
	static char buf[8192];
	ssize_t n;

	close(r->k.out);
	n = read(r->echo_fd, buf, sizeof(buf) - 1);
	buf[n > 0 ? n : 0] = 0;
	return buf;
}

static void rig_close(struct rig *r)
{
	close(r->k.in);
	close(r->echo_fd);
}

static void expect_line(struct rig *r, int kind, const char *text)
{
	assert_int_equal(con_read_line(&r->k), kind);
	if (text)
		assert_string_equal(r->k.line, text);
}

#define RIG(r, s, echo) rig_open(r, s, sizeof(s) - 1, echo)

static void test_cr_lf_and_crlf_end_lines(void **s)
{
	struct rig r;

	(void)s;
	RIG(&r, "a\rb\nc\r\nd\r\re", false);
	expect_line(&r, CON_LINE, "a");
	expect_line(&r, CON_LINE, "b");
	expect_line(&r, CON_LINE, "c");
	expect_line(&r, CON_LINE, "d");
	expect_line(&r, CON_LINE, ""); /* CR CR is two line ends */
	expect_line(&r, CON_LINE, "e"); /* a last line without its end */
	expect_line(&r, CON_EOF, NULL);
	expect_line(&r, CON_EOF, NULL);
	rig_close(&r);
}

static void test_long_line_is_refused_and_dropped(void **s)
{
	static char in[3000];
	struct rig r;

	(void)s;
	memset(in, 'x', 1024);
	in[1024] = '\n';
	memset(in + 1025, 'y', 1025);
	strcpy(in + 2050, "\r\nversion\n");
	rig_open(&r, in, strlen(in), false);
	expect_line(&r, CON_LINE, NULL);
	assert_int_equal(strlen(r.k.line), 1024);
	expect_line(&r, CON_LONG, NULL);
	expect_line(&r, CON_LINE, "version");
	rig_close(&r);
}

static void test_control_bytes_and_bad_utf8_are_refused(void **s)
{
	static const char *bad[] = {
		"a\0b", "\x1b[A", "\x01", "\xc0\xaf", "\xed\xa0\x80", "\x80", "\xe2\x82",
		"\xf4\x90\x80\x80", "\xc2\x85", "\xff", "\xe0\x80\x80",
	};
	static const char *good[] = { "\xc3\xa9tat", "\xe2\x82\xac", "\xf0\x9d\x84\x9e", "a\tb" };
	char in[32];
	struct rig r;

	(void)s;
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		size_t n = i == 0 ? 3 : strlen(bad[i]);
		memcpy(in, bad[i], n);
		in[n] = '\n';
		rig_open(&r, in, n + 1, false);
		expect_line(&r, CON_BAD, NULL);
		rig_close(&r);
	}
	for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
		snprintf(in, sizeof(in), "%s\n", good[i]);
		rig_open(&r, in, strlen(in), false);
		expect_line(&r, CON_LINE, good[i]);
		rig_close(&r);
	}
}

static void test_backspace_and_ctrl_c_edit_with_echo(void **s)
{
	struct rig r;

	(void)s;
	RIG(&r, "ab\x7f" "c\r\xc3\xa9\x08x\nzz\x03ok\r", true);
	expect_line(&r, CON_LINE, "ac");
	expect_line(&r, CON_LINE, "x"); /* the whole two-byte character went */
	expect_line(&r, CON_LINE, "ok");
	assert_string_equal(rig_output(&r), "ab\b \bc\r\n\xc3\xa9\b \bx\r\nzz^C\r\nok\r\n");
	rig_close(&r);
}

static void test_no_echo_on_a_pipe(void **s)
{
	struct rig r;

	(void)s;
	RIG(&r, "list\n", false);
	expect_line(&r, CON_LINE, "list");
	assert_string_equal(rig_output(&r), "");
	rig_close(&r);
}

static void test_output_lines_are_safe_and_end_right(void **s)
{
	struct rig r;

	(void)s;
	RIG(&r, "", true);
	assert_int_equal(con_put_line(&r.k, "a\x1b[2Jb\n", 7), 0);
	assert_int_equal(con_printf(&r.k, "ERR %d %s", 2, "x"), 0);
	r.k.crlf = false;
	assert_int_equal(con_put_line(&r.k, "plain\r\n", 7), 0);
	assert_string_equal(rig_output(&r), "a?[2Jb\r\nERR 2 x\r\nplain\n");
	rig_close(&r);
}

static void test_open_tty_refusals(void **s)
{
	struct con k;

	(void)s;
	err_clear();
	assert_int_equal(con_open_tty(&k, "/dev/null", 1234), -1);
	assert_err(EXIT_USAGE, "--baud 1234");
	assert_int_equal(con_open_tty(&k, "/dev/null", 9600), -1);
	assert_err(EXIT_USAGE, "/dev/null: not a terminal");
	assert_int_equal(con_open_tty(&k, "/nonexistent/tty", 9600), -1);
	assert_err(EXIT_USAGE, "/nonexistent/tty");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cr_lf_and_crlf_end_lines),
		cmocka_unit_test(test_long_line_is_refused_and_dropped),
		cmocka_unit_test(test_control_bytes_and_bad_utf8_are_refused),
		cmocka_unit_test(test_backspace_and_ctrl_c_edit_with_echo),
		cmocka_unit_test(test_no_echo_on_a_pipe),
		cmocka_unit_test(test_output_lines_are_safe_and_end_right),
		cmocka_unit_test(test_open_tty_refusals),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
