/* watch_wait: the idle half of `vmsnap watch` (see watch.h): the pidfile,
 * and waiting for SIGPWR, SIGUSR1 or the trigger file, with a periodic
 * writeback of instant-mode VMs' RAM files in between. */
#include "watch.h"
#include "err.h"
#include "fsafe.h"
#include "instant.h"
#include "log.h"
#include "util.h"
#include "vm.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* One watch per host: a pidfile for `kill -PWR` and `kill -USR2`, a lock so
 * two cannot race. wait_ms: how long to wait for a watch that holds it (one
 * told to stop, ending); then -2, and the caller goes on without it. */
/* The pidfile at path, open and locked, or -1 (with *busy when another
 * watch holds the lock). A watch that ends unlinks its pidfile before it lets
 * go of the lock: a lock won on a file no longer at path is no claim. */
static int lock_pidfile(const char *path, bool *busy)
{
	struct stat a, b;
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);

	*busy = false;
	if (fd < 0)
		return err_sys(EXIT_FAIL, "%s", path);
	if (flock(fd, LOCK_EX | LOCK_NB) < 0 || fstat(fd, &a) < 0 || stat(path, &b) < 0 ||
	    a.st_ino != b.st_ino || a.st_dev != b.st_dev) {
		close(fd);
		*busy = true;
		return -1;
	}
	return fd;
}

int watch_claim(const struct conf *c, unsigned wait_ms)
{
	char path[CONF_PATH_MAX + 16], pid[16];
	uint64_t until = now_ms() + wait_ms;
	bool busy;
	int fd;

	mkdir(c->run_dir, 0700);
	if (fsafe_private_dir(c->run_dir, "run_dir") < 0)
		return -1;
	snprintf(path, sizeof(path), "%s/watch.pid", c->run_dir);
	while ((fd = lock_pidfile(path, &busy)) < 0) {
		if (!busy)
			return -1;
		if (now_ms() >= until) {
			err_set(EXIT_FAIL, "another vmsnap watch is running (%s is locked)", path);
			return wait_ms ? -2 : -1;
		}
		usleep(20000);
	}
	snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
	if (ftruncate(fd, 0) < 0 || write_all(fd, pid, strlen(pid)) < 0) {
		close(fd);
		return err_sys(EXIT_FAIL, "%s", path);
	}
	return fd;
}

void watch_unlink_pidfile(const struct conf *c)
{
	char path[CONF_PATH_MAX + 16];

	snprintf(path, sizeof(path), "%s/watch.pid", c->run_dir);
	unlink(path);
}

/* Watch the trigger file's directory; -1 without a trigger. */
int watch_trigger(const struct conf *c)
{
	char dir[CONF_PATH_MAX];
	int fd;

	if (!c->powerfail_trigger[0])
		return -1;
	if (access(c->powerfail_trigger, F_OK) == 0)
		log_warn("%s exists already: waiting for it to be created anew", c->powerfail_trigger);
	path_dir(dir, sizeof(dir), c->powerfail_trigger); /* fits: the conf holds it */
	fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	if (fd < 0 || inotify_add_watch(fd, dir, IN_CREATE | IN_MOVED_TO | IN_CLOSE_WRITE) < 0) {
		err_sys(EXIT_USAGE, "watching powerfail_trigger %s", c->powerfail_trigger);
		if (fd >= 0)
			close(fd);
		return -2;
	}
	return fd;
}

/* True when an inotify batch names the trigger file. */
static bool trigger_seen(int fd, const char *trigger)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	const char *base = strrchr(trigger, '/') + 1;
	bool seen = false;
	ssize_t n;

	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + n;) {
			struct inotify_event *e = (struct inotify_event *)p;
			if (e->len && !strcmp(e->name, base))
				seen = true;
			p += sizeof(*e) + e->len;
		}
	}
	return seen;
}

/* Instant-mode VMs: start writeback of their RAM files every few seconds, so
 * that at power fail little is left for the save's sync. Asynchronous: the
 * kernel writes, nothing waits. */
#define FLUSH_MS 5000
static bool any_instant(const struct conf *c)
{
	struct conf_vm vm;

	for (unsigned i = 0; i < c->n_vms; i++) {
		conf_vm_get(c, c->vms[i], &vm);
		if (vm.instant)
			return true;
	}
	return false;
}

static void flush_instant(const struct conf *c)
{
	static pid_t flusher;
	struct conf_vm vm;

	if (flusher > 0 && waitpid(flusher, NULL, WNOHANG) == 0)
		return; /* the last one is still at it */
	/* In a child: submitting gigabytes of writeback can block, and the
	 * daemon must stay free to react to a power failure at once. */
	flusher = fork();
	if (flusher != 0)
		return;
	for (unsigned i = 0; i < c->n_vms; i++) {
		char ram[CONF_PATH_MAX + 8];

		conf_vm_get(c, c->vms[i], &vm);
		if (vm.instant && vm_pid(c, vm.name) && inst_ram_path(c, vm.name, ram, sizeof(ram)) == 0)
			inst_writeback(ram);
	}
	_exit(0);
}

int watch_wait(const struct conf *c, int sfd, int ifd)
{
	/* Without instant VMs there is nothing to do between power failures:
	 * no timer, the daemon sleeps until a signal or the trigger. */
	int tick = any_instant(c) ? FLUSH_MS : -1;

	log_info("watching for power failure (SIGPWR, SIGUSR1%s%s), VMs: %u", ifd >= 0 ? ", " : "",
		 ifd >= 0 ? c->powerfail_trigger : "", c->n_vms);
	for (;;) {
		struct pollfd p[2] = { { .fd = sfd, .events = POLLIN }, { .fd = ifd, .events = POLLIN } };
		struct signalfd_siginfo si;

		int n = poll(p, ifd >= 0 ? 2 : 1, tick);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return err_sys(EXIT_FAIL, "poll");
		if (n == 0) {
			flush_instant(c);
			continue;
		}
		if (ifd >= 0 && p[1].revents && trigger_seen(ifd, c->powerfail_trigger)) {
			log_info("power fail: %s appeared", c->powerfail_trigger);
			return 1;
		}
		if (p[0].revents && read(sfd, &si, sizeof(si)) == sizeof(si)) {
			if (si.ssi_signo == SIGUSR2) {
				log_info("power returned (SIGUSR2): no save in progress, nothing to cancel");
				continue;
			}
			if (si.ssi_signo == SIGPWR || si.ssi_signo == SIGUSR1) {
				log_info("power fail: signal %s", si.ssi_signo == SIGPWR ? "SIGPWR" : "SIGUSR1");
				return 1;
			}
			log_info("stopping on signal %d without saving", (int)si.ssi_signo);
			return 0;
		}
	}
}
