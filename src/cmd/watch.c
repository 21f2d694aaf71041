/* watch: the power-fail daemon. Waits for SIGPWR, SIGUSR1 or the trigger file
 * (powerfail_trigger), then saves every VM in `vms` at once with the fastest
 * settings, reports each time against powerfail_deadline_ms, and exits: 0
 * only when every running VM's image is complete and durable. --now saves at
 * once (for inittab powerwait entries, UPS notify commands, shutdown).
 * SIGUSR2 means power returned: saves in progress are cancelled and every VM
 * runs again within a second (README, "Power returns during a save"). */
#include "watch.h"
#include "err.h"
#include "fleet.h"
#include "log.h"
#include "snap.h"
#include "util.h"
#include "verify.h"
#include "vm.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

/* SIGUSR2, power returned. The watch forwards it to its save jobs; a job
 * (which inherits the flag and the handler across fork) cancels its save. */
static volatile sig_atomic_t power_back;
static pid_t watch_pid;
static bool cancelled_round; /* the last save_all ended with power back */
/* The VMs the last save_all saved (their QEMU quit): power back restores
 * these, and no others (a VM stopped on purpose stays stopped). */
static char saved[CONF_MAX_VMS][CONF_NAME_MAX];
static unsigned n_saved;

static void on_power_back(int sig)
{
	(void)sig;
	power_back = 1;
	if (getpid() != watch_pid)
		snap_cancel(); /* a save job; the watch's own flag must not stick */
	fleet_signal(SIGUSR2);
}

static void job_cancel_on_power_back(void)
{
	if (power_back)
		snap_cancel();
}

/* SIGUSR2 to on_power_back (no SA_RESTART: a wait returns at once), or back
 * to the signalfd (blocked) between power failures. */
static void catch_power_back(bool on)
{
	struct sigaction sa = { .sa_handler = on_power_back };
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGUSR2);
	if (on)
		sigaction(SIGUSR2, &sa, NULL);
	sigprocmask(on ? SIG_UNBLOCK : SIG_BLOCK, &set, NULL);
}

/* v3 with a channel per CPU and O_DIRECT (falling back quietly where the file
 * system refuses it); v2 where the image is a block device. */
static int save_job(const struct conf *c, const char *name, char *msg, size_t size, void *arg)
{
	struct save_opts o = { .version = 3, .bypass_cache = IS_ENABLED(CONFIG_DIRECT_IO),
			       .sign_key = c->sign_key[0] ? c->sign_key : NULL };
	struct save_result r;
	struct conf_vm vm;
	struct stat st;

	(void)arg;
	job_cancel_on_power_back();
	conf_vm_get(c, name, &vm);
	if (!vm_pid(c, name)) {
		snprintf(msg, size, "not running: nothing to save");
		return 0;
	}
	if (vfy_golden(vm.image)) { /* a golden image (kiosk, factory) stays */
		snprintf(msg, size, "its image %s is golden: not overwritten", vm.image);
		return 0;
	}
	if (stat(vm.image, &st) == 0 && S_ISBLK(st.st_mode))
		o.version = 2;
	if (snap_save(c, name, vm.image, &o, &r) < 0)
		return -1;
	if (r.consumed_running) {
		snprintf(msg, size, "power returned as the save ended: %s recorded consumed, the VM runs on",
			 vm.image);
		return 0;
	}
	snprintf(msg, size,
		 "saved to %s: v%d, %llu MiB in %llu ms (stream %llu, RAM sync %llu, sync %llu, digest %llu)",
		 vm.image, r.version, (unsigned long long)(r.image_size >> 20),
		 (unsigned long long)r.t.total, (unsigned long long)r.t.migrate,
		 (unsigned long long)r.t.ram_sync, (unsigned long long)r.t.sync,
		 (unsigned long long)r.t.digest);
	return 0;
}

static void resume_saved(const struct conf *c)
{
	if (n_saved)
		cmd_resume_some(c, (const char (*)[CONF_NAME_MAX])saved, n_saved);
	n_saved = 0;
}

static void report(const struct conf *c, const struct fleet_result *res)
{
	n_saved = 0;
	for (unsigned i = 0; i < c->n_vms; i++) {
		const struct fleet_result *r = &res[i];
		if (!r->code && !strncmp(r->msg, "saved to ", 9))
			str_copy(saved[n_saved++], CONF_NAME_MAX, r->name);
		if (r->code && power_back && strstr(r->msg, "cancelled: power returned") &&
		    !strstr(r->msg, " is gone"))
			log_info("%s: %s", r->name, r->msg);
		else if (r->code)
			log_error("%s: save FAILED after %llu ms: %s", r->name, (unsigned long long)r->ms, r->msg);
		else
			log_info("%s: %s; %llu ms of the %u ms deadline%s", r->name, r->msg,
				 (unsigned long long)r->ms, c->powerfail_deadline_ms,
				 r->ms > c->powerfail_deadline_ms ? " (OVER the deadline)" : "");
	}
}

/* Every VM at once. SIGUSR2 during it cancels what is not committed yet;
 * then the VMs are resumed (those whose save had ended restored from their
 * image) and the result is 1 (no complete set of images). */
static int save_all(const struct conf *c)
{
	struct fleet_result res[CONF_MAX_VMS];
	uint64_t t0 = now_ms();
	int failed;

	if (!c->n_vms) {
		log_warn("power fail: no VMs listed in vms = ...; nothing to save");
		return EXIT_OK;
	}
	log_info("power fail: saving %u VM(s), deadline %u ms", c->n_vms, c->powerfail_deadline_ms);
	catch_power_back(true);
	failed = fleet_run(c, (const char (*)[CONF_NAME_MAX])c->vms, c->n_vms, save_job, NULL, res);
	report(c, res);
	if (power_back) {
		log_info("power returned during the save (%llu ms): the VMs run again",
			 (unsigned long long)(now_ms() - t0));
		resume_saved(c); /* a VM whose save had ended; the others run on */
		catch_power_back(false);
		power_back = 0;
		cancelled_round = true;
		return EXIT_FAIL;
	}
	catch_power_back(false);
	log_info("power fail: %s in %llu ms", failed ? "NOT every image is complete" : "every image is complete and durable",
		 (unsigned long long)(now_ms() - t0));
	return failed ? EXIT_FAIL : EXIT_OK;
}

/* --now: save at once. It takes the pidfile (waiting a little for a watch
 * told to stop) so that power returning can reach it with SIGUSR2 too. */
static int save_now(const struct conf *c)
{
	int lock, rc;
	sigset_t set;

	/* SIGUSR2 is held back until save_all catches it: power back before
	 * the save started means no save at all. SIGTERM (a stop, aimed at the
	 * daemon whose pidfile this becomes) never cuts a save short. */
	sigemptyset(&set);
	sigaddset(&set, SIGUSR2);
	sigaddset(&set, SIGTERM);
	sigprocmask(SIG_BLOCK, &set, NULL);
	/* A daemon told to stop lets go at once; one saving, once it has. */
	lock = watch_claim(c, c->powerfail_deadline_ms + 5000);
	if (lock == -1)
		return cmd_fail("watch");
	if (lock == -2) {
		log_warn("%s; saving without it (power returning cannot cancel this save)", err_msg());
		err_clear();
	}
	rc = save_all(c);
	if (lock >= 0) {
		watch_unlink_pidfile(c);
		close(lock);
	}
	/* SIGUSR2 after the save ended (blocked since): the VMs quit, so
	 * power back means restoring them. From the unlink on, whoever
	 * reports power back finds no watch and resumes the VMs itself. */
	if (sigpending(&set) == 0 && sigismember(&set, SIGUSR2)) {
		log_info("power returned after the save ended: resuming the VMs");
		resume_saved(c);
		rc = EXIT_FAIL;
	}
	return rc;
}

/* After a save: signals that came during it wait in sfd. A second power
 * failure is ignored (one save per power failure); SIGUSR2 means power came
 * back after the save ended: true. */
static bool late_power_back(int sfd)
{
	struct signalfd_siginfo si;
	bool back = false;

	fcntl(sfd, F_SETFL, O_NONBLOCK);
	while (read(sfd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGUSR2)
			back = true;
		else
			log_info("signal %d during the save: ignored (one save per power failure)",
				 (int)si.ssi_signo);
	}
	fcntl(sfd, F_SETFL, 0);
	return back;
}

/* Until a power failure whose save power does not interrupt: 1 saved, 2
 * saved with failures, 0 stopped, -1 error. Power back during or after the
 * save: the VMs run again and the watch goes on watching. */
static int watch_loop(const struct conf *c, int sfd, int ifd)
{
	for (;;) {
		int rc = watch_wait(c, sfd, ifd);

		if (rc <= 0)
			return rc;
		rc = save_all(c);
		if (late_power_back(sfd) && !cancelled_round) {
			log_info("power returned after the save ended: resuming the VMs");
			resume_saved(c);
			cancelled_round = true;
		}
		if (!cancelled_round)
			return rc == EXIT_OK ? 1 : 2;
		cancelled_round = false;
		log_info("watching again");
	}
}

const char cmd_watch_usage[] = "watch [--now]";

int cmd_watch(struct conf *c, int argc, char **argv)
{
	static const struct option opts[] = { { "now", no_argument, 0, 'n' }, { 0 } };
	bool now = false;
	int opt, lock, sfd, ifd = -1, rc;
	sigset_t set;

	optind = 1;
	while ((opt = cmd_getopt(argc, argv, "", opts)) != -1) {
		if (opt != 'n')
			return cmd_usage(cmd_watch_usage);
		now = true;
	}
	if (argc != optind)
		return cmd_usage(cmd_watch_usage);
	log_to_syslog(true);
	watch_pid = getpid();
	if (now)
		return save_now(c);
	/* Signals arrive through a file descriptor: a second SIGPWR during the
	 * save just waits there unread, and the daemon exits after saving.
	 * Blocked before the pidfile names this process. */
	sigemptyset(&set);
	sigaddset(&set, SIGPWR);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, NULL);
	if ((lock = watch_claim(c, 0)) < 0)
		return cmd_fail("watch");
	sfd = signalfd(-1, &set, SFD_CLOEXEC);
	if (sfd < 0 || (ifd = watch_trigger(c)) == -2) {
		if (sfd < 0)
			err_sys(EXIT_FAIL, "signalfd");
		close(lock);
		return cmd_fail("watch");
	}
	rc = watch_loop(c, sfd, ifd);
	rc = rc < 0 ? cmd_fail("watch") : rc == 2 ? EXIT_FAIL : EXIT_OK;
	watch_unlink_pidfile(c);
	close(lock);
	return rc;
}
