/* stop: shut VM NAME down with QMP quit; if QEMU does not go, SIGTERM and
 * then SIGKILL, so stop always ends with the VM gone. */
#include "cmd.h"
#include "err.h"
#include "log.h"
#include "qmp.h"
#include "util.h"
#include "vm.h"

#include <signal.h>
#include <stdio.h>
#include <unistd.h>

const char cmd_stop_usage[] = "stop NAME [--timeout SECONDS]";

int cmd_stop(struct conf *c, int argc, char **argv)
{
	static const struct option opts[] = { { "timeout", required_argument, 0, 't' }, { 0 } };
	unsigned long timeout = 10;
	struct vm_paths p;
	struct qmp q;
	const char *name;
	int lock, opt;
	pid_t pid;

	optind = 1;
	while ((opt = cmd_getopt(argc, argv, "", opts)) != -1) {
		if (opt != 't' || parse_uint(optarg, 1, 3600, &timeout) < 0)
			return cmd_usage(cmd_stop_usage);
	}
	if (argc - optind != 1)
		return cmd_usage(cmd_stop_usage);
	name = argv[optind];
	if (vm_paths(c, name, &p) < 0 || (lock = vm_lock(c, name)) < 0)
		return cmd_fail("stop");
	pid = vm_pid(c, name);
	if (!pid) {
		close(lock);
		err_set(EXIT_FAIL, "VM '%s' is not running", name);
		return cmd_fail("stop");
	}
	if (qmp_connect(&q, p.qmp, 2000) == 0) {
		if (qmp_call(&q, "quit", NULL, NULL, 0, NULL) < 0)
			log_debug("quit: %s", err_msg());
		qmp_close(&q);
	}
	if (vm_wait_gone(pid, (int)timeout * 1000) < 0) {
		log_warn("VM '%s' ignored quit for %lu s; sending SIGTERM", name, timeout);
		kill(pid, SIGTERM);
		if (vm_wait_gone(pid, 5000) < 0) {
			log_warn("VM '%s' ignored SIGTERM; sending SIGKILL", name);
			kill(pid, SIGKILL);
			vm_wait_gone(pid, 5000);
		}
	}
	vm_cleanup(c, name);
	close(lock);
	printf("stopped VM '%s'\n", name);
	return EXIT_OK;
}
