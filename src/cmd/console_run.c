/* console_run: one console command in a child process, its output relayed
 * line by line, and the reply's final OK or ERR line (console_run.h). */
#include "console_run.h"
#include "cmd.h"
#include "err.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* A child's output on its way to the console, a line at a time. */
struct relay_out {
	struct con *k;
	size_t len;
	char buf[2048];
};

static void emit(struct relay_out *r, const char *s, size_t n)
{
	/* output that reads like a final line would end the reply for a script */
	if ((n == 2 && !memcmp(s, "OK", 2)) || (n >= 4 && !memcmp(s, "ERR ", 4)))
		con_printf(r->k, "  %.*s", (int)n, s);
	else
		con_put_line(r->k, s, n);
}

static void on_line(struct relay_out *r, const char *s, size_t n)
{
	while (n && s[n - 1] == '\r')
		n--;
	emit(r, s, n);
}

/* Read what the child wrote so far: 1 at the end of its output, 0 when
 * there is no more yet. */
static int drain(struct relay_out *r, int fd)
{
	char b[1024];
	ssize_t n;

	for (;;) {
		n = read(fd, b, sizeof(b));
		if (n == 0)
			return 1;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno != EAGAIN;
		for (ssize_t i = 0; i < n; i++) {
			if (b[i] == '\n' || r->len == sizeof(r->buf)) { /* long lines go in pieces */
				on_line(r, r->buf, r->len);
				r->len = 0;
			}
			if (b[i] != '\n')
				r->buf[r->len++] = b[i];
		}
	}
}

/* Relay until the child is gone. Its exit, not the pipe's end, decides:
 * anything it started could still hold the pipe open. */
static void relay_child(struct relay_out *r, int fd, pid_t pid, int *status)
{
	bool eof = false;
	pid_t w;

	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };

		if (!eof) {
			poll(&p, 1, 100);
			eof = drain(r, fd);
		}
		w = waitpid(pid, status, eof ? 0 : WNOHANG);
		if (w == pid) {
			if (!eof)
				drain(r, fd);
			break;
		}
		if (w < 0 && errno != EINTR) {
			*status = EXIT_FAIL << 8; /* cannot happen: it is our child */
			break;
		}
	}
	if (r->len)
		on_line(r, r->buf, r->len);
}

/* The error the command failed with: what cmd_fail wrote to the child's
 * error pipe (read once the child is gone), "" if it wrote none. */
static void read_error(int fd, char *msg, size_t size)
{
	size_t got = 0;
	ssize_t n;

	while (got < size - 1 && ((n = read(fd, msg + got, size - 1 - got)) > 0 ||
				  (n < 0 && errno == EINTR)))
		if (n > 0)
			got += (size_t)n;
	msg[got] = 0;
	msg[strcspn(msg, "\n")] = 0;
}

static int reply(struct con *k, const char *name, int status, const char *msg)
{
	int code = EXIT_FAIL, sig;

	if (WIFEXITED(status)) {
		code = WEXITSTATUS(status);
		if (code == EXIT_OK)
			return con_printf(k, "OK");
		if (code != EXIT_USAGE && code != EXIT_REFUSED)
			code = EXIT_FAIL;
		if (msg[0])
			return con_printf(k, "ERR %d %s", code, msg);
		return con_printf(k, "ERR %d %s failed with exit status %d", code, name,
				  WEXITSTATUS(status));
	}
	sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
	return con_printf(k, "ERR 1 %s died of signal %d (%s); the console goes on", name, sig,
			  strsignal(sig));
}

static _Noreturn void child(struct con *k, struct conf *c, con_fn *fn, int argc, char **argv,
			    const int p[2], const int e[2])
{
	int null = open("/dev/null", O_RDONLY);

	/* Its own process group: a ^C at a terminal must not kill a save midway. */
	setpgid(0, 0);
	/* Console input stays the console's: nothing the command runs may read it. */
	if (null < 0 || dup2(null, 0) < 0 || dup2(p[1], 1) < 0 || dup2(p[1], 2) < 0)
		_exit(EXIT_FAIL);
	/* the command needs none of the console's descriptors */
	int fds[] = { k->in, null, p[0], p[1], e[0] };
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		if (fds[i] > 2)
			close(fds[i]);
	setvbuf(stdout, NULL, _IOLBF, 0); /* keep stdout and stderr lines in order */
	err_clear();
	cmd_err_fd = e[1]; /* cmd_fail's message: the reply's, not the output's */
	int rc = fn(c, argc, argv);
	fflush(NULL);
	_exit(rc);
}

/* p: the child's output; e: the error it fails with. Both read ends never
 * block (fcntl cannot fail on pipes we own). */
static int open_pipes(int p[2], int e[2])
{
	if (pipe2(p, O_CLOEXEC) < 0)
		return -1;
	if (pipe2(e, O_CLOEXEC) < 0) {
		int err = errno;
		close(p[0]);
		close(p[1]);
		errno = err;
		return -1;
	}
	fcntl(p[0], F_SETFL, O_NONBLOCK);
	fcntl(e[0], F_SETFL, O_NONBLOCK);
	return 0;
}

int con_run(struct con *k, struct conf *c, con_fn *fn, int argc, char **argv)
{
	const char *name = argv[0];
	struct relay_out *r = calloc(1, sizeof(*r));
	char msg[1024];
	int p[2], e[2], status, err;
	pid_t pid;

	if (!r)
		return con_printf(k, "ERR 1 %s: out of memory", name);
	r->k = k;
	if (open_pipes(p, e) < 0) {
		free(r);
		return con_printf(k, "ERR 1 %s: pipe: %s", name, strerror(errno));
	}
	fflush(NULL); /* nothing buffered may be written twice */
	pid = fork();
	if (pid == 0)
		child(k, c, fn, argc, argv, p, e);
	err = errno;
	close(p[1]);
	close(e[1]);
	if (pid < 0) {
		close(p[0]);
		close(e[0]);
		free(r);
		return con_printf(k, "ERR 1 %s: fork: %s", name, strerror(err));
	}
	relay_child(r, p[0], pid, &status);
	close(p[0]);
	read_error(e[0], msg, sizeof(msg));
	close(e[0]);
	free(r);
	err = reply(k, name, status, msg);
	return err < 0 || k->broken ? -1 : 0;
}
