/* fleet: parallel per-VM jobs in child processes (see fleet.h). A process
 * each keeps one VM's failure (or crash) from touching the others. */
#include "fleet.h"
#include "err.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* The running jobs, for fleet_signal: a pid is recorded with every signal
 * blocked, so a handler never misses a job that was just forked. */
static volatile pid_t live[CONF_MAX_VMS];
static volatile pid_t owner;

void fleet_signal(int sig)
{
	if (owner != getpid())
		return; /* a job inherited the handler: the jobs are not its own */
	for (unsigned i = 0; i < CONF_MAX_VMS; i++)
		if (live[i] > 0)
			kill(live[i], sig);
}

static void child(const struct conf *c, const char *name, fleet_job job, void *arg, int out)
{
	char msg[400] = "";
	sigset_t none;
	int rc;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL); /* the parent may block signals it waits for */
	err_clear();
	rc = job(c, name, msg, sizeof(msg), arg);
	if (rc < 0)
		str_trunc(msg, sizeof(msg), err_msg());
	write_all(out, msg, strlen(msg));
	_exit(rc < 0 ? err_code() : EXIT_OK);
}

static int index_of(const pid_t *pid, unsigned n, pid_t p)
{
	for (unsigned i = 0; i < n; i++)
		if (pid[i] == p)
			return (int)i;
	return -1;
}

int fleet_run(const struct conf *c, const char (*names)[CONF_NAME_MAX], unsigned n, fleet_job job,
	      void *arg, struct fleet_result *res)
{
	pid_t pid[CONF_MAX_VMS];
	int pipes[CONF_MAX_VMS], failed = 0, running = 0;
	uint64_t t0 = now_ms();
	sigset_t all, old;

	owner = getpid();
	sigfillset(&all);
	for (unsigned i = 0; i < n; i++) {
		int p[2] = { -1, -1 };
		memset(&res[i], 0, sizeof(res[i]));
		res[i].name = names[i];
		pid[i] = -1;
		sigprocmask(SIG_BLOCK, &all, &old);
		if (pipe2(p, O_CLOEXEC) == 0 && (pid[i] = fork()) > 0)
			live[i] = pid[i];
		sigprocmask(SIG_SETMASK, &old, NULL);
		if (p[0] < 0 || pid[i] < 0) {
			int e = errno;
			if (pid[i] < 0 && p[0] >= 0) { /* the pipe was made, the fork failed */
				close(p[0]);
				close(p[1]);
			}
			res[i].code = EXIT_FAIL;
			snprintf(res[i].msg, sizeof(res[i].msg), "cannot start a job: %s", strerror(e));
			failed++;
			continue;
		}
		if (pid[i] == 0) {
			close(p[0]);
			child(c, names[i], job, arg, p[1]);
		}
		close(p[1]);
		pipes[i] = p[0];
		running++;
	}
	/* Reap in the order they finish, so each job's time is its own. */
	while (running > 0) {
		int status, i;
		ssize_t got;
		pid_t p = waitpid(-1, &status, 0);

		if (p < 0 && errno == EINTR)
			continue;
		if (p < 0)
			break;
		i = index_of(pid, n, p);
		if (i < 0)
			continue;
		live[i] = 0;
		running--;
		res[i].ms = now_ms() - t0;
		got = read(pipes[i], res[i].msg, sizeof(res[i].msg) - 1);
		res[i].msg[got > 0 ? got : 0] = 0;
		close(pipes[i]);
		if (WIFEXITED(status)) {
			res[i].code = WEXITSTATUS(status);
		} else {
			res[i].code = EXIT_FAIL;
			snprintf(res[i].msg, sizeof(res[i].msg), "job died with signal %d", WTERMSIG(status));
		}
		if (res[i].code)
			failed++;
	}
	return failed;
}
