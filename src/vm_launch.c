/* vm_launch: start QEMU for a definition (see vm.h): its argv, the start
 * itself (qemu_run.c: confined, daemonized), the definition recorded for save. */
#include "vm.h"
#include "err.h"
#include "log.h"
#include "qemu_run.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

extern char **environ;

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
 * QMP socket, pidfile, confinement, whose text lives in *cf; incoming:
 * paused, waiting for the stream). */
static int launch_argv(const struct conf *c, const struct vm_paths *p, const struct vm_def *d,
		       const char *const *extra, bool incoming, char *qmp_arg, size_t qmp_size,
		       struct qrun_confine *cf, char **argv)
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
	n += qrun_confine_args(c, cf, argv + n);
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

/* QEMU did not come up: one that started but never greeted is killed. */
static int launch_failed(const struct conf *c, const char *name)
{
	char why[512];
	pid_t pid = vm_pid(c, name);

	str_copy(why, sizeof(why), err_msg());
	if (pid > 0)
		vm_kill(c, name, pid);
	return err_set(EXIT_FAIL, "QEMU failed to start VM '%s': %s", name, why);
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
	struct qrun_confine cf;
	char qmp_arg[160];
	char *argv[VM_ARGS_MAX + 24], **env;
	int rc;

	if (vm_paths(c, name, &p) < 0 || vm_def_check(d, c->run_dir) < 0 || vm_run_dir(c) < 0)
		return -1;
	if (access(c->qemu, X_OK) < 0)
		return err_sys(EXIT_USAGE, "QEMU binary %s (set qemu = in %s)", c->qemu,
			       c->path[0] ? c->path : "the config file");
	unlink(p.qmp); /* a stale socket would make QEMU fail to bind */
	launch_argv(c, &p, d, extra, incoming, qmp_arg, sizeof(qmp_arg), &cf, argv);
	if (!(env = qemu_env()))
		return err_sys(EXIT_FAIL, "environment for QEMU");
	rc = qrun_start(argv, env, p.qmp, VM_START_TIMEOUT_MS);
	free(env);
	if (rc < 0)
		return launch_failed(c, name);
	/* QEMU bound the socket under umask 077 (qemu_run.c): 0600 says so
	 * whatever QEMU does with its umask. */
	if (chmod(p.qmp, 0600) < 0)
		log_warn("QMP socket %s: chmod 0600: %s", p.qmp, strerror(errno));
	return record_def(&p, d);
}
