/* start: the cold start of a VM from its definition in vm_dir, with a fresh
 * RAM file in instant mode (what `vmsnap run` and boot-time resume do). */
#include "cmd.h"
#include "err.h"
#include "instant.h"
#include "util.h"
#include "vm.h"

#include <unistd.h>

/* A cold start; in instant mode with a fresh RAM file. A vmgenid without a
 * guid gets one here, recorded with the definition, so that a resume-once
 * restore gives the guest the same ID again. */
static int launch_cold(const struct conf *c, const char *name, struct vm_def *d,
		       const char *origin)
{
	struct conf_vm vm;
	struct inst_args a;
	char ram[CONF_PATH_MAX + 8], guid[40];
	uint64_t size;

	if (vm_def_genid(d, false, guid, sizeof(guid)) < 0)
		return -1;
	conf_vm_get(c, name, &vm);
	if (!vm.instant)
		return vm_launch(c, name, d, NULL, false);
	if (inst_ram_size(d, origin, &size) < 0 || inst_ram_path(c, name, ram, sizeof(ram)) < 0 ||
	    inst_fresh(ram, size) < 0)
		return -1;
	if (inst_args(&a, ram, size, false) < 0)
		return -1;
	return vm_launch(c, name, d, a.argv, false);
}

int cmd_start_vm(const struct conf *c, const char *name)
{
	struct vm_paths p;
	struct vm_def d;
	char path[CONF_PATH_MAX + CONF_NAME_MAX + 8]; /* <vm_dir>/NAME.vm */
	int lock, rc = -1;

	if (vm_paths(c, name, &p) < 0)
		return -1;
	if (str_fmt(path, sizeof(path), "%s/%s.vm", c->vm_dir, name) < 0)
		return err_set(EXIT_USAGE, "vm_dir %s: too long", c->vm_dir);
	if (access(path, F_OK) < 0)
		return err_sys(EXIT_USAGE, "no VM '%s': %s", name, path);
	if (vm_def_load(&d, path) < 0)
		return -1;
	lock = vm_lock(c, name);
	if (lock >= 0) {
		if (vm_pid(c, name))
			err_set(EXIT_FAIL, "VM '%s' is already running", name);
		else
			rc = launch_cold(c, name, &d, path);
		close(lock);
	}
	vm_def_free(&d);
	return rc;
}
