/* common: option parsing and error printing every command uses (cmd.h). */
#include "cmd.h"
#include "err.h"
#include "log.h"

#include "snap.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

const struct cmd *cmd_find(const char *name)
{
	for (const struct cmd *c = cmd_table; c->name; c++)
		if (!strcmp(c->name, name))
			return c;
	return NULL;
}

int cmd_usage(const char *usage)
{
	fprintf(stderr, "usage: vmsnap %s\n", usage);
	return EXIT_USAGE;
}

int cmd_err_fd = -1;

int cmd_fail(const char *name)
{
	if (cmd_err_fd >= 0)
		dprintf(cmd_err_fd, "%s\n", err_msg());
	else
		fprintf(stderr, "vmsnap: %s: %s\n", name, err_msg());
	return err_code();
}

int cmd_getopt(int argc, char **argv, const char *shortopts, const struct option *longopts)
{
	int opt;

	opterr = 0;
	opt = getopt_long(argc, argv, shortopts, longopts, NULL);
	if (opt == '?') {
		if (optopt)
			fprintf(stderr, "vmsnap: %s: option -%c is unknown or needs a value\n", argv[0], optopt);
		else
			fprintf(stderr, "vmsnap: %s: option %s is unknown or needs a value\n", argv[0],
				argv[optind - 1]);
	}
	return opt;
}

void cmd_print_json(cJSON *o)
{
	char *t = cJSON_PrintUnformatted(o);

	printf("%s\n", t ? t : "null");
	free(t);
	cJSON_Delete(o);
}

void cmd_add_format(cJSON *o, int version, unsigned channels, bool direct_io)
{
	cJSON_AddNumberToObject(o, "format", version);
	cJSON_AddNumberToObject(o, "channels", channels);
	cJSON_AddBoolToObject(o, "direct_io", direct_io);
}

void cmd_add_times(cJSON *o, const struct snap_times *t)
{
	struct rusage ru;

	cJSON_AddNumberToObject(o, "total_ms", (double)t->total);
	cJSON_AddNumberToObject(o, "migrate_ms", (double)t->migrate);
	cJSON_AddNumberToObject(o, "sync_ms", (double)t->sync);
	cJSON_AddNumberToObject(o, "digest_ms", (double)t->digest);
	cJSON_AddNumberToObject(o, "qemu_start_ms", (double)t->qemu_start);
	cJSON_AddNumberToObject(o, "qemu_exit_ms", (double)t->qemu_exit);
	cJSON_AddNumberToObject(o, "ram_sync_ms", (double)t->ram_sync);
	/* Our own peak memory, for the benchmark (KiB; QEMU is not our child). */
	if (getrusage(RUSAGE_SELF, &ru) == 0)
		cJSON_AddNumberToObject(o, "max_rss_kb", (double)ru.ru_maxrss);
}

void cmd_add_digest(cJSON *o, const struct snap_digest *d)
{
	/* what was hashed in the time the digest added (from memory while QEMU
	 * wrote counts in early, not here) */
	uint64_t after = d->read + d->memory - (d->early < d->memory ? d->early : d->memory);
	double mb_s = d->ms ? (double)(after / 1000) / (double)d->ms : 0.0;

	if (!d->from)
		return;
	if (!o && !d->early && !d->memory) {
		log_debug("payload digest (%s): %llu MiB read and hashed in %llu ms, %.0f MB/s", d->from,
			  (unsigned long long)(d->read >> 20), (unsigned long long)d->ms, mb_s);
		return;
	}
	if (!o) {
		log_debug("payload digest (%s): %llu MiB hashed while QEMU wrote, %llu MiB from QEMU's memory, %llu MiB read after in %llu ms, %.0f MB/s",
			  d->from, (unsigned long long)(d->early >> 20), (unsigned long long)(d->memory >> 20),
			  (unsigned long long)(d->read >> 20), (unsigned long long)d->ms, mb_s);
		return;
	}
	cJSON_AddStringToObject(o, "digest_from", d->from);
	cJSON_AddNumberToObject(o, "digest_read_bytes", (double)d->read);
	cJSON_AddNumberToObject(o, "digest_early_bytes", (double)d->early);
	cJSON_AddNumberToObject(o, "digest_memory_bytes", (double)d->memory);
	cJSON_AddNumberToObject(o, "digest_mb_s", mb_s);
}

int cmd_channels(const char *arg, unsigned *out)
{
	unsigned long n;

	if (parse_uint(arg, 1, CONFIG_MAX_CHANNELS, &n) < 0)
		return err_set(EXIT_USAGE, "--parallel-channels %s: use 1..%d", arg, CONFIG_MAX_CHANNELS);
	*out = (unsigned)n;
	return 0;
}

int cmd_bypass(bool *bypass, bool insisted)
{
	if (!*bypass || IS_ENABLED(CONFIG_DIRECT_IO))
		return 0;
	*bypass = false;
	return insisted ? err_set(EXIT_USAGE, "--bypass-cache: this vmsnap was built without CONFIG_DIRECT_IO") : 0;
}
