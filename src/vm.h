/* vm: the QEMU processes vmsnap runs for VM definitions (vm_def.h): launch,
 * pidfile, liveness, stop, run-time files, the per-VM lock. */
#ifndef VMSNAP_VM_H
#define VMSNAP_VM_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "conf.h"
#include "vm_def.h"

/* How long a starting QEMU may take to greet on its QMP socket. */
#define VM_START_TIMEOUT_MS 60000

/* Run-time files of VM name under run_dir: "<run_dir>/NAME.ext". */
#define VM_PATH_SIZE (CONF_PATH_MAX + CONF_NAME_MAX + 16)
struct vm_paths {
	char qmp[108]; /* fits sockaddr_un */
	char qga[108]; /* the guest agent's socket, when the definition has its port */
	char pid[VM_PATH_SIZE];
	char def[VM_PATH_SIZE];  /* the definition it was launched with */
	char lock[VM_PATH_SIZE];
};
int vm_paths(const struct conf *c, const char *name, struct vm_paths *p);

/* Create run_dir (and its parents), mode 0700. */
int vm_run_dir(const struct conf *c);

/* Take the per-VM lock (run_dir/NAME.lock): fails "busy" if another
 * vmsnap works on the VM. Returns the lock fd (close to release). */
int vm_lock(const struct conf *c, const char *name);

/* pid of the running QEMU of name, 0 if none (stale pidfile ignored). */
pid_t vm_pid(const struct conf *c, const char *name);

/* Start QEMU for name with d (daemonized, QMP socket, pidfile) plus extra
 * arguments (NULL-terminated, may be NULL); incoming: paused and waiting for
 * migrate-incoming. QEMU's own error is reported. */
int vm_launch(const struct conf *c, const char *name, const struct vm_def *d,
	      const char *const *extra, bool incoming);
/* What QEMU says running VM name does ("running", "paused", ...; replies
 * awaited reply_ms), into out: "busy" when another client holds its QMP
 * socket, "unknown" when QEMU names none. Never an error (errors cleared). */
void vm_state(const struct conf *c, const char *name, int reply_ms, char *out, size_t size);
/* Wait up to timeout_ms for pid to exit: 0 gone, -1 still there. */
int vm_wait_gone(pid_t pid, int timeout_ms);
/* Kill QEMU hard and remove the run-time files (for failed restores). */
void vm_kill(const struct conf *c, const char *name, pid_t pid);
/* Remove pidfile, socket and saved definition after QEMU exited. */
void vm_cleanup(const struct conf *c, const char *name);

#endif
