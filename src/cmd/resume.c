/* resume: at boot, for every VM in `vms`: restore its pending image if it is
 * complete and passes the checks (then it is consumed: resume-once), restore
 * a golden image every time, and otherwise say why and cold-start the VM. */
#include "cmd.h"
#include "err.h"
#include "fleet.h"
#include "log.h"
#include "image.h"
#include "snap.h"
#include "storage.h"
#include "util.h"
#include "verify.h"
#include "vm.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A pending image that was not restored must never be restored on a later
 * boot, once the cold-started VM has moved its disks on: a file is set aside
 * as NAME.img.stale, a block device's header marked consumed. Golden images
 * and consumed ones stay as they are. Appends what was done to why. */
static void retire(const char *path, char *why, size_t size)
{
	struct img_header h;
	struct stat st;
	char stale[CONF_PATH_MAX + 8];
	size_t n = strlen(why);
	int rc = vfy_peek(path, &h);

	if (rc < 0 || (rc == 1 && ((h.flags & IMG_F_GOLDEN) || h.state == IMG_CONSUMED)))
		return;
	if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
		snprintf(stale, sizeof(stale), "%s.stale", path);
		if (rename(path, stale) == 0)
			snprintf(why + n, size - n, "; set aside as %s", stale);
	} else if (rc == 1) {
		h.state = IMG_CONSUMED;
		if (stor_rewrite_header(path, &h) == 0)
			snprintf(why + n, size - n, "; marked consumed");
	}
	err_clear();
}

static int resume_job(const struct conf *c, const char *name, char *msg, size_t size, void *arg)
{
	struct restore_opts o = { .running = -1, .channels = c->channels, .own_image = true,
				  .bypass_cache = c->bypass_cache };
	struct restore_result r;
	struct conf_vm vm;
	char why[400];

	(void)arg;
	conf_vm_get(c, name, &vm);
	if (vm_pid(c, name)) {
		snprintf(msg, size, "already running");
		return 0;
	}
	if (access(vm.image, F_OK) < 0) {
		snprintf(why, sizeof(why), "no image at %s", vm.image);
	} else {
		o.name = name;
		if (snap_restore(c, vm.image, &o, &r) == 0) {
			snprintf(msg, size, "restored from %s in %llu ms%s", vm.image,
				 (unsigned long long)r.t.total, r.golden ? " (golden: kept for the next boot)" : "");
			return 0;
		}
		str_trunc(why, sizeof(why), err_msg());
		retire(vm.image, why, sizeof(why));
	}
	if (cmd_start_vm(c, name) < 0)
		return err_wrap("%s; cold start failed", why);
	snprintf(msg, size, "cold-started: %s", why);
	return 0;
}

int cmd_resume_some(const struct conf *c, const char (*names)[CONF_NAME_MAX], unsigned n)
{
	struct fleet_result res[CONF_MAX_VMS];
	int failed = fleet_run(c, names, n, resume_job, NULL, res);

	for (unsigned i = 0; i < n; i++) {
		if (res[i].code)
			log_error("%s: FAILED: %s", res[i].name, res[i].msg);
		else
			log_info("%s: %s", res[i].name, res[i].msg);
	}
	return failed ? EXIT_FAIL : EXIT_OK;
}

int cmd_resume_all(const struct conf *c)
{
	if (!c->n_vms) {
		log_warn("no VMs listed in vms = ... (%s): nothing to resume",
			 c->path[0] ? c->path : "no config file");
		return EXIT_OK;
	}
	return cmd_resume_some(c, (const char (*)[CONF_NAME_MAX])c->vms, c->n_vms);
}

const char cmd_resume_usage[] = "resume";

int cmd_resume(struct conf *c, int argc, char **argv)
{
	static const struct option opts[] = { { 0 } };

	optind = 1;
	if (cmd_getopt(argc, argv, "", opts) != -1 || argc != optind)
		return cmd_usage(cmd_resume_usage);
	log_to_syslog(true);
	return cmd_resume_all(c);
}
