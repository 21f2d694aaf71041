/* snap_guest: the guest's wall clock after a restore (snap.h). It stood
 * still from the save to the cont; the guest agent, if the VM has its port,
 * sets it to the host's time, as `virsh domtime --sync` does. */
#include "snap.h"
#include "err.h"
#include "log.h"
#include "qga.h"
#include "util.h"
#include "vm.h"

#include <stdio.h>
#include <time.h>

/* How long the agent may take for each step: a guest whose agent does not
 * run must not hold up a restore (or a boot) for long. */
#define GUEST_TIME_TIMEOUT_MS 2000

static void behind(const char *name, struct restore_result *res, const char *why)
{
	log_warn("VM '%s': %sthe guest's clock is behind by about %lld s (the time since the image was saved): "
		 "give the VM the guest agent's port (-device virtserialport,chardev=vmsnap-qga,name=org.qemu.guest_agent.0) "
		 "and run qemu-ga in the guest, or NTP, or hwclock -s in the guest with -rtc base=utc",
		 name, why, res->clock_behind_s);
}

void snap_guest_time(const struct conf *c, const char *name, const struct vm_def *d,
		     uint64_t created, struct restore_result *res)
{
	struct conf_vm vm;
	struct vm_paths p;
	uint64_t t0 = now_ms();
	long long now = (long long)time(NULL);

	res->clock_behind_s = now > (long long)created ? now - (long long)created : 0;
	conf_vm_get(c, name, &vm);
	if (!res->running) {
		str_copy(res->guest_time, sizeof(res->guest_time), "paused");
	} else if (vm.no_time_sync) {
		str_copy(res->guest_time, sizeof(res->guest_time), "off");
	} else if (!vm_def_has_agent(d)) {
		str_copy(res->guest_time, sizeof(res->guest_time), "no agent");
		behind(name, res, "");
	} else if (vm_paths(c, name, &p) < 0 || qga_set_time(p.qga, GUEST_TIME_TIMEOUT_MS) < 0) {
		char why[200], prefix[260];
		str_trunc(why, sizeof(why), err_msg());
		snprintf(res->guest_time, sizeof(res->guest_time), "failed: %s", why);
		snprintf(prefix, sizeof(prefix), "the guest agent did not set the clock (%s), so ", why);
		behind(name, res, prefix);
		err_clear();
	} else {
		str_copy(res->guest_time, sizeof(res->guest_time), "set");
		res->clock_behind_s = 0;
	}
	res->guest_time_ms = now_ms() - t0;
}
