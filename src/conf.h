/* conf: /etc/vmsnap.conf (key = value, # comments, optional [vm NAME]
 * sections); defaults come from Kconfig, every error names file:line. */
#ifndef VMSNAP_CONF_H
#define VMSNAP_CONF_H

#include <stdbool.h>

#define CONF_PATH_MAX 256
#define CONF_NAME_MAX 64
#define CONF_MAX_VMS 16

/* Per-VM settings from a [vm NAME] section. */
struct conf_vm {
	char name[CONF_NAME_MAX];
	char image[CONF_PATH_MAX]; /* pending image; default <save_dir>/NAME.img */
	bool instant;              /* guest RAM in a file: saves and restores in milliseconds */
	bool no_time_sync;         /* guest_time_sync = no: restore leaves the guest's clock alone */
};

struct conf {
	char path[CONF_PATH_MAX]; /* the file read; "" when only defaults apply */
	int image_version;        /* 2 or 3 */
	char vm_dir[CONF_PATH_MAX];
	char run_dir[CONF_PATH_MAX];
	char save_dir[CONF_PATH_MAX];
	char qemu[CONF_PATH_MAX];
	unsigned channels; /* 0: one per usable CPU */
	bool bypass_cache;
	char sign_key[CONF_PATH_MAX];
	char trusted_keys[CONF_PATH_MAX];
	bool require_signature;
	bool verify_payload;
	bool qemu_sandbox;                /* QEMU's seccomp filter (-sandbox on,...) */
	bool qemu_spawn;                  /* ... lets QEMU run programs (tap scripts) */
	char qemu_user[CONF_NAME_MAX];    /* QEMU drops to this user; "" stays root */
	char unsigned_options[1024];      /* options an unsigned image's definition may use; "": any */
	unsigned powerfail_deadline_ms;
	char powerfail_trigger[CONF_PATH_MAX]; /* watch: a file whose appearance means power fail */
	char console_paths[CONF_PATH_MAX]; /* more places console commands may name */
	char vms[CONF_MAX_VMS][CONF_NAME_MAX]; /* watch/resume manage these */
	unsigned n_vms;
	struct conf_vm vm[CONF_MAX_VMS];
	unsigned n_vm;
};

void conf_defaults(struct conf *c);
/* Load path over the defaults. A missing file is an error only if required
 * (it was named by --config or $VMSNAP_CONF). */
int conf_load(struct conf *c, const char *path, bool required);
/* Per-VM settings for name, defaults filled in when it has no section. */
void conf_vm_get(const struct conf *c, const char *name, struct conf_vm *out);
/* VM names: letters, digits, '_', '-', '.', not starting with '.' or '-'
 * (they become file names under vm_dir and run_dir), and not "watch"
 * (run_dir/watch.pid is the power-fail daemon's). */
int conf_name_ok(const char *name);

#endif
