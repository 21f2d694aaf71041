/* vm: the QEMU processes vmsnap runs: run-time files, locks, liveness, stop,
 * state (see vm.h). Starting QEMU is vm_launch.c's, definitions vm_def.c's. */
#include "vm.h"
#include "err.h"
#include "fsafe.h"
#include "qmp.h"
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
#include <unistd.h>


int vm_run_dir(const struct conf *c)
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
	if (str_fmt(p->qga, sizeof(p->qga), "%s/%s.qga", c->run_dir, name) < 0 ||
	    str_fmt(p->pid, sizeof(p->pid), "%s/%s.pid", c->run_dir, name) < 0 ||
	    str_fmt(p->def, sizeof(p->def), "%s/%s.vm", c->run_dir, name) < 0 ||
	    str_fmt(p->lock, sizeof(p->lock), "%s/%s.lock", c->run_dir, name) < 0)
		return err_set(EXIT_USAGE, "run_dir %s: too long", c->run_dir);
	return 0;
}

int vm_lock(const struct conf *c, const char *name)
{
	struct vm_paths p;
	int fd;

	if (vm_paths(c, name, &p) < 0 || vm_run_dir(c) < 0)
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
	enum { CMDLINE_MAX = 8192 };
	char path[64], *buf;
	bool ours = false;
	ssize_t n = -1;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	buf = malloc(CMDLINE_MAX);
	if (buf)
		n = read(fd, buf, CMDLINE_MAX - 1);
	close(fd);
	if (n <= 0) {
		free(buf);
		return false;
	}
	buf[n] = 0;
	for (ssize_t i = 0; i < n;) {
		const char *arg = buf + i;
		size_t l = strlen(arg);
		if (!strcmp(arg, "-pidfile") && i + (ssize_t)l + 1 < n) {
			ours = !strcmp(arg + l + 1, pidfile);
			break;
		}
		i += (ssize_t)l + 1;
	}
	free(buf);
	return ours;
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
	unlink(p.qga);
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

void vm_state(const struct conf *c, const char *name, int reply_ms, char *out, size_t size)
{
	struct vm_paths p;
	struct qmp q;
	cJSON *r;

	str_copy(out, size, "busy");
	if (vm_paths(c, name, &p) < 0 || qmp_connect(&q, p.qmp, 500) < 0) {
		err_clear();
		return;
	}
	q.timeout_ms = reply_ms;
	if (qmp_call(&q, "query-status", NULL, NULL, 0, &r) == 0) {
		const char *s = qmp_str(r, "status");
		str_copy(out, size, s ? s : "unknown");
		cJSON_Delete(r);
	}
	qmp_close(&q);
	err_clear();
}
