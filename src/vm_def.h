/* vm_def: a VM definition (QEMU options, one per line) parsed into an argv,
 * and the checks that keep it off vmsnap's control plane (vm_check.c). */
#ifndef VMSNAP_VM_DEF_H
#define VMSNAP_VM_DEF_H

#include <stdbool.h>
#include <stddef.h>

#define VM_ARGS_MAX 512

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

/* The guest agent's port (vm_devices.c): a definition with
 *   -device virtserialport,chardev=vmsnap-qga,name=org.qemu.guest_agent.0
 * gets the character device behind it from vmsnap (a socket in run_dir,
 * vm_paths' qga), which sets the guest's clock through it after a restore. */
#define VM_AGENT_CHARDEV "vmsnap-qga"
bool vm_def_has_agent(const struct vm_def *d);
/* Refuse (with the parse's code) a -chardev with that id, or another
 * device on it: vm_def_check calls it. */
int vm_def_check_agent(const struct vm_def *d);
/* The VM generation ID: with a -device vmgenid, the guid QEMU gets into
 * guid (size >= 37): a new random one when fresh (a golden image's every
 * restore) or when the definition has none or guid=auto (written into d,
 * so that the definition recorded for save holds it and a resume-once
 * restore keeps it); else the definition's. 1 done, 0 no vmgenid, -1 error. */
int vm_def_genid(struct vm_def *d, bool fresh, char *guid, size_t size);
bool vm_def_has_genid(const struct vm_def *d);
/* A warning naming what (a golden image) if the definition text has no
 * vmgenid: its restores would all continue from one RNG state. */
void vm_def_genid_warn(const char *text, size_t len, const char *what);
/* Refuse (with the parse's code) an option whose name (no '-') is not in
 * list, the config key named key ("a b,c"): for unsigned images. */
int vm_def_allowed(const struct vm_def *d, const char *list, const char *key);

#endif
