/* test_qmp: the QMP client against a scripted "QEMU" on a socketpair:
 * hostile greetings and replies (not JSON, wrong ids, floods, huge lines,
 * numbers out of range), each failing cleanly or being ignored. */
#include "helpers.h"
#include "qmp.h"

#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>

#define GREETING "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 2, \"minor\": 0, \"major\": 10}}, \"capabilities\": [\"oob\"]}}\r\n"
#define CAPS_OK "{\"return\": {}, \"id\": \"vmsnap-1\"}\r\n"

static pid_t writer;
static bool writer_reads = true; /* false: the "QEMU" dies without reading */

/* A connected fd whose far end sends script (len bytes), then EOF, and
 * reads what the client sends until it closes (closing with the client's
 * commands unread would reset the connection instead). */
static int serve(const char *script, size_t len)
{
	char sink[4096];
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		fail_msg("socketpair");
	writer = fork();
	if (writer == 0) {
		close(sv[0]);
		write_all(sv[1], script, len);
		shutdown(sv[1], SHUT_WR);
		if (!writer_reads) {
			/* Die with the client's first command unread; waiting
			 * for it to arrive keeps qmp_attach's own send from
			 * racing with the exit. */
			struct pollfd p = { .fd = sv[1], .events = POLLIN };
			poll(&p, 1, 5000);
			_exit(0);
		}
		while (read(sv[1], sink, sizeof(sink)) > 0)
			;
		_exit(0);
	}
	close(sv[1]);
	return sv[0];
}

static void reap(void)
{
	if (writer > 0)
		waitpid(writer, NULL, 0);
	writer = 0;
}

static int attach(struct qmp *q, const char *script)
{
	err_clear();
	return qmp_attach(q, serve(script, strlen(script)), "test.qmp", now_ms() + 5000);
}

static void test_qmp_int_range(void **s)
{
	static const struct { const char *json; long long want; } t[] = {
		{ "{\"n\": 42}", 42 },
		{ "{\"n\": -7}", -7 },
		{ "{\"n\": 1.9}", 1 },
		{ "{\"n\": 9007199254740992}", 9007199254740992LL },
		{ "{\"n\": -9223372036854775808}", LLONG_MIN },
		{ "{\"n\": 9223372036854775808}", -1 }, /* 2^63: one past the range */
		{ "{\"n\": 18888888888888888888888888888888888888}", -1 },
		{ "{\"n\": 1e300}", -1 },
		{ "{\"n\": -1e300}", -1 },
		{ "{\"n\": 1e999}", -1 }, /* inf */
		{ "{\"n\": \"42\"}", -1 },
		{ "{\"n\": null}", -1 },
		{ "{}", -1 },
	};

	(void)s;
	for (size_t i = 0; i < ARRAY_SIZE(t); i++) {
		cJSON *j = cJSON_Parse(t[i].json);
		assert_non_null(j);
		if (qmp_int(j, "n", -1) != t[i].want)
			fail_msg("%s: %lld, want %lld", t[i].json, qmp_int(j, "n", -1), t[i].want);
		cJSON_Delete(j);
	}
}

/* The fuzz find: a version number past long long in the greeting. */
/* What the static binary's cJSON calls for sscanf(buf, "%lg", &d) (Makefile). */
int cjson_sscanf(const char *s, const char *fmt, ...);
static void test_cjson_sscanf_reads_a_double(void **s)
{
	const struct { const char *in; int rc; double v; } cases[] = {
		{ "1.5", 1, 1.5 }, { "4294967296", 1, 4294967296.0 }, { " -2e-3", 1, -0.002 },
		{ "9.2233720368547758e+18", 1, 9.2233720368547758e+18 }, { "", 0, 7 }, { "x", 0, 7 },
	};

	(void)s;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		double d = 7;
		assert_int_equal(cjson_sscanf(cases[i].in, "%lg", &d), cases[i].rc);
		assert_true(d == cases[i].v);
	}
}

static void test_greeting_version_out_of_range(void **s)
{
	struct qmp q;

	(void)s;
	assert_int_equal(attach(&q, "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 2, \"minor\": "
				    "18888888888888888888888888888888888888, \"major\": 1e300}}}}\n" CAPS_OK),
			 0);
	assert_string_equal(q.version_str, "0.0.2");
	qmp_close(&q);
	reap();
}

/* Each script fails the connection with EXIT_FAIL and a message. */
static void test_bad_greetings(void **s)
{
#define NUL_LINE GREETING "{\"ret\0urn\": {}, \"id\": \"vmsnap-1\"}\n"
	static const struct { const char *what, *script, *want; size_t len; } t[] = {
		{ "nothing", "", "closed the QMP connection", 0 },
		{ "not JSON", "hello\n", "not JSON", 0 },
		{ "JSON but no greeting", "{\"return\": {}}\n", "not a QMP greeting", 0 },
		{ "a greeting without a newline", GREETING "{\"QMP\": {}}", "closed the QMP connection", 0 },
		{ "capabilities refused", GREETING "{\"error\": {\"class\": \"GenericError\", \"desc\": \"no\"}, \"id\": \"vmsnap-1\"}\n",
		  "QEMU refused qmp_capabilities: no (GenericError)", 0 },
		{ "error without desc or class", GREETING "{\"error\": 5, \"id\": \"vmsnap-1\"}\n",
		  "no description (no class)", 0 },
		{ "a NUL inside a line", NUL_LINE, "not JSON", sizeof(NUL_LINE) - 1 },
	};
	int failed = 0;

	(void)s;
	for (size_t i = 0; i < ARRAY_SIZE(t); i++) {
		struct qmp q;
		size_t len = t[i].len ? t[i].len : strlen(t[i].script);
		err_clear();
		if (qmp_attach(&q, serve(t[i].script, len), "test.qmp", now_ms() + 5000) != -1 ||
		    err_code() != EXIT_FAIL || !strstr(err_msg(), t[i].want)) {
			print_error("# %s: code %d, '%s' (want '%s')\n", t[i].what, err_code(), tu_msg(),
				    t[i].want);
			failed++;
		}
		assert_int_equal(q.fd, -1);
		reap();
	}
	assert_int_equal(failed, 0);
}

/* Stale replies are skipped, events on the way are queued for later, the
 * matching reply is the answer. */
static void test_reply_matching_and_events(void **s)
{
	const char *script = GREETING CAPS_OK
		"{\"return\": {\"status\": \"old\"}, \"id\": \"vmsnap-0\"}\n"
		"{\"event\": \"STOP\"}\n"
		"{\"return\": {\"status\": \"old\"}}\n"
		"{\"return\": {\"status\": \"running\", \"running\": true}, \"id\": \"vmsnap-2\"}\n"
		"{\"event\": \"RESUME\"}\n";
	struct qmp q;
	cJSON *ret = NULL, *ev = NULL;

	(void)s;
	assert_int_equal(attach(&q, script), 0);
	assert_int_equal(qmp_call(&q, "query-status", NULL, NULL, 0, &ret), 0);
	assert_string_equal(qmp_str(ret, "status"), "running");
	assert_int_equal(qmp_bool(ret, "running", 0), 1);
	cJSON_Delete(ret);
	assert_int_equal(qmp_event(&q, 1000, &ev), 1);
	assert_string_equal(qmp_str(ev, "event"), "STOP");
	cJSON_Delete(ev);
	assert_int_equal(qmp_event(&q, 1000, &ev), 1);
	assert_string_equal(qmp_str(ev, "event"), "RESUME");
	cJSON_Delete(ev);
	assert_int_equal(qmp_event(&q, 100, &ev), -1); /* then EOF */
	assert_err(EXIT_FAIL, "closed the QMP connection");
	qmp_close(&q);
	reap();
}

/* More events than the queue holds: the oldest go, memory stays bounded. */
static void test_event_flood_keeps_the_newest(void **s)
{
	char *script = malloc(64 * 1024);
	size_t n;
	struct qmp q;
	cJSON *ev;
	int first = -1, count = 0;

	(void)s;
	assert_non_null(script);
	n = (size_t)sprintf(script, "%s%s", GREETING, CAPS_OK);
	for (int i = 0; i < QMP_MAX_EVENTS + 10; i++)
		n += (size_t)sprintf(script + n, "{\"event\": \"E\", \"data\": {\"n\": %d}}\n", i);
	n += (size_t)sprintf(script + n, "{\"return\": {}, \"id\": \"vmsnap-2\"}\n");
	err_clear();
	assert_int_equal(qmp_attach(&q, serve(script, n), "test.qmp", now_ms() + 5000), 0);
	assert_int_equal(qmp_call(&q, "cont", NULL, NULL, 0, NULL), 0);
	while (qmp_event(&q, 0, &ev) > 0) {
		int k = (int)qmp_int(cJSON_GetObjectItem(ev, "data"), "n", -1);
		if (first < 0)
			first = k;
		count++;
		cJSON_Delete(ev);
	}
	assert_int_equal(count, QMP_MAX_EVENTS);
	assert_int_equal(first, 10);
	qmp_close(&q);
	reap();
	free(script);
}

/* "QEMU" dies with our command unread: the kernel resets the connection
 * (ECONNRESET, or EPIPE on the next send); said like any other exit. */
static void test_reset_reads_as_qemu_gone(void **s)
{
	struct qmp q;

	(void)s;
	writer_reads = false;
	assert_int_equal(attach(&q, GREETING CAPS_OK), 0);
	reap(); /* it is gone, with "qmp_capabilities" unread */
	assert_int_equal(qmp_call(&q, "query-status", NULL, NULL, 0, NULL), -1);
	assert_err(EXIT_FAIL, "QMP query-status: QEMU closed the QMP connection (did QEMU exit?)");
	assert_int_equal(qmp_call(&q, "cont", NULL, NULL, 0, NULL), -1);
	assert_err(EXIT_FAIL, "QMP cont: QEMU closed the QMP connection");
	qmp_close(&q);
	writer_reads = true;
}

/* A line that never ends is cut off at the limit, not buffered forever. */
static void test_endless_line_is_refused(void **s)
{
	size_t n = (5u << 20);
	char *script = malloc(n);
	struct qmp q;

	(void)s;
	assert_non_null(script);
	memcpy(script, GREETING CAPS_OK, sizeof(GREETING CAPS_OK) - 1);
	memset(script + sizeof(GREETING CAPS_OK) - 1, ' ', n - (sizeof(GREETING CAPS_OK) - 1));
	err_clear();
	assert_int_equal(qmp_attach(&q, serve(script, n), "test.qmp", now_ms() + 5000), 0);
	assert_int_equal(qmp_call(&q, "query-status", NULL, NULL, 0, NULL), -1);
	assert_err(EXIT_FAIL, "reply longer than");
	qmp_close(&q);
	kill(writer, SIGKILL);
	reap();
	free(script);
}

/* With stdin closed, the QMP socket can be fd 0: it is closed like any
 * other (qmp_close tested fd > 0; snap_save's roll back did too). */
static void test_fd0_is_a_socket_like_any_other(void **s)
{
	struct qmp q;
	int saved = dup(0), sv[2];

	(void)s;
	assert_true(saved >= 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(dup2(sv[0], 0), 0);
	close(sv[0]);
	memset(&q, 0, sizeof(q));
	q.fd = 0;
	qmp_close(&q);
	assert_int_equal(q.fd, -1);
	assert_true(fcntl(0, F_GETFD) < 0); /* closed */
	assert_int_equal(dup2(saved, 0), 0);
	close(saved);
	close(sv[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_qmp_int_range),
		cmocka_unit_test(test_greeting_version_out_of_range),
		cmocka_unit_test(test_bad_greetings),
		cmocka_unit_test(test_reply_matching_and_events),
		cmocka_unit_test(test_event_flood_keeps_the_newest),
		cmocka_unit_test(test_reset_reads_as_qemu_gone),
		cmocka_unit_test(test_endless_line_is_refused),
		cmocka_unit_test(test_fd0_is_a_socket_like_any_other),
		cmocka_unit_test(test_cjson_sscanf_reads_a_double),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
