/* test_guest: what vmsnap does for the guest after a restore. The agent's
 * port and the vmgenid device found in definitions (key=value and JSON),
 * the chardev kept vmsnap's, the generation ID pinned or renewed; and the
 * guest agent client against a scripted agent on a unix socket: the 0xFF
 * resynchronisation, stale replies, refusals, silence and endless lines. */
#include "helpers.h"
#include "qga.h"
#include "vm_def.h"

#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>

#define PORT "-device virtio-serial\n-device virtserialport,chardev=vmsnap-qga,name=org.qemu.guest_agent.0\n"

static int parse(struct vm_def *d, const char *text)
{
	err_clear();
	return vm_def_parse(d, text, strlen(text), "vm1.vm", EXIT_USAGE);
}

static void test_agent_port_is_found(void **s)
{
	static const struct { const char *def; bool agent; } t[] = {
		{ "-m 64\n" PORT, true },
		{ "-device virtserialport,name=org.qemu.guest_agent.0,chardev=vmsnap-qga,id=p0\n", true },
		{ "-device driver=virtserialport,chardev=vmsnap-qga,name=org.qemu.guest_agent.0\n", true },
		{ "-device {\"driver\":\"virtserialport\",\"chardev\":\"vmsnap-qga\",\"name\":\"org.qemu.guest_agent.0\"}\n", true },
		{ "-device virtserialport,chardev=qga0,name=org.qemu.guest_agent.0\n", false },
		{ "-device virtserialport,chardev=qga,name=org.qemu.guest_agent.0\n-chardev socket,id=qga,path=/tmp/q\n", false },
		{ "-append chardev=vmsnap-qga name=org.qemu.guest_agent.0\n", false },
		{ "-m 64\n", false },
	};
	struct vm_def d;

	(void)s;
	for (size_t i = 0; i < ARRAY_SIZE(t); i++) {
		if (parse(&d, t[i].def) < 0)
			fail_msg("%s: %s", t[i].def, tu_msg());
		if (vm_def_has_agent(&d) != t[i].agent)
			fail_msg("%s: agent %d, want %d", t[i].def, !t[i].agent, t[i].agent);
		assert_int_equal(vm_def_check_agent(&d), 0);
		vm_def_free(&d);
	}
}

static void test_agent_chardev_stays_vmsnaps(void **s)
{
	static const struct { const char *def, *want; } t[] = {
		{ PORT "-chardev socket,id=vmsnap-qga,path=/tmp/x.sock,server=on,wait=off\n",
		  "vm1.vm:3: option -chardev 'socket,id=vmsnap-qga,path=/tmp/x.sock,server=on,wait=off': the character device vmsnap-qga is vmsnap's (the guest agent's socket in run_dir): leave this line out" },
		{ "-device isa-serial,chardev=vmsnap-qga\n",
		  "vm1.vm:1: option -device 'isa-serial,chardev=vmsnap-qga': vmsnap-qga is for the guest agent's port only: virtserialport,chardev=vmsnap-qga,name=org.qemu.guest_agent.0" },
		{ "-device virtconsole,chardev=vmsnap-qga,name=org.qemu.guest_agent.0\n",
		  "is for the guest agent's port only" },
		{ "-device virtserialport,chardev=vmsnap-qga,name=org.qemu.other\n",
		  "is for the guest agent's port only" },
	};
	struct vm_def d;

	(void)s;
	for (size_t i = 0; i < ARRAY_SIZE(t); i++) {
		assert_int_equal(parse(&d, t[i].def), 0);
		assert_int_equal(vm_def_check_agent(&d), -1);
		if (!strstr(err_msg(), t[i].want))
			fail_msg("%s: '%s', want '%s'", t[i].def, tu_msg(), t[i].want);
		assert_int_equal(err_code(), EXIT_USAGE);
		vm_def_free(&d);
	}
}

/* The guid on line 2 of d's text after vm_def_genid(fresh). */
static void genid(const char *def, bool fresh, const char *want_line, bool same_guid)
{
	char guid[40], line[512];
	const char *p;
	struct vm_def d;

	assert_int_equal(parse(&d, def), 0);
	assert_int_equal(vm_def_genid(&d, fresh, guid, sizeof(guid)), 1);
	assert_int_equal(strlen(guid), 36);
	p = strchr(d.text, '\n') + 1;
	snprintf(line, sizeof(line), "%.*s", (int)strcspn(p, "\n"), p);
	if (same_guid) {
		assert_string_equal(line, want_line);
	} else {
		char want[512];
		snprintf(want, sizeof(want), want_line, guid);
		assert_string_equal(line, want);
		assert_non_null(strstr(d.text, "# kept\n"));
	}
	vm_def_free(&d);
}

static void test_genid_pinned_kept_renewed(void **s)
{
	const char *pinned = "-device vmgenid,guid=324e6eaf-d1d1-4bf6-bf41-b9bb6c91fb87";
	char guid[40];
	struct vm_def d;

	(void)s;
	genid("-m 64\n-device vmgenid\n# kept\n", false, "-device vmgenid,guid=%s", false);
	genid("-m 64\n-device vmgenid,id=g,,x,guid=auto\n# kept\n", false, "-device vmgenid,id=g,,x,guid=%s", false);
	genid("-m 64\n-device {\"driver\":\"vmgenid\"}\n# kept\n", false,
	      "-device {\"driver\":\"vmgenid\",\"guid\":\"%s\"}", false);
	genid("-m 64\n-device vmgenid,guid=324e6eaf-d1d1-4bf6-bf41-b9bb6c91fb87\n", false, pinned, true);
	genid("-m 64\n-device vmgenid,guid=324e6eaf-d1d1-4bf6-bf41-b9bb6c91fb87\n# kept\n", true,
	      "-device vmgenid,guid=%s", false);
	assert_int_equal(parse(&d, "-m 64\n-device vmgenid,guid=324e6eaf-d1d1-4bf6-bf41-b9bb6c91fb87\n"), 0);
	assert_int_equal(vm_def_genid(&d, true, guid, sizeof(guid)), 1);
	assert_string_not_equal(guid, "324e6eaf-d1d1-4bf6-bf41-b9bb6c91fb87");
	assert_int_equal(guid[14], '4'); /* version 4 */
	vm_def_free(&d);
	assert_int_equal(parse(&d, "-m 64\n-device virtio-rng-pci\n"), 0);
	assert_int_equal(vm_def_genid(&d, true, guid, sizeof(guid)), 0);
	assert_string_equal(guid, "");
	vm_def_free(&d);
}

/* --- the guest agent client ------------------------------------------- */

static char dir[64], sock[128];
static pid_t agent;

enum script { NORMAL, STALE, REFUSED, SILENT, ENDLESS, NOT_JSON };

/* Read one request line (after any 0xFF) from fd: its "id" argument, or
 * for set-time the "time" one, into *n. */
static int request(int fd, long long *n)
{
	char buf[512], *p;
	size_t len = 0;

	while (len < sizeof(buf) - 1 && read(fd, buf + len, 1) == 1 && buf[len] != '\n')
		len++;
	buf[len] = 0;
	p = strstr(buf, "\"id\":");
	if (!p)
		p = strstr(buf, "\"time\":");
	if (!p)
		return -1;
	*n = strtoll(strchr(p, ':') + 1, NULL, 10);
	return 0;
}

static void say(int fd, const char *fmt, ...)
{
	char buf[9000];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	write_all(fd, buf, (size_t)n);
}

static void act(int fd, enum script how)
{
	long long id, t;
	char big[8193];

	if (request(fd, &id) < 0)
		_exit(1);
	if (how == SILENT) {
		pause();
		_exit(0);
	}
	/* What the agent says to the lone 0xFF, then a stale delimited reply. */
	say(fd, "{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error\"}}\n");
	if (how == STALE)
		say(fd, "\xff{\"return\": %lld}\n", id + 1);
	if (how == ENDLESS) {
		memset(big, 'x', sizeof(big) - 1);
		big[sizeof(big) - 1] = 0;
		say(fd, "\xff%s", big);
		pause();
	}
	if (how == NOT_JSON) {
		say(fd, "\xffhello\n");
		pause();
	}
	say(fd, "\xff{\"return\": %lld}\n", id);
	if (request(fd, &t) < 0)
		_exit(1);
	if (how == REFUSED)
		say(fd, "{\"error\": {\"class\": \"GenericError\", \"desc\": \"hwclock failed\"}}\n");
	else if (llabs(t / 1000000000 - (long long)time(NULL)) <= 1)
		say(fd, "{\"return\": {}}\n");
	_exit(0);
}

static void start_agent(enum script how)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int l = socket(AF_UNIX, SOCK_STREAM, 0);

	str_copy(sa.sun_path, sizeof(sa.sun_path), sock);
	unlink(sock);
	assert_int_equal(bind(l, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(l, 1), 0);
	agent = fork();
	if (agent == 0) {
		int fd = accept(l, NULL, NULL);
		act(fd, how);
	}
	close(l);
}

static void stop_agent(void)
{
	kill(agent, SIGKILL);
	waitpid(agent, NULL, 0);
}

static void test_agent_sets_the_time(void **s)
{
	(void)s;
	start_agent(NORMAL);
	err_clear();
	assert_int_equal(qga_set_time(sock, 2000), 0);
	stop_agent();
	start_agent(STALE);
	assert_int_equal(qga_set_time(sock, 2000), 0);
	stop_agent();
}

static void test_agent_failures(void **s)
{
	static const struct { enum script how; const char *want; } t[] = {
		{ REFUSED, "the guest agent refused guest-set-time: hwclock failed" },
		{ SILENT, "no answer from the guest agent" },
		{ ENDLESS, "the guest agent sent a line over 4096 bytes" },
		{ NOT_JSON, "no answer from the guest agent" },
	};

	(void)s;
	for (size_t i = 0; i < ARRAY_SIZE(t); i++) {
		uint64_t t0 = now_ms();
		start_agent(t[i].how);
		err_clear();
		assert_int_equal(qga_set_time(sock, 300), -1);
		if (strcmp(err_msg(), t[i].want))
			fail_msg("script %d: '%s', want '%s'", t[i].how, tu_msg(), t[i].want);
		assert_true(now_ms() - t0 < 1500);
		stop_agent();
	}
	unlink(sock);
	assert_int_equal(qga_set_time(sock, 300), -1);
	assert_non_null(strstr(err_msg(), "guest agent socket"));
}

static int setup(void **s)
{
	(void)s;
	tu_mkdtemp(dir);
	tu_path(sock, dir, "vm.qga");
	return 0;
}

static int teardown(void **s)
{
	(void)s;
	tu_rmtree(dir);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_agent_port_is_found),
		cmocka_unit_test(test_agent_chardev_stays_vmsnaps),
		cmocka_unit_test(test_genid_pinned_kept_renewed),
		cmocka_unit_test(test_agent_sets_the_time),
		cmocka_unit_test(test_agent_failures),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
