/* test_conf: conf_load over the defaults: every key, [vm NAME] sections,
 * errors naming file:line, comments; conf_vm_get and conf_name_ok. */
#include "helpers.h"
#include "conf.h"
#include "config.h"

static char dir[64];
static char path[4096];

static int setup(void **s)
{
	(void)s;
	tu_mkdtemp(dir);
	tu_path(path, dir, "vmsnap.conf");
	return 0;
}

static int teardown(void **s)
{
	(void)s;
	tu_rmtree(dir);
	return 0;
}

/* Load text as the config file over fresh defaults. */
static int load(struct conf *c, const char *text)
{
	tu_write_str(path, text);
	conf_defaults(c);
	err_clear();
	return conf_load(c, path, true);
}

static void test_missing_optional_file_keeps_defaults(void **s)
{
	char missing[4096];
	struct conf c;

	(void)s;
	conf_defaults(&c);
	assert_int_equal(conf_load(&c, tu_path(missing, dir, "nope.conf"), false), 0);
	assert_string_equal(c.path, "");
	assert_int_equal(c.image_version, CONFIG_DEFAULT_IMAGE_VERSION);
	assert_string_equal(c.vm_dir, CONFIG_DEFAULT_VM_DIR);
	assert_string_equal(c.run_dir, CONFIG_DEFAULT_RUN_DIR);
	assert_string_equal(c.save_dir, CONFIG_DEFAULT_SAVE_DIR);
	assert_string_equal(c.qemu, CONFIG_QEMU_PATH);
	assert_string_equal(c.trusted_keys, "/etc/vmsnap/trusted");
	assert_int_equal(c.channels, 0);
	assert_false(c.bypass_cache);
	assert_false(c.require_signature);
	assert_true(c.verify_payload);
	assert_true(c.qemu_sandbox);
	assert_false(c.qemu_spawn);
	assert_string_equal(c.qemu_user, "");
	assert_int_equal(c.powerfail_deadline_ms, 10000);
	assert_int_equal(c.n_vms, 0);
	assert_int_equal(c.n_vm, 0);
}

static void test_missing_required_file_is_usage_error(void **s)
{
	char missing[4096];
	struct conf c;

	(void)s;
	conf_defaults(&c);
	assert_int_equal(conf_load(&c, tu_path(missing, dir, "nope.conf"), true), -1);
	assert_err(EXIT_USAGE, missing);
}

static void test_every_global_key_parses(void **s)
{
	struct conf c;

	(void)s;
	assert_int_equal(load(&c, "# all keys\n"
				  "save_image_version = 3\n"
				  "vm_dir = /srv/vms\n"
				  "run_dir=/run/x\n"
				  "save_dir =   /srv/img  \n"
				  "qemu = /opt/qemu/bin/qemu-system-aarch64\n"
				  "parallel_channels = 12\n"
				  "bypass_cache = yes\n"
				  "sign_key = /etc/vmsnap/sign.pem\n"
				  "trusted_keys = /etc/keys\n"
				  "require_signature = true\n"
				  "verify_payload = off\n"
				  "qemu_sandbox = no\n"
				  "qemu_spawn = yes\n"
				  "qemu_user = vmsnap-qemu\n"
				  "unsigned_options = machine m smp,device\n"
				  "powerfail_deadline_ms = 2500\n"
				  "powerfail_trigger = /run/powerfail\n"
				  "vms = web, db  cache,mail\n"), 0);
	assert_string_equal(c.path, path);
	assert_int_equal(c.image_version, 3);
	assert_string_equal(c.vm_dir, "/srv/vms");
	assert_string_equal(c.run_dir, "/run/x");
	assert_string_equal(c.save_dir, "/srv/img");
	assert_string_equal(c.qemu, "/opt/qemu/bin/qemu-system-aarch64");
	assert_int_equal(c.channels, 12);
	assert_true(c.bypass_cache);
	assert_string_equal(c.sign_key, "/etc/vmsnap/sign.pem");
	assert_string_equal(c.trusted_keys, "/etc/keys");
	assert_true(c.require_signature);
	assert_false(c.verify_payload);
	assert_false(c.qemu_sandbox);
	assert_true(c.qemu_spawn);
	assert_string_equal(c.qemu_user, "vmsnap-qemu");
	assert_string_equal(c.unsigned_options, "machine m smp,device");
	assert_int_equal(c.powerfail_deadline_ms, 2500);
	assert_string_equal(c.powerfail_trigger, "/run/powerfail");
	assert_int_equal(c.n_vms, 4);
	assert_string_equal(c.vms[0], "web");
	assert_string_equal(c.vms[1], "db");
	assert_string_equal(c.vms[2], "cache");
	assert_string_equal(c.vms[3], "mail");
}

static void test_parallel_channels_auto_is_zero(void **s)
{
	struct conf c;

	(void)s;
	assert_int_equal(load(&c, "parallel_channels = 3\nparallel_channels = auto\n"), 0);
	assert_int_equal(c.channels, 0);
	assert_int_equal(load(&c, "parallel_channels = 16\n"), 0);
	assert_int_equal(c.channels, CONFIG_MAX_CHANNELS);
}

static void test_bool_spellings(void **s)
{
	static const struct { const char *v; bool want; } t[] = {
		{ "yes", true }, { "true", true }, { "1", true }, { "on", true },
		{ "no", false }, { "false", false }, { "0", false }, { "off", false },
	};
	char text[64];
	struct conf c;

	(void)s;
	for (size_t i = 0; i < ARRAY_SIZE(t); i++) {
		snprintf(text, sizeof(text), "bypass_cache = %s\n", t[i].v);
		assert_int_equal(load(&c, text), 0);
		assert_int_equal(c.bypass_cache, t[i].want);
	}
}

static void test_inline_comment_is_stripped(void **s)
{
	struct conf c;

	(void)s;
	assert_int_equal(load(&c, "vm_dir = /srv/vms # the definitions\n"
				  "bypass_cache = yes # fast\n"
				  "vms = a, b # two\n"), 0);
	assert_string_equal(c.vm_dir, "/srv/vms");
	assert_true(c.bypass_cache);
	assert_int_equal(c.n_vms, 2);
}

static void test_vm_sections(void **s)
{
	struct conf c;
	struct conf_vm vm;

	(void)s;
	assert_int_equal(load(&c, "save_dir = /srv/img\n"
				  "[vm web]\n"
				  "image = /dev/vdb\n"
				  "instant = yes\n"
				  "\n"
				  "[vm db.1]\n"
				  "instant = no\n"
				  "guest_time_sync = no\n"), 0);
	assert_int_equal(c.n_vm, 2);
	conf_vm_get(&c, "web", &vm);
	assert_string_equal(vm.name, "web");
	assert_string_equal(vm.image, "/dev/vdb");
	assert_true(vm.instant);
	assert_false(vm.no_time_sync); /* guest_time_sync defaults to yes */
	conf_vm_get(&c, "db.1", &vm);
	assert_string_equal(vm.image, "/srv/img/db.1.img");
	assert_false(vm.instant);
	assert_true(vm.no_time_sync);
}

static void test_vm_without_section_gets_default_image(void **s)
{
	struct conf c;
	struct conf_vm vm;

	(void)s;
	assert_int_equal(load(&c, "save_dir = /data/snap\n[vm other]\ninstant = yes\n"), 0);
	conf_vm_get(&c, "lonely", &vm);
	assert_string_equal(vm.name, "lonely");
	assert_string_equal(vm.image, "/data/snap/lonely.img");
	assert_false(vm.instant);
}

/* Each bad file fails with EXIT_USAGE and a message starting "FILE:LINE:". */
static void test_errors_name_file_and_line(void **s)
{
	static const struct { const char *text; int line; const char *want; } t[] = {
		{ "vm_dir = /a\nbogus = 1\n", 2, "unknown key 'bogus'" },
		{ "bypass_cache = maybe\n", 1, "use yes or no" },
		{ "require_signature =\n", 1, "use yes or no" },
		{ "save_image_version = 4\n", 1, "use 2 or 3" },
		{ "save_image_version = 1\n", 1, "use 2 or 3" },
		{ "\n\nparallel_channels = 0\n", 3, "use auto or 1..16" },
		{ "parallel_channels = 17\n", 1, "use auto or 1..16" },
		{ "parallel_channels = 4x\n", 1, "use auto or 1..16" },
		{ "parallel_channels = -1\n", 1, "use auto or 1..16" },
		{ "powerfail_deadline_ms = 0\n", 1, "milliseconds" },
		{ "qemu_user = nobody,chroot=/tmp\n", 1, "qemu_user = 'nobody,chroot=/tmp': a user name" },
		{ "qemu_user = -x\n", 1, "a user name" },
		{ "qemu_sandbox = sometimes\n", 1, "use yes or no" },
		{ "unsigned_options = m;device\n", 1, "QEMU option names" },
		{ "# comment\n\njust words\n", 3, "expected 'key = value'" },
		{ "vm_dir = /a\n[foo]\nimage = /x\n", 3, "unknown section [foo]" },
		{ "[vm .hidden]\nimage = /x\n", 2, "unknown section" },
		{ "[vm a]\ncolor = red\n", 2, "unknown key 'color' in [vm a]" },
		{ "[vm a]\nsave_dir = /x\n", 2, "unknown key 'save_dir'" },
		{ "[vm a]\ninstant = perhaps\n", 2, "use yes or no" },
		{ "[vm a]\nguest_time_sync = later\n", 2, "guest_time_sync = 'later': use yes or no" },
		{ "vms = ok, .bad\n", 1, "'.bad'" },
		{ "vms = a/b\n", 1, "VM names" },
	};
	char prefix[4200];
	int failed = 0;
	struct conf c;

	(void)s;
	for (size_t i = 0; i < ARRAY_SIZE(t); i++) {
		snprintf(prefix, sizeof(prefix), "%s:%d: ", path, t[i].line);
		if (load(&c, t[i].text) != -1 || err_code() != EXIT_USAGE ||
		    strncmp(err_msg(), prefix, strlen(prefix)) || !strstr(err_msg(), t[i].want)) {
			print_error("# case %zu: code %d, '%s' (want '%s...%s')\n", i, err_code(),
				    tu_msg(), prefix, t[i].want);
			failed++;
		}
	}
	assert_int_equal(failed, 0);
}

/* conf.h: "every error names file:line" - the trigger check too. */
static void test_relative_powerfail_trigger_names_file_and_line(void **s)
{
	char prefix[4200];
	struct conf c;

	(void)s;
	assert_int_equal(load(&c, "vm_dir = /a\npowerfail_trigger = run/pf\n"), -1);
	assert_err(EXIT_USAGE, "powerfail_trigger");
	snprintf(prefix, sizeof(prefix), "%s:2: ", path);
	if (strncmp(err_msg(), prefix, strlen(prefix)))
		fail_msg("'%s' does not start with '%s'", tu_msg(), prefix);
}

/* inih indexes before its buffer on a NUL after an over-long line (found by
 * fuzz_conf): conf_load refuses NUL bytes itself, naming the line. */
/* console_paths: every entry absolute; "watch" is no VM name (run_dir/watch.pid is the daemon's). */
static void test_console_paths_and_reserved_name(void **s)
{
	struct conf c;

	(void)s;
	assert_int_equal(load(&c, "console_paths = /srv/images  /mnt/usb/x.img\n"), 0);
	assert_string_equal(c.console_paths, "/srv/images  /mnt/usb/x.img");
	assert_int_equal(load(&c, "console_paths = usb /srv/images\n"), -1);
	assert_err(EXIT_USAGE, ":1: console_paths");
	assert_int_equal(load(&c, "vms = vm1 watch\n"), -1);
	assert_err(EXIT_USAGE, "'watch' is reserved");
	assert_false(conf_name_ok("watch"));
	assert_true(conf_name_ok("watch2"));
}

static void test_nul_byte_is_refused(void **s)
{
	static const char text[] = "vm_dir = /a\nrun_dir = /b\0\n";
	char *big = malloc(3000);
	struct conf c;

	(void)s;
	tu_write_file(path, text, sizeof(text) - 1);
	conf_defaults(&c);
	err_clear();
	assert_int_equal(conf_load(&c, path, true), -1);
	assert_err(EXIT_USAGE, ":2: a NUL byte: not a text file");
	/* The fuzz find's shape: an over-long line, then a NUL. */
	assert_non_null(big);
	memset(big, 'x', 2000);
	memcpy(big + 2000, "\0\nvm_dir = /a\n", 15);
	tu_write_file(path, big, 2015);
	err_clear();
	assert_int_equal(conf_load(&c, path, true), -1);
	assert_err(EXIT_USAGE, ":1: a NUL byte");
	/* Without the NUL, the over-long line is inih's syntax error, at line 1. */
	big[2000] = '\n';
	tu_write_file(path, big, 2001);
	err_clear();
	assert_int_equal(conf_load(&c, path, true), -1);
	assert_err(EXIT_USAGE, ":1: expected 'key = value'");
	free(big);
}

/* A config file is small; a huge one (or /dev/zero) is refused, not read forever. */
static void test_huge_file_is_refused(void **s)
{
	char *big = malloc(1 << 21);
	struct conf c;

	(void)s;
	assert_non_null(big);
	memset(big, '#', 1 << 21);
	tu_write_file(path, big, 1 << 21);
	conf_defaults(&c);
	err_clear();
	assert_int_equal(conf_load(&c, path, true), -1);
	assert_err(EXIT_USAGE, "larger than");
	free(big);
}

static void test_too_many_vm_sections(void **s)
{
	char text[2048] = "", line[64];
	struct conf c;

	(void)s;
	for (int i = 0; i <= CONF_MAX_VMS; i++) {
		snprintf(line, sizeof(line), "[vm v%d]\ninstant = yes\n", i);
		strcat(text, line);
	}
	assert_int_equal(load(&c, text), -1);
	assert_err(EXIT_USAGE, "at most 16");
}

static void test_name_ok(void **s)
{
	static const char *good[] = { "vm1", "a", "A_b-c.d", "9lives", "x.", "x-" };
	static const char *bad[] = { "", ".x", "-x", "a/b", "a b", "a\n", "\xc3\xa4", "..", "a:b" };
	char longest[CONF_NAME_MAX + 1];

	(void)s;
	for (size_t i = 0; i < ARRAY_SIZE(good); i++)
		assert_true(conf_name_ok(good[i]));
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		if (conf_name_ok(bad[i]))
			fail_msg("'%s' accepted", bad[i]);
	memset(longest, 'n', sizeof(longest));
	longest[CONF_NAME_MAX - 1] = 0; /* 63 characters */
	assert_true(conf_name_ok(longest));
	longest[CONF_NAME_MAX - 1] = 'n';
	longest[CONF_NAME_MAX] = 0; /* 64 */
	assert_false(conf_name_ok(longest));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_missing_optional_file_keeps_defaults),
		cmocka_unit_test(test_missing_required_file_is_usage_error),
		cmocka_unit_test(test_every_global_key_parses),
		cmocka_unit_test(test_parallel_channels_auto_is_zero),
		cmocka_unit_test(test_bool_spellings),
		cmocka_unit_test(test_inline_comment_is_stripped),
		cmocka_unit_test(test_vm_sections),
		cmocka_unit_test(test_vm_without_section_gets_default_image),
		cmocka_unit_test(test_errors_name_file_and_line),
		cmocka_unit_test(test_relative_powerfail_trigger_names_file_and_line),
		cmocka_unit_test(test_console_paths_and_reserved_name),
		cmocka_unit_test(test_nul_byte_is_refused),
		cmocka_unit_test(test_huge_file_is_refused),
		cmocka_unit_test(test_too_many_vm_sections),
		cmocka_unit_test(test_name_ok),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
