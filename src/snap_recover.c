/* snap_recover: what a save that died half-way (kill -9, OOM, a crash of
 * vmsnap alone) leaves behind, and how the next save of that VM undoes it. */
#include "snap_save.h"
#include "err.h"
#include "log.h"
#include "mig.h"
#include "qmp.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

int snap_cont(struct qmp *q)
{
	/* A cancel takes effect asynchronously; cont is refused until then. */
	for (int i = 0; i < 100; i++) {
		if (qmp_call(q, "cont", NULL, NULL, 0, NULL) == 0)
			return 0;
		usleep(50000);
	}
	return -1;
}

static int mark_path(const struct conf *c, const char *name, char *path, size_t size)
{
	return str_fmt(path, size, "%s/%s.save-stopped", c->run_dir, name);
}

/* <run_dir>/NAME.save-stopped holds the pid of the QEMU whose running VM a
 * save stopped, until that save resumes it or QEMU exits. Best effort:
 * without it a dead save's VM just stays paused until someone resumes it. */
void snap_stop_mark(const struct conf *c, const char *name, pid_t qemu)
{
	char path[CONF_PATH_MAX + 80], pid[16];
	int fd;

	if (mark_path(c, name, path, sizeof(path)) < 0)
		return;
	if (!qemu) {
		unlink(path);
		return;
	}
	snprintf(pid, sizeof(pid), "%d\n", (int)qemu);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write_all(fd, pid, strlen(pid)) < 0)
		log_warn("%s: %s", path, strerror(errno));
	if (fd >= 0)
		close(fd);
}

/* The QEMU pid a save's mark names, 0 if none. */
static pid_t stop_marked(const struct conf *c, const char *name)
{
	char path[CONF_PATH_MAX + 80], *text;
	unsigned long pid = 0;

	if (mark_path(c, name, path, sizeof(path)) < 0 || access(path, F_OK) < 0)
		return 0;
	if (read_file(path, 64, &text, NULL) == 0) {
		text[strcspn(text, "\n")] = 0;
		if (parse_uint(text, 1, 4194304, &pid) < 0)
			pid = 0;
		free(text);
	}
	err_clear();
	return (pid_t)pid;
}

int snap_recover(const struct conf *c, const char *name, struct qmp *q, pid_t qemu)
{
	cJSON *r;
	bool running;
	int left = mig_reset(q);

	if (left < 0)
		return -1;
	if (left)
		log_warn("VM '%s': cleared what a save that did not finish left in QEMU (its migration, its image fds)",
			 name);
	/* The mark tells a VM that a dead save paused from one its owner paused
	 * (which stays paused); a mark naming another QEMU is an earlier run's. */
	if (stop_marked(c, name) != qemu) {
		snap_stop_mark(c, name, 0);
		return 0;
	}
	if (qmp_call(q, "query-status", NULL, NULL, 0, &r) < 0)
		return -1;
	running = qmp_bool(r, "running", 0);
	cJSON_Delete(r);
	if (!running) {
		log_warn("VM '%s' was left paused by a save that did not finish: resuming it first", name);
		if (snap_cont(q) < 0)
			return err_wrap("VM '%s' was left paused by a save that did not finish and does not resume",
					name);
	}
	snap_stop_mark(c, name, 0);
	return 0;
}

/* How a failed save left the VM. */
enum after { VM_UNTOUCHED, VM_RUNNING_AGAIN, VM_PAUSED, VM_GONE };

/* Put the VM back as it was after a failure. */
static enum after roll_back(struct save *s)
{
	cJSON *r;

	if (s->pipe[0] >= 0) {
		close(s->pipe[0]); /* unblocks QEMU if it is writing into the pipe */
		s->pipe[0] = -1;
	}
	/* QEMU itself died (killed, crashed): nothing to put back, and retrying
	 * cont would only wait. */
	if (qmp_call(&s->q, "query-status", NULL, NULL, 0, &r) < 0) {
		if (vm_wait_gone(s->pid, 2000) == 0) {
			snap_stop_mark(s->c, s->name, 0);
			vm_cleanup(s->c, s->name);
			return VM_GONE;
		}
	} else {
		cJSON_Delete(r);
	}
	if (s->migrating)
		mig_cancel(&s->q);
	if (s->fdset >= 0)
		mig_remove_fdset(&s->q, s->fdset);
	if (!s->stopped)
		return VM_UNTOUCHED;
	if (snap_cont(&s->q) == 0) {
		snap_stop_mark(s->c, s->name, 0);
		return VM_RUNNING_AGAIN;
	}
	/* QEMU can die in the cancel itself (seen: QEMU 10.0.2, a multifd save
	 * cancelled mid-way): then it is gone, not paused. */
	if (vm_wait_gone(s->pid, 2000) == 0) {
		log_error("QEMU of VM '%s' (pid %d) exited while its save was cancelled",
			  s->name, (int)s->pid);
		snap_stop_mark(s->c, s->name, 0);
		vm_cleanup(s->c, s->name);
		return VM_GONE;
	}
	log_error("could not resume VM '%s': %s", s->name, err_msg());
	return VM_PAUSED;
}

/* When the target's file system filled up, say how full it is. */
static void explain_full(struct save *s, char *msg, size_t size)
{
	struct statvfs sv;
	char a[32], b[32];
	size_t n = strlen(msg);

	if (s->t.kind != STOR_REG || s->t.fd < 0 || fstatvfs(s->t.fd, &sv) < 0 ||
	    (uint64_t)sv.f_bavail * sv.f_frsize > (8u << 20) || strstr(msg, " free"))
		return;
	/* Truncation only shortens the explanation; the error itself is already there. */
	if (snprintf(msg + n, size - n, " (the file system of %s has %s free; the VM has %s of RAM)",
		     s->t.path, fmt_bytes((uint64_t)sv.f_bavail * sv.f_frsize, a, sizeof(a)),
		     fmt_bytes(s->h.ram_size, b, sizeof(b))) < 0)
		msg[n] = 0;
}

/* The save failed: the VM is put back as it was and the error says how it
 * was left (and, on a full file system, how full). */
void snap_save_fail(struct save *s)
{
	enum after after = VM_UNTOUCHED;
	char msg[600], gone[160];
	int code = err_code();

	str_copy(msg, sizeof(msg), err_msg());
	explain_full(s, msg, sizeof(msg));
	if (s->q.fd >= 0)
		after = roll_back(s);
	snprintf(gone, sizeof(gone), "; QEMU of VM '%s' is gone: start it again with vmsnap run %s",
		 s->name, s->name);
	err_set(code, "%s%s", msg,
		after == VM_GONE ? gone :
		after == VM_RUNNING_AGAIN ? "; the VM is running again" :
		after == VM_PAUSED ? "; the VM stays paused (a new save resumes it first)" : "");
}
