/* qemu_run: QEMU confined and daemonized by vmsnap (see qemu_run.h). */
#include "qemu_run.h"
#include "err.h"
#include "qmp.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

int qrun_confine_args(const struct conf *c, struct qrun_confine *buf, char **argv)
{
	int n = 0;

	if (c->qemu_sandbox) {
		/* Dropping to qemu_user happens after the filter is in place, so
		 * that one setuid must be allowed; spawn=deny also stops a
		 * definition's tap script= and a monitor's migrate "exec:". */
		snprintf(buf->sandbox, sizeof(buf->sandbox),
			 "on,obsolete=deny,elevateprivileges=%s,spawn=%s,resourcecontrol=deny",
			 c->qemu_user[0] ? "allow" : "deny", c->qemu_spawn ? "allow" : "deny");
		argv[n++] = "-sandbox";
		argv[n++] = buf->sandbox;
	}
	if (c->qemu_user[0]) {
		snprintf(buf->user, sizeof(buf->user), "user=%s", c->qemu_user);
		argv[n++] = "-run-with";
		argv[n++] = buf->user;
	}
	return n;
}

/* The child: a new session, then a grandchild that becomes QEMU, so that
 * init (not a long-running vmsnap) reaps it. Never returns. */
static void child(char **argv, char **env, int errfd)
{
	int null = open("/dev/null", O_RDWR);
	pid_t pid;

	if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(errfd, 2) < 0)
		_exit(126);
	if (null > 2)
		close(null);
	if (setsid() < 0 || (pid = fork()) < 0) {
		dprintf(2, "cannot start QEMU: %s\n", strerror(errno));
		_exit(126);
	}
	if (pid > 0)
		_exit(0);
	umask(077); /* what QEMU creates is ours alone */
	execve(argv[0], argv, env);
	dprintf(2, "cannot execute %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}

/* Keep the last non-empty line QEMU printed: its error message. */
static void last_line(char *buf, size_t len, char *out, size_t size)
{
	char *end = buf + len, *start;

	while (end > buf && (end[-1] == '\n' || end[-1] == '\r' || end[-1] == ' '))
		end--;
	*end = 0;
	start = end;
	while (start > buf && start[-1] != '\n')
		start--;
	str_trunc(out, size, start);
}

struct out {
	char buf[4096];
	size_t got;
};

/* Read what QEMU wrote to stderr, up to wait_ms: 0 EOF (QEMU exited),
 * 1 more may come. */
static int drain(int fd, struct out *o, int wait_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	ssize_t r;

	if (poll(&p, 1, wait_ms) <= 0)
		return 1;
	r = read(fd, o->buf + o->got, sizeof(o->buf) - 1 - o->got);
	if (r < 0)
		return errno == EINTR || errno == EAGAIN ? 1 : 0;
	if (r == 0)
		return 0;
	o->got += (size_t)r;
	if (o->got == sizeof(o->buf) - 1) /* keep the tail, where the error is */
		o->got = 0;
	return 1;
}

/* QEMU's last line on stderr, as the error: it exited. */
static int exited(struct out *o)
{
	char line[512];

	o->buf[o->got] = 0;
	last_line(o->buf, o->got, line, sizeof(line));
	return err_set(EXIT_FAIL, "%s", line[0] ? line : "it exited without a message");
}

/* Until QEMU greets on qmp (then this probe client leaves) or exits. */
static int wait_ready(int errfd, const char *qmp, uint64_t deadline, struct out *o)
{
	uint64_t t0 = now_ms();
	struct qmp q;
	int fd = -1;

	while (fd < 0) {
		if (!drain(errfd, o, 20))
			return exited(o);
		if (now_ms() >= deadline)
			break;
		fd = qmp_dial(qmp);
	}
	if (fd >= 0 && qmp_attach(&q, fd, qmp, deadline) == 0) {
		qmp_close(&q);
		return 0;
	}
	for (uint64_t end = now_ms() + 2000; now_ms() < end;) /* its message, if it exits */
		if (!drain(errfd, o, 100))
			return exited(o);
	return err_set(EXIT_FAIL, "no QMP greeting on %s after %llu ms", qmp,
		       (unsigned long long)(now_ms() - t0));
}

int qrun_start(char **argv, char **env, const char *qmp, int timeout_ms)
{
	static struct out o;
	int pipefd[2], status = 0, rc;
	pid_t pid;

	o.got = 0;
	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return err_sys(EXIT_FAIL, "pipe");
	pid = fork();
	if (pid < 0) {
		close(pipefd[0]);
		close(pipefd[1]);
		return err_sys(EXIT_FAIL, "fork");
	}
	if (pid == 0)
		child(argv, env, pipefd[1]);
	close(pipefd[1]);
	while ((rc = waitpid(pid, &status, 0)) < 0 && errno == EINTR)
		;
	if (rc < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		while (drain(pipefd[0], &o, 1000))
			;
		close(pipefd[0]);
		return exited(&o);
	}
	rc = wait_ready(pipefd[0], qmp, now_ms() + (uint64_t)timeout_ms, &o);
	close(pipefd[0]); /* QEMU ignores SIGPIPE: later messages are lost, as with -daemonize */
	return rc;
}
