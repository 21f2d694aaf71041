/* watch: the power-fail daemon. Waits for SIGPWR, SIGUSR1 or the trigger file
 * (powerfail_trigger), then saves every VM in `vms` at once with the fastest
 * settings, reports each time against powerfail_deadline_ms, and exits: 0
 * only when every running VM's image is complete and durable. --now saves at
 * once (for inittab powerwait entries, UPS notify commands, shutdown). */
#include "cmd.h"
#include "err.h"
#include "fleet.h"
#include "fsafe.h"
#include "instant.h"
#include "log.h"
#include "snap.h"
#include "storage.h"
#include "util.h"
#include "verify.h"
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

/* v3 with a channel per CPU and O_DIRECT (falling back quietly where the file
 * system refuses it); v2 where the image is a block device. */
static int save_job(const struct conf *c, const char *name, char *msg, size_t size, void *arg)
{
	struct save_opts o = { .version = 3, .bypass_cache = IS_ENABLED(CONFIG_DIRECT_IO),
			       .sign_key = c->sign_key[0] ? c->sign_key : NULL };
	struct save_result r;
	struct conf_vm vm;
	struct stat st;

	(void)arg;
	conf_vm_get(c, name, &vm);
	if (!vm_pid(c, name)) {
		snprintf(msg, size, "not running: nothing to save");
		return 0;
	}
	if (vfy_golden(vm.image)) { /* a golden image (kiosk, factory) stays */
		snprintf(msg, size, "its image %s is golden: not overwritten", vm.image);
		return 0;
	}
	if (stat(vm.image, &st) == 0 && S_ISBLK(st.st_mode))
		o.version = 2;
	if (snap_save(c, name, vm.image, &o, &r) < 0)
		return -1;
	snprintf(msg, size,
		 "saved to %s: v%d, %llu MiB in %llu ms (stream %llu, RAM sync %llu, sync %llu, digest %llu)",
		 vm.image, r.version, (unsigned long long)(r.image_size >> 20),
		 (unsigned long long)r.t.total, (unsigned long long)r.t.migrate,
		 (unsigned long long)r.t.ram_sync, (unsigned long long)r.t.sync,
		 (unsigned long long)r.t.digest);
	return 0;
}

static int save_all(const struct conf *c)
{
	struct fleet_result res[CONF_MAX_VMS];
	uint64_t t0 = now_ms();
	int failed;

	if (!c->n_vms) {
		log_warn("power fail: no VMs listed in vms = ...; nothing to save");
		return EXIT_OK;
	}
	log_info("power fail: saving %u VM(s), deadline %u ms", c->n_vms, c->powerfail_deadline_ms);
	failed = fleet_run(c, (const char (*)[CONF_NAME_MAX])c->vms, c->n_vms, save_job, NULL, res);
	for (unsigned i = 0; i < c->n_vms; i++) {
		const struct fleet_result *r = &res[i];
		if (r->code)
			log_error("%s: save FAILED after %llu ms: %s", r->name, (unsigned long long)r->ms, r->msg);
		else
			log_info("%s: %s; %llu ms of the %u ms deadline%s", r->name, r->msg,
				 (unsigned long long)r->ms, c->powerfail_deadline_ms,
				 r->ms > c->powerfail_deadline_ms ? " (OVER the deadline)" : "");
	}
	log_info("power fail: %s in %llu ms", failed ? "NOT every image is complete" : "every image is complete and durable",
		 (unsigned long long)(now_ms() - t0));
	return failed ? EXIT_FAIL : EXIT_OK;
}

/* One watch per host: a pidfile for `kill -PWR`, a lock so two cannot race. */
static int claim(const struct conf *c)
{
	char path[CONF_PATH_MAX + 16], pid[16];
	int fd;

	mkdir(c->run_dir, 0700);
	if (fsafe_private_dir(c->run_dir, "run_dir") < 0)
		return -1;
	snprintf(path, sizeof(path), "%s/watch.pid", c->run_dir);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return err_sys(EXIT_FAIL, "%s", path);
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		close(fd);
		return err_set(EXIT_FAIL, "another vmsnap watch is running (%s is locked)", path);
	}
	snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
	if (ftruncate(fd, 0) < 0 || write_all(fd, pid, strlen(pid)) < 0) {
		close(fd);
		return err_sys(EXIT_FAIL, "%s", path);
	}
	return fd;
}

static void unlink_pidfile(const struct conf *c)
{
	char path[CONF_PATH_MAX + 16];

	snprintf(path, sizeof(path), "%s/watch.pid", c->run_dir);
	unlink(path);
}

/* Watch the trigger file's directory; -1 without a trigger. */
static int watch_trigger(const struct conf *c)
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

static int wait_for_power_fail(const struct conf *c, int sfd, int ifd)
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
			if (si.ssi_signo == SIGPWR || si.ssi_signo == SIGUSR1) {
				log_info("power fail: signal %s", si.ssi_signo == SIGPWR ? "SIGPWR" : "SIGUSR1");
				return 1;
			}
			log_info("stopping on signal %d without saving", (int)si.ssi_signo);
			return 0;
		}
	}
}

const char cmd_watch_usage[] = "watch [--now]";

int cmd_watch(struct conf *c, int argc, char **argv)
{
	static const struct option opts[] = { { "now", no_argument, 0, 'n' }, { 0 } };
	bool now = false;
	int opt, lock, sfd, ifd = -1, rc;
	sigset_t set;

	optind = 1;
	while ((opt = cmd_getopt(argc, argv, "", opts)) != -1) {
		if (opt != 'n')
			return cmd_usage(cmd_watch_usage);
		now = true;
	}
	if (argc != optind)
		return cmd_usage(cmd_watch_usage);
	log_to_syslog(true);
	if (now)
		return save_all(c);
	if ((lock = claim(c)) < 0)
		return cmd_fail("watch");
	/* Signals arrive through a file descriptor: a second SIGPWR during the
	 * save just waits there unread, and the daemon exits after saving. */
	sigemptyset(&set);
	sigaddset(&set, SIGPWR);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, NULL);
	sfd = signalfd(-1, &set, SFD_CLOEXEC);
	if (sfd < 0 || (ifd = watch_trigger(c)) == -2) {
		if (sfd < 0)
			err_sys(EXIT_FAIL, "signalfd");
		close(lock);
		return cmd_fail("watch");
	}
	rc = wait_for_power_fail(c, sfd, ifd);
	if (rc > 0) {
		struct signalfd_siginfo si;
		rc = save_all(c);
		fcntl(sfd, F_SETFL, O_NONBLOCK);
		while (read(sfd, &si, sizeof(si)) == sizeof(si))
			log_info("signal %d during the save: ignored (one save per power failure)", (int)si.ssi_signo);
	} else {
		rc = rc < 0 ? cmd_fail("watch") : EXIT_OK;
	}
	unlink_pidfile(c);
	close(lock);
	return rc;
}
