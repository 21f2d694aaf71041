/* main: global options, the configuration file, and dispatch to one
 * command; the exit code is the command's (see err.h). */
#include "cmd/cmd.h"
#include "config.h"
#include "err.h"
#include "log.h"
#include "util.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const struct cmd cmd_table[] = {
	{ "run", cmd_run, "run NAME" },
	{ "stop", cmd_stop, "stop NAME [--timeout SECONDS]" },
	{ "list", cmd_list, "list [--json]" },
	{ "qmp", cmd_qmp, "qmp NAME JSON|COMMAND" },
	{ "save", cmd_save,
	  "save NAME TARGET [--format 2|3] [--parallel-channels N] [--bypass-cache] [--keep-running] [--golden] [--verbose] [--json]" },
	{ "restore", cmd_restore,
	  "restore TARGET [--name NAME] [--paused|--running] [--vm-file FILE] [--parallel-channels N] [--bypass-cache] [--pubkey FILE] [--again] [--verbose] [--json]" },
	{ "inspect", cmd_inspect, "inspect TARGET [--json]" },
	{ "verify", cmd_verify, "verify TARGET [--pubkey FILE]" },
	{ "keygen", cmd_keygen, "keygen PRIVATE PUBLIC" },
	{ "sign", cmd_sign, "sign TARGET --key FILE [--golden]" },
	/* Commands of features compiled out stay listed, and say so. */
	{ "watch", IS_ENABLED(CONFIG_WATCH) ? cmd_watch : NULL, "watch [--now]" },
	{ "resume", IS_ENABLED(CONFIG_WATCH) ? cmd_resume : NULL, "resume" },
	{ "console", IS_ENABLED(CONFIG_CONSOLE) ? cmd_console : NULL, "console [--tty DEV] [--baud N]" },
	{ "provision", IS_ENABLED(CONFIG_PROVISION) ? cmd_provision : NULL,
	  "provision IMAGE TARGET [--pubkey FILE] [--progress]" },
	{ "version", cmd_version, "version" },
	{ NULL, NULL, NULL },
};

static int usage(FILE *f)
{
	fprintf(f, "usage: vmsnap [--config FILE] [--verbose] COMMAND ...\n\ncommands:\n");
	for (const struct cmd *c = cmd_table; c->name; c++)
		fprintf(f, "  %s\n", c->usage);
	fprintf(f, "\nexit codes: 0 ok, 1 runtime failure, 2 usage or configuration error, 3 image refused\n");
	return f == stdout ? EXIT_OK : EXIT_USAGE;
}

int main(int argc, char **argv)
{
	const char *path = getenv("VMSNAP_CONF");
	bool required = path && *path;
	struct conf *c;
	const struct cmd *cmd;
	int i = 1, rc;

	signal(SIGPIPE, SIG_IGN); /* a closed pipe is an error return, not a death */
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "--config") && i + 1 < argc) {
			path = argv[++i];
			required = true;
		} else if (!strncmp(argv[i], "--config=", 9)) {
			path = argv[i] + 9;
			required = true;
		} else if (!strcmp(argv[i], "--verbose") || !strcmp(argv[i], "-v")) {
			log_verbose++;
		} else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			return usage(stdout);
		} else if (!strcmp(argv[i], "--version")) {
			argv[i] = "version";
			break;
		} else {
			fprintf(stderr, "vmsnap: unknown option %s\n", argv[i]);
			return usage(stderr);
		}
	}
	if (i >= argc)
		return usage(stderr);
	cmd = cmd_find(argv[i]);
	if (!cmd) {
		fprintf(stderr, "vmsnap: unknown command '%s'\n", argv[i]);
		return usage(stderr);
	}
	c = malloc(sizeof(*c)); /* large: keep it off the stack and out of .bss */
	if (!c)
		return EXIT_FAIL;
	conf_defaults(c);
	if (!path || !*path)
		path = CONFIG_DEFAULT_CONFIG_PATH;
	if (conf_load(c, path, required) < 0) {
		fprintf(stderr, "vmsnap: %s\n", err_msg());
		free(c);
		return err_code();
	}
	if (!cmd->run) {
		fprintf(stderr, "vmsnap: %s: this vmsnap was built without it (see make menuconfig)\n", cmd->name);
		free(c);
		return EXIT_USAGE;
	}
	rc = cmd->run(c, argc - i, argv + i);
	free(c);
	return rc;
}
