/* list: every VM defined in vm_dir or running under run_dir, one line each
 * (NAME STATE PID), or a JSON array with --json. */
#include "cmd.h"
#include "err.h"
#include "qmp.h"
#include "util.h"
#include "vm.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LIST_MAX 256

struct entry {
	char name[CONF_NAME_MAX];
	bool defined;
};

static int add_dir(struct entry *e, int n, const char *dir, const char *suffix, bool defined)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t sl = strlen(suffix);

	if (!d)
		return n;
	while ((de = readdir(d)) && n < LIST_MAX) {
		size_t l = strlen(de->d_name);
		char name[CONF_NAME_MAX];
		int i;

		if (l <= sl || strcmp(de->d_name + l - sl, suffix) || l - sl >= sizeof(name))
			continue;
		memcpy(name, de->d_name, l - sl);
		name[l - sl] = 0;
		if (!conf_name_ok(name))
			continue;
		for (i = 0; i < n && strcmp(e[i].name, name); i++)
			;
		if (i == n)
			str_copy(e[n++].name, sizeof(e[0].name), name);
		e[i].defined |= defined;
	}
	closedir(d);
	return n;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct entry *)a)->name, ((const struct entry *)b)->name);
}

/* running, paused, ... as QEMU says; "busy" when another client holds QMP. */
static void state_of(const struct conf *c, const char *name, pid_t pid, char *out, size_t size)
{
	if (pid)
		vm_state(c, name, QMP_TIMEOUT_MS, out, size);
	else
		str_copy(out, size, "stopped");
}

const char cmd_list_usage[] = "list [--json]";

int cmd_list(struct conf *c, int argc, char **argv)
{
	static const struct option opts[] = { { "json", no_argument, 0, 'j' }, { 0 } };
	struct entry *e = calloc(LIST_MAX, sizeof(*e));
	bool json = false;
	int n = 0, opt;
	cJSON *arr;

	optind = 1;
	while ((opt = cmd_getopt(argc, argv, "", opts)) != -1) {
		if (opt != 'j') {
			free(e);
			return cmd_usage(cmd_list_usage);
		}
		json = true;
	}
	if (!e || argc != optind) {
		free(e);
		return cmd_usage(cmd_list_usage);
	}
	n = add_dir(e, n, c->vm_dir, ".vm", true);
	n = add_dir(e, n, c->run_dir, ".pid", false);
	qsort(e, (size_t)n, sizeof(*e), by_name);
	arr = cJSON_CreateArray();
	for (int i = 0; i < n; i++) {
		pid_t pid = vm_pid(c, e[i].name);
		char state[32];
		cJSON *o = cJSON_CreateObject();
		state_of(c, e[i].name, pid, state, sizeof(state));
		cJSON_AddStringToObject(o, "name", e[i].name);
		cJSON_AddStringToObject(o, "state", state);
		cJSON_AddNumberToObject(o, "pid", pid);
		cJSON_AddBoolToObject(o, "defined", e[i].defined);
		cJSON_AddItemToArray(arr, o);
		if (!json)
			printf("%-20s %-10s %d\n", e[i].name, state, (int)pid);
	}
	if (json)
		cmd_print_json(arr);
	else
		cJSON_Delete(arr);
	free(e);
	return EXIT_OK;
}
