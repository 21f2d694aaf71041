/* vm: definitions, QEMU launch and process lifecycle (see vm.h). */
#include "vm.h"
#include "err.h"
#include "fsafe.h"
#include "log.h"
#include "instant.h"
#include "qemu_run.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* Options vmsnap adds itself, or that would let a definition take over the
 * host side (another monitor, a config file, detaching, chroot, the
 * sandbox and user QEMU runs with: vmsnap's policy, not the definition's). */
static const char *const forbidden[] = {
	"qmp", "qmp-pretty", "monitor", "mon", "pidfile", "daemonize", "S", "incoming",
	"loadvm", "readconfig", "chroot", "runas", "run-with", "nographic", "sandbox",
};

static bool is_forbidden(const char *opt)
{
	const char *o = opt + (opt[1] == '-' ? 2 : 1); /* QEMU takes -x and --x alike */

	for (size_t i = 0; i < ARRAY_SIZE(forbidden); i++)
		if (!strcmp(o, forbidden[i]))
			return true;
	return false;
}

/* A value that starts with '-' is read by QEMU as the next option when the
 * option before it takes none ("-nodefaults -readconfig"): refused, except
 * for the kernel command line, which is free text. */
static bool value_is_option(const char *opt, const char *val)
{
	const char *o = opt + (opt[1] == '-' ? 2 : 1);

	return val[0] == '-' && strcmp(o, "append") != 0;
}

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t' || *s == '\r')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
		*--e = 0;
	return s;
}

int vm_def_parse(struct vm_def *d, const char *text, size_t len, const char *origin, int code)
{
	char *p, *next;
	int line = 0;

	memset(d, 0, sizeof(*d));
	d->code = code;
	str_trunc(d->origin, sizeof(d->origin), origin);
	if (memchr(text, 0, len))
		return err_set(code, "%s: the definition contains a NUL byte", origin);
	d->text = malloc(len + 1);
	d->store = malloc(len + 1);
	if (!d->text || !d->store) {
		vm_def_free(d);
		return err_sys(EXIT_FAIL, "%s", origin);
	}
	memcpy(d->text, text, len);
	d->text[len] = 0;
	d->len = len;
	memcpy(d->store, text, len);
	d->store[len] = 0;
	for (p = d->store; p; p = next) {
		char *opt, *val;

		line++;
		next = strchr(p, '\n');
		if (next)
			*next++ = 0;
		opt = trim(p);
		if (!*opt || *opt == '#')
			continue;
		if (opt[0] != '-' || !opt[1]) {
			err_set(code, "%s:%d: '%s': each line is one QEMU option starting with '-'",
				origin, line, opt);
			vm_def_free(d); /* opt points into it: report first */
			return -1;
		}
		val = opt + strcspn(opt, " \t");
		if (*val) {
			*val++ = 0;
			val = trim(val);
		}
		if (is_forbidden(opt)) {
			err_set(code, "%s:%d: option %s is not allowed: vmsnap manages it", origin, line,
				opt);
			vm_def_free(d);
			return -1;
		}
		if (value_is_option(opt, val)) {
			err_set(code, "%s:%d: option %s: value '%.100s' starts with '-': QEMU could read it as an option",
				origin, line, opt, val);
			vm_def_free(d);
			return -1;
		}
		if (d->argc + 2 > VM_ARGS_MAX) {
			vm_def_free(d);
			return err_set(code, "%s:%d: more than %d arguments", origin, line, VM_ARGS_MAX);
		}
		d->line[d->argc] = line;
		d->argv[d->argc++] = opt;
		if (*val) {
			d->line[d->argc] = line;
			d->argv[d->argc++] = val;
		}
	}
	if (!d->argc) {
		vm_def_free(d);
		return err_set(code, "%s: the definition has no QEMU options", origin);
	}
	return 0;
}

int vm_def_load(struct vm_def *d, const char *path)
{
	char *text;
	size_t len;
	int rc;

	if (read_file(path, 64 << 10, &text, &len) < 0)
		return -1;
	rc = vm_def_parse(d, text, len, path, EXIT_USAGE);
	free(text);
	return rc;
}

void vm_def_free(struct vm_def *d)
{
	free(d->text);
	free(d->store);
	memset(d, 0, sizeof(*d));
}

static int ensure_run_dir(const struct conf *c)
{
	char path[CONF_PATH_MAX];

	str_copy(path, sizeof(path), c->run_dir);
	for (char *s = path + 1;; s++) {
		if (*s == '/' || !*s) {
			char saved = *s;
			*s = 0;
			if (mkdir(path, 0700) < 0 && errno != EEXIST)
				return err_sys(EXIT_FAIL, "creating run_dir %s", path);
			*s = saved;
			if (!saved)
				break;
		}
	}
	/* One that already existed is used only if no one else can put files in it. */
	return fsafe_private_dir(c->run_dir, "run_dir");
}

int vm_paths(const struct conf *c, const char *name, struct vm_paths *p)
{
	if (!conf_name_ok(name))
		return err_set(EXIT_USAGE,
			       "VM name '%s': use letters, digits, '_', '-', '.' (not first), at most 63; 'watch' is reserved",
			       name);
	if (str_fmt(p->qmp, sizeof(p->qmp), "%s/%s.qmp", c->run_dir, name) < 0)
		return err_set(EXIT_USAGE, "run_dir %s: too long for a unix socket path (107 bytes)",
			       c->run_dir);
	if (str_fmt(p->pid, sizeof(p->pid), "%s/%s.pid", c->run_dir, name) < 0 ||
	    str_fmt(p->def, sizeof(p->def), "%s/%s.vm", c->run_dir, name) < 0 ||
	    str_fmt(p->lock, sizeof(p->lock), "%s/%s.lock", c->run_dir, name) < 0)
		return err_set(EXIT_USAGE, "run_dir %s: too long", c->run_dir);
	return 0;
}

int vm_lock(const struct conf *c, const char *name)
{
	struct vm_paths p;
	int fd;

	if (vm_paths(c, name, &p) < 0 || ensure_run_dir(c) < 0)
		return -1;
	fd = open(p.lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return err_sys(EXIT_FAIL, "lock %s", p.lock);
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int busy = errno == EWOULDBLOCK;
		close(fd);
		if (busy)
			return err_set(EXIT_FAIL,
				       "VM '%s' is busy: another vmsnap command is saving, restoring, starting or stopping it",
				       name);
		return err_sys(EXIT_FAIL, "lock %s", p.lock);
	}
	return fd;
}

/* A pid from the pidfile counts only if that process is the QEMU we started
 * with that pidfile: pids get reused. */
static bool is_our_qemu(pid_t pid, const char *pidfile)
{
	char path[64], buf[8192];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = 0;
	for (ssize_t i = 0; i < n;) {
		const char *arg = buf + i;
		size_t l = strlen(arg);
		if (!strcmp(arg, "-pidfile") && i + (ssize_t)l + 1 < n)
			return !strcmp(arg + l + 1, pidfile);
		i += (ssize_t)l + 1;
	}
	return false;
}

pid_t vm_pid(const struct conf *c, const char *name)
{
	struct vm_paths p;
	char *text;
	unsigned long pid;

	if (vm_paths(c, name, &p) < 0)
		return 0;
	if (access(p.pid, F_OK) < 0 || read_file(p.pid, 64, &text, NULL) < 0) {
		err_clear();
		return 0;
	}
	text[strcspn(text, "\n")] = 0;
	if (parse_uint(text, 1, 4194304, &pid) < 0 || !is_our_qemu((pid_t)pid, p.pid))
		pid = 0;
	free(text);
	return (pid_t)pid;
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

int vm_launch(const struct conf *c, const char *name, const struct vm_def *d,
	      const char *const *extra, bool incoming)
{
	struct vm_paths p;
	struct qrun_confine cf;
	char qmp_arg[160];
	char *argv[VM_ARGS_MAX + 24], **env;
	int n = 0, rc;

	if (vm_paths(c, name, &p) < 0 || vm_def_check(d, c->run_dir) < 0 || ensure_run_dir(c) < 0)
		return -1;
	if (access(c->qemu, X_OK) < 0)
		return err_sys(EXIT_USAGE, "QEMU binary %s (set qemu = in %s)", c->qemu,
			       c->path[0] ? c->path : "the config file");
	snprintf(qmp_arg, sizeof(qmp_arg), "unix:%s,server=on,wait=off", p.qmp);
	unlink(p.qmp); /* a stale socket would make QEMU fail to bind */
	argv[n++] = (char *)c->qemu;
	for (int i = 0; i < d->argc; i++)
		argv[n++] = d->argv[i];
	for (int i = 0; extra && extra[i] && i < 8; i++)
		argv[n++] = (char *)extra[i];
	argv[n++] = "-qmp";
	argv[n++] = qmp_arg;
	argv[n++] = "-pidfile";
	argv[n++] = p.pid;
	n += qrun_confine_args(c, &cf, argv + n);
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
	/* The definition it runs with, for save to embed. */
	{
		char tmp[4200];
		int fd;
		snprintf(tmp, sizeof(tmp), "%s.tmp", p.def);
		fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd < 0 || write_all(fd, d->text, d->len) < 0 || close(fd) < 0 || rename(tmp, p.def) < 0)
			return err_sys(EXIT_FAIL, "writing %s", p.def);
	}
	return 0;
}

int vm_wait_gone(pid_t pid, int timeout_ms)
{
	uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
	int pfd = (int)syscall(SYS_pidfd_open, pid, 0);

	if (pfd >= 0) {
		struct pollfd p = { .fd = pfd, .events = POLLIN };
		int rc;
		do
			rc = poll(&p, 1, timeout_ms);
		while (rc < 0 && errno == EINTR);
		close(pfd);
		return rc > 0 ? 0 : -1;
	}
	if (errno == ESRCH)
		return 0;
	while (kill(pid, 0) == 0) {
		if (now_ms() >= deadline)
			return -1;
		usleep(5000);
	}
	return 0;
}

void vm_cleanup(const struct conf *c, const char *name)
{
	struct vm_paths p;

	if (vm_paths(c, name, &p) < 0)
		return;
	unlink(p.qmp);
	unlink(p.pid);
	unlink(p.def);
}

void vm_kill(const struct conf *c, const char *name, pid_t pid)
{
	if (pid > 0) {
		kill(pid, SIGKILL);
		vm_wait_gone(pid, 5000);
	}
	vm_cleanup(c, name);
}

/* A cold start; in instant mode with a fresh RAM file. */
static int launch_cold(const struct conf *c, const char *name, const struct vm_def *d,
		       const char *origin)
{
	struct conf_vm vm;
	struct inst_args a;
	char ram[CONF_PATH_MAX + 8];
	uint64_t size;

	conf_vm_get(c, name, &vm);
	if (!vm.instant)
		return vm_launch(c, name, d, NULL, false);
	if (inst_ram_size(d, origin, &size) < 0 || inst_ram_path(c, name, ram, sizeof(ram)) < 0 ||
	    inst_fresh(ram, size) < 0)
		return -1;
	if (inst_args(&a, ram, size, false) < 0)
		return -1;
	return vm_launch(c, name, d, a.argv, false);
}

int vm_start(const struct conf *c, const char *name)
{
	struct vm_paths p;
	struct vm_def d;
	char path[4096];
	int lock, rc = -1;

	if (vm_paths(c, name, &p) < 0)
		return -1;
	if (str_fmt(path, sizeof(path), "%s/%s.vm", c->vm_dir, name) < 0)
		return err_set(EXIT_USAGE, "vm_dir %s: too long", c->vm_dir);
	if (access(path, F_OK) < 0)
		return err_sys(EXIT_USAGE, "no VM '%s': %s", name, path);
	if (vm_def_load(&d, path) < 0)
		return -1;
	lock = vm_lock(c, name);
	if (lock >= 0) {
		if (vm_pid(c, name))
			err_set(EXIT_FAIL, "VM '%s' is already running", name);
		else
			rc = launch_cold(c, name, &d, path);
		close(lock);
	}
	vm_def_free(&d);
	return rc;
}
