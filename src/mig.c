/* mig: migration capabilities, fd passing and the wait loop (see mig.h). */
#include "mig.h"
#include "err.h"
#include "image.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* QEMU's default max-bandwidth is 128 MiB/s; raise it so saves run at disk
 * speed. QEMU caps the value, so use the largest it accepts (1 TiB/s). */
#define MAX_BANDWIDTH (1ULL << 40)

bool mig_file_transport(const struct qmp *q, int version, bool regular_file, bool direct)
{
	if (version == 3)
		return true;
	return regular_file && !direct && qmp_at_least(q, 8, 2);
}

static bool in_list(const cJSON *caps, const char *cap)
{
	const cJSON *c;

	cJSON_ArrayForEach(c, caps) {
		const char *name = qmp_str(c, "capability");
		if (name && !strcmp(name, cap))
			return true;
	}
	return false;
}

int mig_has_cap(struct qmp *q, const char *cap)
{
	cJSON *caps;
	int found;

	if (qmp_call(q, "query-migrate-capabilities", NULL, NULL, 0, &caps) < 0)
		return -1;
	found = in_list(caps, cap);
	cJSON_Delete(caps);
	return found;
}

static cJSON *cap(const char *name, bool on)
{
	cJSON *c = cJSON_CreateObject();

	cJSON_AddStringToObject(c, "capability", name);
	cJSON_AddBoolToObject(c, "state", on);
	return c;
}

int mig_setup(struct qmp *q, const struct mig_opts *o)
{
	bool v3 = o->version == 3, v4 = o->version == IMG_VERSION_INSTANT, has_mapped, has_ignore;
	cJSON *list, *args, *params, *caps;

	if (qmp_call(q, "query-migrate-capabilities", NULL, NULL, 0, &caps) < 0)
		return -1;
	has_mapped = in_list(caps, "mapped-ram");
	has_ignore = in_list(caps, "x-ignore-shared");
	cJSON_Delete(caps);
	/* The QEMU configured (qemu =) lacks what the format needs: a
	 * configuration error, as in the save's preflight; the image is fine. */
	if (v3 && !has_mapped)
		return err_set(EXIT_USAGE,
			       "QEMU %s has no mapped-ram migration capability: v3 images need QEMU >= 9.0 (use a v2 image)",
			       q->version_str);
	if (v4 && !has_ignore)
		return err_set(EXIT_USAGE,
			       "QEMU %s has no x-ignore-shared migration capability: instant-mode images need it",
			       q->version_str);
	list = cJSON_CreateArray();
	/* Instant mode: the shared RAM file stays where it is; only the rest
	 * (device state, ROMs, video RAM) goes into the stream. */
	if (has_ignore)
		cJSON_AddItemToArray(list, cap("x-ignore-shared", v4));
	cJSON_AddItemToArray(list, cap("events", true));
	/* Set both ways: an earlier attempt in this QEMU may have left them on. */
	cJSON_AddItemToArray(list, cap("multifd", v3));
	if (has_mapped)
		cJSON_AddItemToArray(list, cap("mapped-ram", v3));
	args = cJSON_CreateObject();
	cJSON_AddItemToObject(args, "capabilities", list);
	if (qmp_call(q, "migrate-set-capabilities", args, NULL, 0, NULL) < 0)
		return -1;

	args = cJSON_CreateObject();
	if (!o->incoming)
		cJSON_AddNumberToObject(args, "max-bandwidth", (double)MAX_BANDWIDTH);
	if (v3) {
		cJSON_AddNumberToObject(args, "multifd-channels", o->channels);
		if (o->direct_io || q->version[0] > 9 || (q->version[0] == 9 && q->version[1] >= 1))
			cJSON_AddBoolToObject(args, "direct-io", o->direct_io);
	}
	if (!cJSON_GetArraySize(args))
		cJSON_Delete(args); /* nothing to set (an incoming v2 stream) */
	else if (qmp_call(q, "migrate-set-parameters", args, NULL, 0, NULL) < 0)
		return -1;
	if (log_verbose && qmp_call(q, "query-migrate-parameters", NULL, NULL, 0, &params) == 0) {
		/* QEMU's own view, not our intent: tests and people read this. */
		log_info("QEMU migrate parameters: multifd-channels=%lld direct-io=%s max-bandwidth=%lld",
			 qmp_int(params, "multifd-channels", -1),
			 qmp_bool(params, "direct-io", 0) ? "on" : "off",
			 qmp_int(params, "max-bandwidth", -1));
		cJSON_Delete(params);
	}
	return 0;
}

int mig_add_fdset(struct qmp *q, const int *fds, int nfds, long long *fdset)
{
	*fdset = -1;
	for (int i = 0; i < nfds; i++) {
		cJSON *args = cJSON_CreateObject(), *ret;
		if (*fdset >= 0)
			cJSON_AddNumberToObject(args, "fdset-id", (double)*fdset);
		cJSON_AddStringToObject(args, "opaque", i ? "vmsnap-image-direct" : "vmsnap-image");
		if (qmp_call(q, "add-fd", args, &fds[i], 1, &ret) < 0) {
			if (*fdset >= 0)
				mig_remove_fdset(q, *fdset);
			return -1;
		}
		*fdset = qmp_int(ret, "fdset-id", -1);
		cJSON_Delete(ret);
	}
	if (log_verbose) {
		cJSON *sets, *s;
		if (qmp_call(q, "query-fdsets", NULL, NULL, 0, &sets) == 0) {
			cJSON_ArrayForEach(s, sets) {
				if (qmp_int(s, "fdset-id", -2) == *fdset)
					log_info("QEMU fdset %lld holds %d fds", *fdset,
						 cJSON_GetArraySize(cJSON_GetObjectItem(s, "fds")));
			}
			cJSON_Delete(sets);
		}
	}
	return 0;
}

/* For clean-ups, which mostly run after a failure: if they fail too (QEMU
 * died), the message that counts is still the first failure's. */
static void cleanup_call(struct qmp *q, const char *cmd, cJSON *args)
{
	char first[512];
	int code = err_code();

	str_copy(first, sizeof(first), err_msg());
	if (qmp_call(q, cmd, args, NULL, 0, NULL) < 0) {
		log_debug("%s: %s", cmd, err_msg());
		err_set(code, "%s", first);
	}
}

void mig_remove_fdset(struct qmp *q, long long fdset)
{
	cJSON *args = cJSON_CreateObject();

	cJSON_AddNumberToObject(args, "fdset-id", (double)fdset);
	cleanup_call(q, "remove-fd", args);
}

int mig_getfd(struct qmp *q, int fd, const char *name)
{
	cJSON *args = cJSON_CreateObject();

	cJSON_AddStringToObject(args, "fdname", name);
	return qmp_call(q, "getfd", args, &fd, 1, NULL);
}

int mig_start(struct qmp *q, const struct mig_opts *o, const char *uri)
{
	cJSON *args = cJSON_CreateObject();

	cJSON_AddStringToObject(args, "uri", uri);
	log_debug("%s %s", o->incoming ? "migrate-incoming" : "migrate", uri);
	return qmp_call(q, o->incoming ? "migrate-incoming" : "migrate", args, NULL, 0, NULL);
}

void mig_cancel(struct qmp *q)
{
	cleanup_call(q, "migrate_cancel", NULL);
}

/* Statuses in which QEMU is done with a migration (a new one may start). */
static bool settled(const char *status)
{
	static const char *const done[] = { "none", "completed", "failed", "cancelled" };

	for (size_t i = 0; i < ARRAY_SIZE(done); i++)
		if (!strcmp(status, done[i]))
			return true;
	return false;
}

static int migration_status(struct qmp *q, char *status, size_t size)
{
	cJSON *info;

	if (qmp_call(q, "query-migrate", NULL, NULL, 0, &info) < 0)
		return -1;
	str_copy(status, size, qmp_str(info, "status") ? qmp_str(info, "status") : "none");
	cJSON_Delete(info);
	return 0;
}

/* A killed save leaves QEMU migrating into the image (file: transports go on
 * without vmsnap) and its fdset open: that fd shares the open file
 * description, and so the flock, of the temp file, which would make every
 * later save of that target "busy". */
int mig_reset(struct qmp *q)
{
	char status[32];
	cJSON *sets, *set, *fd, *ev;
	int found = 0;

	if (migration_status(q, status, sizeof(status)) < 0)
		return -1;
	if (!settled(status)) {
		found = 1;
		log_debug("cancelling a migration left %s", status);
		if (strcmp(status, "cancelling"))
			mig_cancel(q);
		for (int i = 0; i < 500 && !settled(status); i++) {
			usleep(20000);
			if (migration_status(q, status, sizeof(status)) < 0)
				return -1;
		}
		if (!settled(status))
			return err_set(EXIT_FAIL,
				       "QEMU's migration left by an earlier save is still %s after 10 s of migrate_cancel: stop the VM and start it again",
				       status);
		/* Its MIGRATION events (cancelling, cancelled) came before the
		 * status said so: drop them, or mig_wait would take them as ours. */
		while (qmp_event(q, 0, &ev) > 0)
			cJSON_Delete(ev);
	}
	if (qmp_call(q, "query-fdsets", NULL, NULL, 0, &sets) < 0)
		return -1;
	cJSON_ArrayForEach(set, sets) {
		cJSON_ArrayForEach(fd, cJSON_GetObjectItem(set, "fds")) {
			const char *o = qmp_str(fd, "opaque");
			if (o && !strncmp(o, "vmsnap-image", 12)) {
				log_debug("removing fdset %lld", qmp_int(set, "fdset-id", -1));
				mig_remove_fdset(q, qmp_int(set, "fdset-id", -1));
				found = 1;
				break;
			}
		}
	}
	cJSON_Delete(sets);
	return found;
}

/* QEMU's reason for a failed migration. */
static int failed(struct qmp *q, const char *status)
{
	cJSON *info;
	char why[400] = "";

	if (qmp_call(q, "query-migrate", NULL, NULL, 0, &info) == 0) {
		const char *d = qmp_str(info, "error-desc");
		if (d)
			snprintf(why, sizeof(why), ": %s", d);
		cJSON_Delete(info);
	}
	return err_set(EXIT_FAIL, "QEMU reports the migration %s%s", status, why);
}

static void progress_line(struct qmp *q, const struct mig_opts *o, const struct relay *r,
			  uint64_t ram_size, struct rate *pr)
{
	uint64_t bytes = r ? r->done : 0;
	char a[32], b[32];
	double mbps, secs;
	cJSON *info;

	if (!r && !o->incoming && qmp_call(q, "query-migrate", NULL, NULL, 0, &info) == 0) {
		bytes = (uint64_t)qmp_int(cJSON_GetObjectItem(info, "ram"), "transferred", 0);
		cJSON_Delete(info);
	}
	if (!bytes && !r)
		return;
	rate_step(pr, bytes, &mbps, &secs);
	log_info("%s: %s (%.0f%% of %s RAM), %.0f MB/s, %.1f s", o->incoming ? "restoring" : "saving",
		 fmt_bytes(bytes, a, sizeof(a)), ram_size ? 100.0 * (double)bytes / (double)ram_size : 0.0,
		 fmt_bytes(ram_size, b, sizeof(b)), mbps, secs);
}

/* Read the status of queued MIGRATION events: 1 completed, -1 failed, 0 not yet. */
static int drain_events(struct qmp *q)
{
	cJSON *ev;

	while (qmp_event(q, 0, &ev) > 0) {
		const char *name = qmp_str(ev, "event");
		const char *st = qmp_str(cJSON_GetObjectItem(ev, "data"), "status");
		int rc = 0;

		if (name && !strcmp(name, "MIGRATION") && st) {
			log_debug("migration %s", st);
			if (!strcmp(st, "completed"))
				rc = 1;
			else if (!strcmp(st, "failed") || !strcmp(st, "cancelled"))
				rc = -1;
			if (rc < 0) {
				char s[16];
				str_copy(s, sizeof(s), st);
				cJSON_Delete(ev);
				return failed(q, s);
			}
		} else if (name && !strcmp(name, "SHUTDOWN")) {
			cJSON_Delete(ev);
			return err_set(EXIT_FAIL, "QEMU shut down during the migration");
		}
		cJSON_Delete(ev);
		if (rc)
			return rc;
	}
	return 0;
}

/* QEMU's own figures of a finished save (its total time, bytes sent); a
 * restore has only our clock. */
static void final_stats(struct qmp *q, const struct mig_opts *o, uint64_t ms, struct mig_stats *st)
{
	cJSON *info;

	st->qemu_ms = ms;
	if (!o->incoming && qmp_call(q, "query-migrate", NULL, NULL, 0, &info) == 0) {
		cJSON *ram = cJSON_GetObjectItem(info, "ram");
		st->qemu_ms = (uint64_t)qmp_int(info, "total-time", (long long)st->qemu_ms);
		st->transferred = (uint64_t)qmp_int(ram, "transferred", 0);
		st->ram_total = (uint64_t)qmp_int(ram, "total", 0);
		st->pages_normal = (uint64_t)qmp_int(ram, "normal", 0);
		st->pages_zero = (uint64_t)qmp_int(ram, "duplicate", 0);
		st->page_size = (uint64_t)qmp_int(ram, "page-size", 0);
		cJSON_Delete(info);
	}
}

int mig_wait(struct qmp *q, const struct mig_opts *o, struct relay *r, uint64_t ram_size,
	     bool progress, struct mig_stats *st)
{
	uint64_t t0 = now_ms();
	struct rate pr;
	bool completed = false, relay_done = r == NULL;

	memset(st, 0, sizeof(*st));
	rate_start(&pr);
	while (!completed || !relay_done) {
		struct pollfd p[2] = { { .fd = qmp_fd(q), .events = POLLIN } };
		int n = 1, rc;

		if (o->cancel && *o->cancel)
			return err_set(EXIT_FAIL, "cancelled: power returned");
		rc = drain_events(q);
		if (rc < 0)
			return -1;
		if (rc > 0)
			completed = true;
		if (completed && r && r->dir == RELAY_RESTORE)
			relay_done = true; /* QEMU has all it needs */
		if (completed && relay_done)
			break;
		if (!relay_done) {
			p[1].fd = r->pipe;
			p[1].events = r->dir == RELAY_SAVE ? POLLIN : POLLOUT;
			n = 2;
		}
		rc = poll(p, (nfds_t)n, 250);
		if (rc < 0 && errno != EINTR)
			return err_sys(EXIT_FAIL, "poll");
		if (rc > 0 && p[0].revents && qmp_pump(q) < 0)
			return err_set(EXIT_FAIL, "QEMU exited during the migration (QMP connection closed)");
		if (n == 2 && p[1].revents) {
			/* Bounded work per wake-up so QMP is never starved. */
			for (int i = 0; i < 64 && !relay_done; i++) {
				rc = relay_step(r);
				if (rc < 0)
					return -1;
				if (rc == 0)
					break;
				if (rc == 2)
					relay_done = true;
			}
		}
		if (progress && now_ms() >= pr.next) {
			progress_line(q, o, r, ram_size, &pr);
			pr.next = now_ms() + 1000;
		}
	}
	final_stats(q, o, now_ms() - t0, st);
	return 0;
}
