/* save: stop VM NAME and write its whole state into TARGET (a file, or a
 * block device for v2); QEMU exits afterwards unless --keep-running. */
#include "cmd.h"
#include "err.h"
#include "log.h"
#include "snap.h"
#include "util.h"

#include <stdio.h>

enum { O_FORMAT = 1, O_CHANNELS, O_BYPASS, O_KEEP, O_GOLDEN, O_JSON, O_VERBOSE };

static const char *ram_sync_text(const struct save_result *r, char *buf, size_t size)
{
	snprintf(buf, size, "RAM sync %.3f s, header ", (double)r->t.ram_sync / 1e3);
	return buf;
}

static void report(const char *name, const char *target, const struct save_opts *opts,
		   const struct save_result *r, bool json)
{
	(void)opts;
	char ram[32], img[32], rs[64];

	if (json) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "name", name);
		cJSON_AddStringToObject(o, "target", target);
		cJSON_AddNumberToObject(o, "format", r->version);
		cJSON_AddNumberToObject(o, "channels", r->channels);
		cJSON_AddBoolToObject(o, "direct_io", r->direct_io);
		cJSON_AddBoolToObject(o, "signed", r->signed_);
		cJSON_AddNumberToObject(o, "ram_size", (double)r->ram_size);
		cJSON_AddNumberToObject(o, "stream_length", (double)r->stream_length);
		cJSON_AddNumberToObject(o, "image_size", (double)r->image_size);
		cmd_add_times(o, &r->t);
		cmd_add_digest(o, &r->digest);
		cmd_print_json(o);
		return;
	}
	printf("saved VM '%s' to %s: v%d%s, %s RAM, image %s, %.3f s (stream %.3f s, %ssync %.3f s, digest %.3f s)%s\n",
	       name, target, r->version, r->version == 4 ? " (instant)" : "",
	       fmt_bytes(r->ram_size, ram, sizeof(ram)), fmt_bytes(r->image_size, img, sizeof(img)),
	       (double)r->t.total / 1e3, (double)r->t.migrate / 1e3,
	       r->version == 4 ? ram_sync_text(r, rs, sizeof(rs)) : "", (double)r->t.sync / 1e3,
	       (double)r->t.digest / 1e3, r->signed_ ? ", signed" : "");
}

int cmd_save(struct conf *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "format", required_argument, 0, O_FORMAT },
		{ "parallel-channels", required_argument, 0, O_CHANNELS },
		{ "bypass-cache", no_argument, 0, O_BYPASS },
		{ "keep-running", no_argument, 0, O_KEEP },
		{ "golden", no_argument, 0, O_GOLDEN },
		{ "json", no_argument, 0, O_JSON },
		{ "verbose", no_argument, 0, O_VERBOSE },
		{ 0 },
	};
	struct save_opts o = {
		.version = c->image_version,
		.channels = c->channels,
		.bypass_cache = c->bypass_cache,
		.sign_key = c->sign_key[0] ? c->sign_key : NULL,
	};
	struct save_result r;
	unsigned long n;
	bool json = false;
	int opt;

	optind = 1;
	while ((opt = cmd_getopt(argc, argv, "v", opts)) != -1) {
		switch (opt) {
		case O_FORMAT:
			if (parse_uint(optarg, 2, 3, &n) < 0) {
				err_set(EXIT_USAGE, "--format %s: use 2 or 3", optarg);
				return cmd_fail("save");
			}
			o.version = (int)n;
			break;
		case O_CHANNELS:
			if (cmd_channels(optarg, &o.channels) < 0)
				return cmd_fail("save");
			break;
		case O_BYPASS: o.bypass_cache = o.insisted = true; break;
		case O_KEEP: o.keep_running = true; break;
		case O_GOLDEN: o.golden = true; break;
		case O_JSON: json = true; break;
		case 'v': case O_VERBOSE: log_verbose++; break;
		default: return cmd_usage(cmd_find("save"));
		}
	}
	if (argc - optind != 2)
		return cmd_usage(cmd_find("save"));
	if (cmd_bypass(&o.bypass_cache, o.insisted) < 0)
		return cmd_fail("save");
	o.progress = log_verbose > 0;
	if (snap_save(c, argv[optind], argv[optind + 1], &o, &r) < 0)
		return cmd_fail("save");
	cmd_add_digest(NULL, &r.digest);
	report(argv[optind], argv[optind + 1], &o, &r, json);
	return EXIT_OK;
}
