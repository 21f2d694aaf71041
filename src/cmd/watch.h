/* watch.h: the idle half of `vmsnap watch` (watch_wait.c), for watch.c. */
#ifndef VMSNAP_WATCH_H
#define VMSNAP_WATCH_H

#include "cmd.h"

/* One watch per host: <run_dir>/watch.pid, locked, with this process's pid
 * (for `kill -PWR` and `kill -USR2`). wait_ms: how long to wait for a watch
 * that holds it (one told to stop, ending); then -2 (err_* set), and the
 * caller goes on without it. The lock's fd, or -1. */
int watch_claim(const struct conf *c, unsigned wait_ms);
void watch_unlink_pidfile(const struct conf *c);
/* An inotify fd on the directory of powerfail_trigger; -1 without a
 * trigger, -2 on error (err_* set). */
int watch_trigger(const struct conf *c);
/* Until a power failure (SIGPWR or SIGUSR1 read from sfd, or the trigger
 * in ifd): 1; another signal on sfd: 0 (stop without saving); -1 error.
 * SIGUSR2 (power returned) while nothing is saved is logged and ignored. */
int watch_wait(const struct conf *c, int sfd, int ifd);

#endif
