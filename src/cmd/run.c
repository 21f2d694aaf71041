/* run: start VM NAME from <vm_dir>/NAME.vm, daemonized, with its QMP socket
 * and pidfile under run_dir. */
#include "cmd.h"
#include "err.h"
#include "util.h"
#include "vm.h"

#include <stdio.h>
#include <unistd.h>

int cmd_run(struct conf *c, int argc, char **argv)
{
	static const struct option opts[] = { { 0 } };
	const char *name;
	struct vm_def d;
	struct vm_paths p;
	char path[4096];
	int lock, rc = -1;

	optind = 1;
	if (cmd_getopt(argc, argv, "", opts) != -1 || argc - optind != 1)
		return cmd_usage(cmd_find("run"));
	name = argv[optind];
	if (vm_paths(c, name, &p) < 0)
		return cmd_fail("run");
	if (str_fmt(path, sizeof(path), "%s/%s.vm", c->vm_dir, name) < 0) {
		err_set(EXIT_USAGE, "vm_dir %s: too long", c->vm_dir);
		return cmd_fail("run");
	}
	if (access(path, F_OK) < 0) {
		err_sys(EXIT_USAGE, "no VM '%s': %s", name, path);
		return cmd_fail("run");
	}
	if (vm_def_load(&d, path) < 0)
		return cmd_fail("run");
	lock = vm_lock(c, name);
	if (lock >= 0) {
		if (vm_pid(c, name))
			err_set(EXIT_FAIL, "VM '%s' is already running", name);
		else if ((rc = vm_launch(c, name, &d, false)) == 0)
			printf("started VM '%s' (pid %d, QMP %s)\n", name, (int)vm_pid(c, name), p.qmp);
		close(lock);
	}
	vm_def_free(&d);
	return rc < 0 ? cmd_fail("run") : EXIT_OK;
}
