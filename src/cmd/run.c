/* run: start VM NAME from <vm_dir>/NAME.vm, daemonized, with its QMP socket
 * and pidfile under run_dir. */
#include "cmd.h"
#include "err.h"
#include "vm.h"

#include <stdio.h>

const char cmd_run_usage[] = "run NAME";

int cmd_run(struct conf *c, int argc, char **argv)
{
	static const struct option opts[] = { { 0 } };
	struct vm_paths p;

	optind = 1;
	if (cmd_getopt(argc, argv, "", opts) != -1 || argc - optind != 1)
		return cmd_usage(cmd_run_usage);
	if (vm_paths(c, argv[optind], &p) < 0 || cmd_start_vm(c, argv[optind]) < 0)
		return cmd_fail("run");
	printf("started VM '%s' (pid %d, QMP %s)\n", argv[optind], (int)vm_pid(c, argv[optind]), p.qmp);
	return EXIT_OK;
}
