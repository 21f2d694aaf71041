/* fleet: run one job per VM in parallel, each in its own process, and
 * collect what each reported (for watch and resume: several VMs, one deadline). */
#ifndef VMSNAP_FLEET_H
#define VMSNAP_FLEET_H

#include <stddef.h>
#include <stdint.h>

#include "conf.h"

struct fleet_result {
	const char *name;
	int code;       /* the job's exit code: 0 ok, else an EXIT_* class */
	uint64_t ms;    /* wall time of the job */
	char msg[400];  /* its one-line outcome */
};

/* A job: do the work for VM name, write a one-line outcome into msg, return
 * 0 or -1 with err_* set (its message then becomes the outcome). */
typedef int (*fleet_job)(const struct conf *c, const char *name, char *msg, size_t size, void *arg);

/* Run job for each of the n names at once; res[i] belongs to names[i].
 * Returns the number of jobs that failed. */
int fleet_run(const struct conf *c, const char (*names)[CONF_NAME_MAX], unsigned n, fleet_job job,
	      void *arg, struct fleet_result *res);
/* Send sig to the jobs fleet_run is waiting for (async-signal-safe: for a
 * signal handler of the process that called fleet_run; elsewhere nothing). */
void fleet_signal(int sig);

#endif
