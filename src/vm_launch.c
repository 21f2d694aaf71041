/* vm_launch: start QEMU for a definition (see vm.h): its argv, the fork and
 * exec, its error message from stderr, the definition recorded for save. */
#include "vm.h"
#include "err.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

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

/* QEMU's environment: ours without sanitizer settings, which belong to a
 * sanitized vmsnap (make check SANITIZE=1) and not to the QEMU it starts. */
static char **qemu_env(void)
{
	size_t n = 0, k = 0;
	char **env;

	while (environ[n])
		n++;
	env = malloc((n + 1) * sizeof(*env));
	if (!env)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		const char *eq = strchr(environ[i], '=');
		size_t l = eq ? (size_t)(eq - environ[i]) : strlen(environ[i]);
		if (l > 11 && !strncmp(environ[i] + l - 11, "SAN_OPTIONS", 11))
			continue; /* ASAN_, UBSAN_, LSAN_OPTIONS... */
		env[k++] = environ[i];
	}
	env[k] = NULL;
	return env;
}

/* QEMU's argv: the definition, extra, then what vmsnap manages itself (the
 * QMP socket, pidfile, daemonizing; incoming: paused, waiting for the stream). */
static int launch_argv(const struct conf *c, const struct vm_paths *p, const struct vm_def *d,
		       const char *const *extra, bool incoming, char *qmp_arg, size_t qmp_size,
		       char **argv)
{
	int n = 0;

	snprintf(qmp_arg, qmp_size, "unix:%s,server=on,wait=off", p->qmp);
	argv[n++] = (char *)c->qemu;
	for (int i = 0; i < d->argc; i++)
		argv[n++] = d->argv[i];
	for (int i = 0; extra && extra[i] && i < 8; i++)
		argv[n++] = (char *)extra[i];
	argv[n++] = "-qmp";
	argv[n++] = qmp_arg;
	argv[n++] = "-pidfile";
	argv[n++] = (char *)p->pid;
	argv[n++] = "-daemonize";
	if (incoming) {
		argv[n++] = "-S";
		argv[n++] = "-incoming";
		argv[n++] = "defer";
	}
	argv[n] = NULL;
	if (log_verbose) {
		char cmd[2048] = "";
		for (int i = 0; i < n; i++) {
			strncat(cmd, argv[i], sizeof(cmd) - strlen(cmd) - 2);
			strncat(cmd, " ", sizeof(cmd) - strlen(cmd) - 1);
		}
		log_debug("starting %s", cmd);
	}
	return n;
}

/* Fork and exec QEMU with stdin/stdout on /dev/null and stderr on a pipe
 * whose read end is *err. */
static pid_t spawn(char **argv, int *err)
{
	int pipefd[2];
	char **env;
	pid_t pid;

	if (!(env = qemu_env()))
		return err_sys(EXIT_FAIL, "environment for QEMU");
	if (pipe2(pipefd, O_CLOEXEC) < 0) {
		free(env);
		return err_sys(EXIT_FAIL, "pipe");
	}
	pid = fork();
	if (pid < 0) {
		close(pipefd[0]);
		close(pipefd[1]);
		free(env);
		return err_sys(EXIT_FAIL, "fork");
	}
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);
		dup2(null, 0);
		dup2(null, 1);
		dup2(pipefd[1], 2);
		umask(077); /* what QEMU creates before it daemonizes is ours alone */
		execve(argv[0], argv, env);
		dprintf(2, "cannot execute %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	free(env);
	close(pipefd[1]);
	*err = pipefd[0];
	return pid;
}

/* What QEMU printed on stderr until it daemonized (its parent process exits
 * once the daemon is ready; the pipe reaches EOF when the daemon detaches). A
 * full buffer starts over, so what stays is the latest output, where the
 * error is. Returns its length. */
static size_t read_stderr(int fd, char *buf, size_t size)
{
	size_t got = 0;

	for (;;) {
		ssize_t r = read(fd, buf + got, size - 1 - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
		if (got == size - 1)
			got = 0;
	}
	close(fd);
	buf[got] = 0;
	return got;
}

/* The definition QEMU runs with, for save to embed. */
static int record_def(const struct vm_paths *p, const struct vm_def *d)
{
	char tmp[VM_PATH_SIZE + 8];
	int fd;

	snprintf(tmp, sizeof(tmp), "%s.tmp", p->def);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write_all(fd, d->text, d->len) < 0 || close(fd) < 0 || rename(tmp, p->def) < 0)
		return err_sys(EXIT_FAIL, "writing %s", p->def);
	return 0;
}

int vm_launch(const struct conf *c, const char *name, const struct vm_def *d,
	      const char *const *extra, bool incoming)
{
	struct vm_paths p;
	char qmp_arg[160], errbuf[4096], line[512];
	char *argv[VM_ARGS_MAX + 16];
	int err = -1, status;
	size_t got;
	pid_t pid;

	if (vm_paths(c, name, &p) < 0 || vm_def_check(d, c->run_dir) < 0 || vm_run_dir(c) < 0)
		return -1;
	if (access(c->qemu, X_OK) < 0)
		return err_sys(EXIT_USAGE, "QEMU binary %s (set qemu = in %s)", c->qemu,
			       c->path[0] ? c->path : "the config file");
	unlink(p.qmp); /* a stale socket would make QEMU fail to bind */
	launch_argv(c, &p, d, extra, incoming, qmp_arg, sizeof(qmp_arg), argv);
	if ((pid = spawn(argv, &err)) < 0)
		return -1;
	got = read_stderr(err, errbuf, sizeof(errbuf));
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		last_line(errbuf, got, line, sizeof(line));
		return err_set(EXIT_FAIL, "QEMU failed to start VM '%s': %s", name,
			       line[0] ? line : "no message (exit status)");
	}
	if (got)
		log_debug("QEMU said: %s", errbuf);
	/* QEMU's -daemonize sets umask 027 before it binds the socket: 0750
	 * already keeps others from connecting (that needs write); 0600 says so. */
	if (chmod(p.qmp, 0600) < 0)
		log_warn("QMP socket %s: chmod 0600: %s", p.qmp, strerror(errno));
	return record_def(&p, d);
}
