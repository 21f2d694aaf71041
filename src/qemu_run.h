/* qemu_run: how vmsnap starts QEMU. Confined: QEMU's seccomp sandbox and,
 * if configured, an unprivileged user; and daemonized by vmsnap itself, as
 * QEMU's own -daemonize needs fork and setsid, which the sandbox forbids. */
#ifndef VMSNAP_QEMU_RUN_H
#define VMSNAP_QEMU_RUN_H

#include <stddef.h>

#include "conf.h"

/* The confinement options c asks for ("-sandbox", "on,...", "-run-with",
 * "user=..."), into argv (room for 4) with their text in buf: how many. */
struct qrun_confine {
	char sandbox[160];
	char user[CONF_NAME_MAX + 8];
};
int qrun_confine_args(const struct conf *c, struct qrun_confine *buf, char **argv);

/* Start argv (argv[0] a path) with env as a daemon: its own session, a child
 * of init, stdin and stdout /dev/null, umask 077 (the fds it is to inherit
 * already without O_CLOEXEC). Returns 0 once QEMU greets on its QMP socket
 * qmp; -1 if it exits first (the error is QEMU's last line on stderr) or
 * does not greet within timeout_ms. */
int qrun_start(char **argv, char **env, const char *qmp, int timeout_ms);

#endif
