/* console: a line protocol for technicians and test stations on a serial
 * port or stdin: one command a line, every reply ends "OK" or "ERR CODE MSG". */
#include "cmd.h"
#include "console_allow.h"
#include "console_io.h"
#include "console_run.h"
#include "err.h"
#include "qmp.h"
#include "storage.h"
#include "util.h"
#include "vm.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_WORDS 8

static int status_cmd(struct conf *c, int argc, char **argv);

struct verb {
	const char *name, *args, *what;
	int min, max; /* words after the name */
	/* runs in a child with output on a pipe; NULL: the console's own */
	int (*run)(struct conf *c, int argc, char **argv);
	bool progress; /* long: ask for a progress line a second */
};

static const struct verb verbs[] = {
	{ "help", "", "this list", 0, 0, NULL, false },
	{ "list", "", "defined and running VMs: NAME STATE PID", 0, 0, cmd_list, false },
	{ "status", " NAME", "\"NAME running pid N\" (or paused, ...) or \"NAME stopped\"", 1, 1,
	  status_cmd, false },
	{ "run", " NAME", "start VM NAME from its definition", 1, 1, cmd_run, false },
	{ "stop", " NAME", "shut VM NAME down", 1, 1, cmd_stop, false },
	{ "save", " NAME [TARGET]", "save VM NAME (default: its configured image); QEMU exits", 1,
	  2, cmd_save, true },
	{ "restore", " TARGET", "start the VM saved in TARGET and resume it", 1, 1, cmd_restore,
	  true },
	{ "verify", " TARGET", "check completeness, signature and payload digest", 1, 1,
	  cmd_verify, false },
	{ "inspect", " TARGET", "header and embedded VM definition", 1, 1, cmd_inspect, false },
	{ "version", "", "version and build options", 0, 0, cmd_version, false },
	{ "quit", "", "end the session (also: exit, end of input)", 0, 0, NULL, false },
	{ "exit", "", NULL, 0, 0, NULL, false },
};

/* status NAME, in a child like the other commands. */
static int status_cmd(struct conf *c, int argc, char **argv)
{
	const char *name = argv[argc - 1];
	char path[CONF_PATH_MAX + CONF_NAME_MAX + 8], state[32];
	struct vm_paths p;
	pid_t pid;

	if (vm_paths(c, name, &p) < 0)
		return cmd_fail("status");
	pid = vm_pid(c, name);
	if (!pid) {
		if (str_fmt(path, sizeof(path), "%s/%s.vm", c->vm_dir, name) < 0 ||
		    access(path, F_OK) < 0) {
			err_set(EXIT_USAGE, "no VM '%s': neither running nor defined in %s", name,
				c->vm_dir);
			return cmd_fail("status");
		}
		printf("%s stopped\n", name);
		return EXIT_OK;
	}
	vm_state(c, name, 1000, state, sizeof(state));
	printf("%s %s pid %d\n", name, state, (int)pid);
	return EXIT_OK;
}

/* The target of save, restore, verify and inspect: only places the console
 * may use (console_allow.h); argv then names it resolved. */
static int confine(struct conf *c, const struct verb *v, char **argv, int argc, char *safe,
		   size_t size)
{
	bool save = v->run == cmd_save;

	if (!save && v->run != cmd_restore && v->run != cmd_verify && v->run != cmd_inspect)
		return 0;
	if (con_allow(c, argv[argc - 1], save, safe, size) < 0)
		return -1;
	argv[argc - 1] = safe;
	return 0;
}

/* v's words as a command line for its function, in a child. */
static int run_verb(struct conf *c, struct con *k, const struct verb *v, char **args, int nargs)
{
	struct conf_vm vm;
	char *argv[MAX_WORDS + 4], safe[PATH_MAX];
	int argc = 0;

	argv[argc++] = (char *)v->name;
	if (v->progress)
		argv[argc++] = "--verbose";
	if (nargs) /* words are never options, whatever they start with */
		argv[argc++] = "--";
	for (int i = 0; i < nargs; i++)
		argv[argc++] = args[i];
	if (v->run == cmd_save && nargs == 1) {
		conf_vm_get(c, args[0], &vm);
		argv[argc++] = vm.image;
	}
	argv[argc] = NULL;
	if (confine(c, v, argv, argc, safe, sizeof(safe)) < 0)
		return con_printf(k, "ERR %d %s", err_code(), err_msg());
	return con_run(k, c, v->run, argc, argv);
}

static int help(struct con *k)
{
	char use[32];

	con_printf(k, "commands:");
	for (size_t i = 0; i < ARRAY_SIZE(verbs); i++) {
		if (!verbs[i].what)
			continue;
		snprintf(use, sizeof(use), "%s%s", verbs[i].name, verbs[i].args);
		con_printf(k, "  %-20s %s", use, verbs[i].what);
	}
	con_printf(k, "every reply ends with OK or ERR CODE MESSAGE "
		      "(1 runtime failure, 2 usage, 3 image refused)");
	return con_printf(k, "OK");
}

/* One command line: 1 when the session ends, else 0. */
static int dispatch(struct conf *c, struct con *k)
{
	char *w[MAX_WORDS], *save;
	const struct verb *v = NULL;
	int n = 0;

	for (char *s = strtok_r(k->line, " \t", &save); s; s = strtok_r(NULL, " \t", &save)) {
		if (n == MAX_WORDS) {
			con_printf(k, "ERR %d too many words; try help", EXIT_USAGE);
			return 0;
		}
		w[n++] = s;
	}
	if (!n) /* an empty line is no command: no reply */
		return 0;
	for (size_t i = 0; i < ARRAY_SIZE(verbs) && !v; i++)
		if (!strcmp(w[0], verbs[i].name))
			v = &verbs[i];
	if (!v)
		con_printf(k, "ERR %d unknown command '%s'; try help", EXIT_USAGE, w[0]);
	else if (n - 1 < v->min || n - 1 > v->max)
		con_printf(k, "ERR %d usage: %s%s", EXIT_USAGE, v->name, v->args);
	else if (v->run)
		run_verb(c, k, v, w + 1, n - 1);
	else if (!strcmp(v->name, "help"))
		help(k);
	else {
		con_printf(k, "OK");
		return 1;
	}
	return 0;
}

static int session(struct conf *c, struct con *k)
{
	for (;;) {
		int r;

		con_prompt(k);
		if (k->broken)
			return -1;
		r = con_read_line(k);
		if (r < 0)
			return -1;
		if (r == CON_EOF)
			return 0;
		if (r == CON_LONG)
			con_printf(k, "ERR %d line too long", EXIT_USAGE);
		else if (r == CON_BAD)
			con_printf(k, "ERR %d line has control characters or invalid UTF-8",
				   EXIT_USAGE);
		else if (dispatch(c, k))
			return k->broken ? -1 : 0;
		if (k->broken)
			return -1;
	}
}

const char cmd_console_usage[] = "console [--tty DEV] [--baud N]";

int cmd_console(struct conf *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "tty", required_argument, 0, 't' },
		{ "baud", required_argument, 0, 'b' },
		{ 0 },
	};
	const char *tty = NULL, *baud_arg = NULL;
	unsigned long baud = 115200;
	struct con *k;
	int opt, rc;

	optind = 1;
	while ((opt = cmd_getopt(argc, argv, "", opts)) != -1) {
		switch (opt) {
		case 't': tty = optarg; break;
		case 'b': baud_arg = optarg; break;
		default: return cmd_usage(cmd_console_usage);
		}
	}
	if (argc != optind)
		return cmd_usage(cmd_console_usage);
	if (baud_arg && !tty) {
		err_set(EXIT_USAGE, "--baud %s: only with --tty (stdin keeps its own settings)", baud_arg);
		return cmd_fail("console");
	}
	if (baud_arg && parse_uint(baud_arg, 1, 4000000, &baud) < 0) {
		err_set(EXIT_USAGE, "--baud %s: use a standard rate such as 115200", baud_arg);
		return cmd_fail("console");
	}
	stor_refuse_links(); /* no symlink may lead a console command elsewhere */
	k = malloc(sizeof(*k));
	if (!k)
		return EXIT_FAIL;
	if (tty && con_open_tty(k, tty, baud) < 0) {
		free(k);
		return cmd_fail("console");
	}
	if (!tty)
		con_open_stdio(k);
	rc = session(c, k) < 0 ? cmd_fail("console") : EXIT_OK;
	con_close(k);
	free(k);
	return rc;
}
