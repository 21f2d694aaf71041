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

/* The guest agent's socket, "socket,id=vmsnap-qga,path=...,server=on,wait=off"
 * (a ',' in the path doubled, as QEMU reads it). */
static void agent_chardev(const struct vm_paths *p, char *out, size_t size)
{
	size_t n = (size_t)snprintf(out, size, "socket,id=%s,path=", VM_AGENT_CHARDEV);

	for (const char *s = p->qga; *s && n + 2 < size; s++) {
		if (*s == ',')
			out[n++] = ',';
		out[n++] = *s;
	}
	snprintf(out + n, size - n, ",server=on,wait=off");
}

/* The text of the arguments vmsnap adds. */
struct launch_text {
	char qmp[160];
	char agent[300];
	struct qrun_confine cf;
};

/* QEMU's argv: the definition, extra, then what vmsnap manages itself (the
 * guest agent's socket, the QMP socket, pidfile, confinement, their text in
 * *lt; incoming: paused, waiting for the stream). */
static int launch_argv(const struct conf *c, const struct vm_paths *p, const struct vm_def *d,
		       const char *const *extra, bool incoming, struct launch_text *lt, char **argv)
{
	int n = 0;

	snprintf(lt->qmp, sizeof(lt->qmp), "unix:%s,server=on,wait=off", p->qmp);
	argv[n++] = (char *)c->qemu;
	for (int i = 0; i < d->argc; i++)
		argv[n++] = d->argv[i];
	for (int i = 0; extra && extra[i] && i < 8; i++)
		argv[n++] = (char *)extra[i];
	if (vm_def_has_agent(d)) {
		agent_chardev(p, lt->agent, sizeof(lt->agent));
		argv[n++] = "-chardev";
		argv[n++] = lt->agent;
	}
	argv[n++] = "-qmp";
	argv[n++] = lt->qmp;
	argv[n++] = "-pidfile";
	argv[n++] = (char *)p->pid;
	n += qrun_confine_args(c, &lt->cf, argv + n);
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
	struct launch_text lt;
	char *argv[VM_ARGS_MAX + 24], **env;
	int rc;

	if (vm_paths(c, name, &p) < 0 || vm_def_check(d, c->run_dir) < 0 || vm_run_dir(c) < 0)
		return -1;
	if (access(c->qemu, X_OK) < 0)
		return err_sys(EXIT_USAGE, "QEMU binary %s (set qemu = in %s)", c->qemu,
			       c->path[0] ? c->path : "the config file");
	unlink(p.qmp); /* a stale socket would make QEMU fail to bind */
	unlink(p.qga);
	launch_argv(c, &p, d, extra, incoming, &lt, argv);
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
	if (vm_def_has_agent(d) && chmod(p.qga, 0600) < 0)
		log_warn("guest agent socket %s: chmod 0600: %s", p.qga, strerror(errno));
	return record_def(&p, d);
}
