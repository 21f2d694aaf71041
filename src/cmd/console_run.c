/* console_run: one console command in a child process, its output relayed
 * line by line, and the reply's final OK or ERR line (console_run.h). */
#include "console_run.h"
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

/* A child's output on its way to the console. Lines go out as they come,
 * except one that may be the command's final "vmsnap: CMD: ..." error: it
 * is held until the next line shows it was not the last. */
struct relay_out {
	struct con *k;
	char prefix[32];
	size_t plen, len, held_len;
	bool have_held;
	char held[640];
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
	if (r->have_held) {
		emit(r, r->held, r->held_len);
		r->have_held = false;
	}
	if (n >= r->plen && n <= sizeof(r->held) && !memcmp(s, r->prefix, r->plen)) {
		memcpy(r->held, s, n);
		r->held_len = n;
		r->have_held = true;
	} else {
		emit(r, s, n);
	}
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

static int reply(struct relay_out *r, const char *name, int status)
{
	int code = EXIT_FAIL, sig;

	if (WIFEXITED(status)) {
		code = WEXITSTATUS(status);
		if (code == EXIT_OK) {
			if (r->have_held)
				emit(r, r->held, r->held_len);
			return con_printf(r->k, "OK");
		}
		if (code != EXIT_USAGE && code != EXIT_REFUSED)
			code = EXIT_FAIL;
		if (r->have_held)
			return con_printf(r->k, "ERR %d %.*s", code, (int)(r->held_len - r->plen),
					  r->held + r->plen);
		return con_printf(r->k, "ERR %d %s failed with exit status %d", code, name,
				  WEXITSTATUS(status));
	}
	if (r->have_held)
		emit(r, r->held, r->held_len);
	sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
	return con_printf(r->k, "ERR 1 %s died of signal %d (%s); the console goes on", name, sig,
			  strsignal(sig));
}

static _Noreturn void child(struct con *k, struct conf *c, con_fn *fn, int argc, char **argv,
			    const int p[2])
{
	int null = open("/dev/null", O_RDONLY);

	/* Its own process group: a ^C at a terminal must not kill a save midway. */
	setpgid(0, 0);
	/* Console input stays the console's: nothing the command runs may read it. */
	if (null < 0 || dup2(null, 0) < 0 || dup2(p[1], 1) < 0 || dup2(p[1], 2) < 0)
		_exit(EXIT_FAIL);
	/* the command needs none of the console's descriptors */
	int fds[] = { k->in, null, p[0], p[1] };
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		if (fds[i] > 2)
			close(fds[i]);
	setvbuf(stdout, NULL, _IOLBF, 0); /* keep stdout and stderr lines in order */
	err_clear();
	int rc = fn(c, argc, argv);
	fflush(NULL);
	_exit(rc);
}

int con_run(struct con *k, struct conf *c, con_fn *fn, int argc, char **argv)
{
	const char *name = argv[0];
	struct relay_out *r = calloc(1, sizeof(*r));
	int p[2], status, e;
	pid_t pid;

	if (!r)
		return con_printf(k, "ERR 1 %s: out of memory", name);
	r->k = k;
	snprintf(r->prefix, sizeof(r->prefix), "vmsnap: %s: ", name);
	r->plen = strlen(r->prefix);
	if (pipe2(p, O_CLOEXEC) < 0) {
		free(r);
		return con_printf(k, "ERR 1 %s: pipe: %s", name, strerror(errno));
	}
	fcntl(p[0], F_SETFL, O_NONBLOCK); /* cannot fail on a pipe we own */
	fflush(NULL); /* nothing buffered may be written twice */
	pid = fork();
	if (pid == 0)
		child(k, c, fn, argc, argv, p);
	e = errno;
	close(p[1]);
	if (pid < 0) {
		close(p[0]);
		free(r);
		return con_printf(k, "ERR 1 %s: fork: %s", name, strerror(e));
	}
	relay_child(r, p[0], pid, &status);
	close(p[0]);
	e = reply(r, name, status);
	free(r);
	return e < 0 || k->broken ? -1 : 0;
}
