/* test_fuzz_corpus: every input in tests/fuzz/corpus/<target>/ (the seeds,
 * and any crash a fuzzer found, kept as a regression) through the fuzz
 * targets' own code, built by the host compiler: plain, and with
 * SANITIZE=1 under ASan+UBSan. A target that finds a problem aborts. */
#include "helpers.h"

#include <dirent.h>

#define LLVMFuzzerTestOneInput fuzz_header
#include "../fuzz/fuzz_header.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_conf
#include "../fuzz/fuzz_conf.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_vmdef
#include "../fuzz/fuzz_vmdef.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_qmp
#include "../fuzz/fuzz_qmp.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_inspect
#include "../fuzz/fuzz_inspect.c"
#undef LLVMFuzzerTestOneInput

/* Replay every file of tests/fuzz/corpus/<target>; at least one must exist. */
static void replay(const char *target, int (*one)(const uint8_t *, size_t))
{
	char dir[256], path[4096];
	struct dirent *e;
	int n = 0;
	DIR *d;

	snprintf(dir, sizeof(dir), "tests/fuzz/corpus/%s", target);
	d = opendir(dir);
	if (!d)
		fail_msg("%s: cannot open (run from the top of the tree)", dir);
	while ((e = readdir(d))) {
		char *data;
		size_t len;
		if (e->d_name[0] == '.')
			continue;
		tu_path(path, dir, e->d_name);
		if (read_file(path, 1u << 20, &data, &len) < 0)
			fail_msg("%s: %s", path, tu_msg());
		one((const uint8_t *)data, len);
		free(data);
		n++;
	}
	closedir(d);
	print_message("# %s: %d inputs replayed\n", target, n);
	assert_true(n > 0);
}

static void test_header_corpus(void **s) { (void)s; replay("header", fuzz_header); }
static void test_conf_corpus(void **s) { (void)s; replay("conf", fuzz_conf); }
static void test_vmdef_corpus(void **s) { (void)s; replay("vmdef", fuzz_vmdef); }
static void test_qmp_corpus(void **s) { (void)s; replay("qmp", fuzz_qmp); }
static void test_inspect_corpus(void **s) { (void)s; replay("inspect", fuzz_inspect); }

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_header_corpus),
		cmocka_unit_test(test_conf_corpus),
		cmocka_unit_test(test_vmdef_corpus),
		cmocka_unit_test(test_qmp_corpus),
		cmocka_unit_test(test_inspect_corpus),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
