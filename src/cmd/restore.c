/* restore: start QEMU from an image and resume the guest (or keep it paused),
 * after the image passed every check. */
#include "cmd.h"
#include "err.h"
#include "log.h"
#include "snap.h"
#include "util.h"

#include <stdio.h>

enum { O_NAME = 1, O_PAUSED, O_RUNNING, O_VMFILE, O_CHANNELS, O_BYPASS, O_PUBKEY, O_JSON, O_VERBOSE, O_AGAIN };

static void report(const char *image, const struct restore_result *r, bool json)
{
	if (json) {
		cJSON *j = cJSON_CreateObject();
		cJSON_AddStringToObject(j, "name", r->name);
		cJSON_AddStringToObject(j, "image", image);
		cJSON_AddBoolToObject(j, "running", r->running);
		cJSON_AddBoolToObject(j, "golden", r->golden);
		cmd_add_format(j, r->version, r->channels, r->direct_io);
		cJSON_AddNumberToObject(j, "ram_size", (double)r->ram_size);
		cJSON_AddNumberToObject(j, "stream_length", (double)r->stream_length);
		cmd_add_times(j, &r->t);
		cmd_add_digest(j, &r->digest);
		cJSON_AddStringToObject(j, "guest_time", r->guest_time);
		cJSON_AddNumberToObject(j, "guest_time_ms", (double)r->guest_time_ms);
		cJSON_AddNumberToObject(j, "guest_clock_behind_s", (double)r->clock_behind_s);
		if (r->genid[0])
			cJSON_AddStringToObject(j, "vm_generation_id", r->genid);
		cmd_print_json(j);
		return;
	}
	printf("restored VM '%s' from %s: %s, %.2f s (QEMU start %.2f s, load %.2f s, verify %.2f s)\n",
	       r->name, image, r->running ? "running" : "paused", (double)r->t.total / 1e3,
	       (double)r->t.qemu_start / 1e3, (double)r->t.migrate / 1e3, (double)r->t.digest / 1e3);
}

const char cmd_restore_usage[] = "restore TARGET [--name NAME] [--paused|--running] [--vm-file FILE] [--parallel-channels N] [--bypass-cache] [--pubkey FILE] [--again] [--verbose] [--json]";

int cmd_restore(struct conf *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "name", required_argument, 0, O_NAME },
		{ "paused", no_argument, 0, O_PAUSED },
		{ "running", no_argument, 0, O_RUNNING },
		{ "vm-file", required_argument, 0, O_VMFILE },
		{ "parallel-channels", required_argument, 0, O_CHANNELS },
		{ "bypass-cache", no_argument, 0, O_BYPASS },
		{ "pubkey", required_argument, 0, O_PUBKEY },
		{ "json", no_argument, 0, O_JSON },
		{ "verbose", no_argument, 0, O_VERBOSE },
		{ "again", no_argument, 0, O_AGAIN },
		{ 0 },
	};
	struct restore_opts o = { .running = -1, .channels = c->channels,
				  .bypass_cache = c->bypass_cache };
	struct restore_result r;
	bool json = false;
	int opt;

	optind = 1;
	while ((opt = cmd_getopt(argc, argv, "v", opts)) != -1) {
		switch (opt) {
		case O_NAME: o.name = optarg; break;
		case O_PAUSED: o.running = 0; break;
		case O_RUNNING: o.running = 1; break;
		case O_VMFILE: o.vm_file = optarg; break;
		case O_CHANNELS:
			if (cmd_channels(optarg, &o.channels) < 0)
				return cmd_fail("restore");
			break;
		case O_BYPASS: o.bypass_cache = o.insisted = true; break;
		case O_PUBKEY: o.pubkey = optarg; break;
		case O_JSON: json = true; break;
		case O_AGAIN: o.again = true; break;
		case 'v': case O_VERBOSE: log_verbose++; break;
		default: return cmd_usage(cmd_restore_usage);
		}
	}
	if (argc - optind != 1)
		return cmd_usage(cmd_restore_usage);
	if (cmd_bypass(&o.bypass_cache, o.insisted) < 0)
		return cmd_fail("restore");
	o.progress = log_verbose > 0;
	if (snap_restore(c, argv[optind], &o, &r) < 0)
		return cmd_fail("restore");
	cmd_add_digest(NULL, &r.digest);
	report(argv[optind], &r, json);
	return EXIT_OK;
}
