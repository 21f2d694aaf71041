/* test_vmdef: vm_def_parse: line syntax (comments, CRLF, spaces, values),
 * refusal of the options vmsnap manages, and malformed definitions. */
#include "helpers.h"
#include "vm.h"

static int parse(struct vm_def *d, const char *text)
{
	err_clear();
	return vm_def_parse(d, text, strlen(text), "vm1.vm", EXIT_USAGE);
}

static void assert_argv(const struct vm_def *d, const char *const *want, int n)
{
	assert_int_equal(d->argc, n);
	for (int i = 0; i < n; i++)
		assert_string_equal(d->argv[i], want[i]);
}

static void test_options_with_and_without_values(void **s)
{
	static const char *const want[] = { "-m", "256", "-nodefaults", "-smp", "2" };
	struct vm_def d;

	(void)s;
	assert_int_equal(parse(&d, "-m 256\n-nodefaults\n-smp 2\n"), 0);
	assert_argv(&d, want, 5);
	vm_def_free(&d);
}

static void test_comments_and_blank_lines_are_skipped(void **s)
{
	static const char *const want[] = { "-m", "64", "-no-reboot" };
	struct vm_def d;

	(void)s;
	assert_int_equal(parse(&d, "# the test VM\n\n-m 64\n   \n\t# indented comment\n-no-reboot"), 0);
	assert_argv(&d, want, 3);
	vm_def_free(&d);
}

static void test_crlf_and_surrounding_spaces(void **s)
{
	static const char *const want[] = { "-m", "64", "-kernel", "/boot/k", "-no-reboot" };
	struct vm_def d;

	(void)s;
	assert_int_equal(parse(&d, "  -m   64  \r\n\t-kernel\t/boot/k\r\n-no-reboot \r\n\r\n"), 0);
	assert_argv(&d, want, 5);
	vm_def_free(&d);
}

static void test_value_with_spaces_is_one_argument(void **s)
{
	static const char *const want[] = { "-append", "seed=1 fill=50", "-name", "a  b" };
	struct vm_def d;

	(void)s;
	assert_int_equal(parse(&d, "-append seed=1 fill=50\n-name   a  b\n"), 0);
	assert_argv(&d, want, 4);
	vm_def_free(&d);
}

static void test_text_is_kept_as_written(void **s)
{
	const char *text = "# keep me\r\n-m 64\n";
	struct vm_def d;

	(void)s;
	assert_int_equal(parse(&d, text), 0);
	assert_int_equal(d.len, strlen(text));
	assert_string_equal(d.text, text);
	vm_def_free(&d);
	assert_null(d.text);
	assert_int_equal(d.argc, 0);
}

/* Each option vmsnap adds itself is refused with the caller's code, and the
 * message names origin:line and the option as written. */
static void test_forbidden_options_are_refused(void **s)
{
	static const char *const opts[] = {
		"-qmp", "-qmp-pretty", "-monitor", "-mon", "-pidfile", "-daemonize", "-S",
		"-incoming", "-loadvm", "-readconfig", "-chroot", "-runas", "-run-with",
		"-nographic", "--qmp", "--daemonize", "--S", "--incoming",
	};
	char text[256], want[128];
	struct vm_def d;

	(void)s;
	for (size_t i = 0; i < ARRAY_SIZE(opts); i++) {
		snprintf(text, sizeof(text), "-m 64\n# c\n%s unix:/x,server=on\n", opts[i]);
		err_clear();
		if (vm_def_parse(&d, text, strlen(text), "image /x.img", EXIT_REFUSED) != -1)
			fail_msg("%s accepted", opts[i]);
		snprintf(want, sizeof(want), "image /x.img:3: option %s is not allowed", opts[i]);
		assert_err(EXIT_REFUSED, want);
		assert_null(d.text);
	}
}

/* Options that only look like forbidden ones stay allowed. */
static void test_similar_options_are_allowed(void **s)
{
	static const char *const want[] = { "-s", "-serial", "mon:stdio", "-append", "-qmp x" };
	struct vm_def d;

	(void)s;
	assert_int_equal(parse(&d, "-s\n-serial mon:stdio\n-append -qmp x\n"), 0);
	assert_argv(&d, want, 5);
	vm_def_free(&d);
}

static void test_line_not_starting_with_dash(void **s)
{
	static const struct { const char *text; const char *want; } t[] = {
		{ "-m 64\nm 64\n", "vm1.vm:2: 'm 64': each line is one QEMU option starting with '-'" },
		{ "-m 64\n  -  \n", "vm1.vm:2: '-': each line" },
		{ "qemu-system-x86_64 -m 64", "vm1.vm:1: 'qemu-system-x86_64 -m 64': each line" },
	};
	struct vm_def d;

	(void)s;
	for (size_t i = 0; i < ARRAY_SIZE(t); i++) {
		assert_int_equal(parse(&d, t[i].text), -1);
		assert_err(EXIT_USAGE, t[i].want);
	}
}

static void test_nul_byte_is_refused(void **s)
{
	static const char text[] = "-m 64\n-name a\0b\n";
	struct vm_def d;

	(void)s;
	err_clear();
	assert_int_equal(vm_def_parse(&d, text, sizeof(text) - 1, "image x", EXIT_REFUSED), -1);
	assert_err(EXIT_REFUSED, "image x: the definition contains a NUL byte");
}

static void test_empty_definition_is_refused(void **s)
{
	static const char *const empty[] = { "", "\n\n", "# only a comment\n  \r\n" };
	struct vm_def d;

	(void)s;
	for (size_t i = 0; i < ARRAY_SIZE(empty); i++) {
		assert_int_equal(parse(&d, empty[i]), -1);
		assert_err(EXIT_USAGE, "vm1.vm: the definition has no QEMU options");
	}
}

/* VM_ARGS_MAX/2 option-value pairs fill argv exactly; one more is refused. */
static void test_argument_limit(void **s)
{
	const int pairs = VM_ARGS_MAX / 2;
	char *text = malloc((size_t)(pairs + 1) * 16);
	struct vm_def d;
	size_t n = 0;

	(void)s;
	assert_non_null(text);
	for (int i = 0; i < pairs; i++)
		n += (size_t)sprintf(text + n, "-o%d v%d\n", i, i);
	assert_int_equal(vm_def_parse(&d, text, n, "big.vm", EXIT_USAGE), 0);
	assert_int_equal(d.argc, VM_ARGS_MAX);
	assert_string_equal(d.argv[VM_ARGS_MAX - 1], "v255");
	vm_def_free(&d);
	n += (size_t)sprintf(text + n, "-last one\n");
	assert_int_equal(vm_def_parse(&d, text, n, "big.vm", EXIT_USAGE), -1);
	assert_err(EXIT_USAGE, "big.vm:257: more than 512 arguments");
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_options_with_and_without_values),
		cmocka_unit_test(test_comments_and_blank_lines_are_skipped),
		cmocka_unit_test(test_crlf_and_surrounding_spaces),
		cmocka_unit_test(test_value_with_spaces_is_one_argument),
		cmocka_unit_test(test_text_is_kept_as_written),
		cmocka_unit_test(test_forbidden_options_are_refused),
		cmocka_unit_test(test_similar_options_are_allowed),
		cmocka_unit_test(test_line_not_starting_with_dash),
		cmocka_unit_test(test_nul_byte_is_refused),
		cmocka_unit_test(test_empty_definition_is_refused),
		cmocka_unit_test(test_argument_limit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
