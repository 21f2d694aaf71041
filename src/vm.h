/* vm: VM definitions (QEMU options, one per line) and the QEMU processes
 * vmsnap runs for them: launch, pidfile, liveness, stop, run-time files. */
#ifndef VMSNAP_VM_H
#define VMSNAP_VM_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "conf.h"

#define VM_ARGS_MAX 512
/* How long a starting QEMU may take to greet on its QMP socket. */
#define VM_START_TIMEOUT_MS 60000

struct vm_def {
	char *text;   /* the definition as written (embedded in images) */
	size_t len;
	char *store;  /* argv strings point into this copy */
	char *argv[VM_ARGS_MAX];
	int line[VM_ARGS_MAX]; /* the line each argument came from */
	int argc;
	int code;          /* exit class of its refusals: EXIT_USAGE file, EXIT_REFUSED image */
	char origin[256];  /* where it came from, for messages */
};

/* Parse a definition; origin names it in errors ("vm1.vm", "image x").
 * Options vmsnap itself adds (-qmp, -daemonize, -incoming, ...) are refused
 * with `code` (EXIT_USAGE for files, EXIT_REFUSED for images). */
int vm_def_parse(struct vm_def *d, const char *text, size_t len, const char *origin, int code);
int vm_def_load(struct vm_def *d, const char *path);
/* Refuse (with the parse's code) an option value that names a file in
 * run_dir (other VMs' QMP sockets, pidfiles, definitions, locks) or any QMP
 * socket (*.qmp): a definition must not reach vmsnap's control plane.
 * vm_launch checks too; restore calls it right after parsing an image's. */
int vm_def_check(const struct vm_def *d, const char *run_dir);
void vm_def_free(struct vm_def *d);
/* Refuse (with the parse's code) an option whose name (no '-') is not in
 * list, the config key named key ("a b,c"): for unsigned images. */
int vm_def_allowed(const struct vm_def *d, const char *list, const char *key);

/* Run-time files of VM name under run_dir. */
struct vm_paths {
	char qmp[108]; /* fits sockaddr_un */
	char pid[4096];
	char def[4096];  /* the definition it was launched with */
	char lock[4096];
};
int vm_paths(const struct conf *c, const char *name, struct vm_paths *p);

/* Take the per-VM lock (run_dir/NAME.lock): fails "busy" if another
 * vmsnap works on the VM. Returns the lock fd (close to release). */
int vm_lock(const struct conf *c, const char *name);

/* pid of the running QEMU of name, 0 if none (stale pidfile ignored). */
pid_t vm_pid(const struct conf *c, const char *name);

/* Cold-start VM name from <vm_dir>/NAME.vm (what `vmsnap run` does), under
 * its lock; refuses if it already runs. */
int vm_start(const struct conf *c, const char *name);
/* Start QEMU for name with d (daemonized, QMP socket, pidfile) plus extra
 * arguments (NULL-terminated, may be NULL); incoming: paused and waiting for
 * migrate-incoming. QEMU's own error is reported. */
int vm_launch(const struct conf *c, const char *name, const struct vm_def *d,
	      const char *const *extra, bool incoming);
/* Wait up to timeout_ms for pid to exit: 0 gone, -1 still there. */
int vm_wait_gone(pid_t pid, int timeout_ms);
/* Kill QEMU hard and remove the run-time files (for failed restores). */
void vm_kill(const struct conf *c, const char *name, pid_t pid);
/* Remove pidfile, socket and saved definition after QEMU exited. */
void vm_cleanup(const struct conf *c, const char *name);

#endif
