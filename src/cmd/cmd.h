/* cmd: the command table and what every command shares: the loaded
 * configuration, option parsing helpers, usage errors. */
#ifndef VMSNAP_CMD_H
#define VMSNAP_CMD_H

#include <getopt.h>
#include <stdbool.h>

#include "cJSON.h"
#include "conf.h"
#include "config.h"

struct cmd {
	const char *name;
	int (*run)(struct conf *c, int argc, char **argv);
	const char *usage;
};

extern const struct cmd cmd_table[];

/* Print "usage: vmsnap <usage>" and return EXIT_USAGE. */
int cmd_usage(const struct cmd *cmd);
/* Print the pending error as "vmsnap: <name>: <msg>", return its exit code. */
int cmd_fail(const char *name);
/* getopt_long with our conventions: unknown options are usage errors that
 * name the option. Returns the option, -1 at the end, '?' on error. */
int cmd_getopt(int argc, char **argv, const char *shortopts, const struct option *longopts);
const struct cmd *cmd_find(const char *name);
/* --parallel-channels N: 1..CONFIG_MAX_CHANNELS. */
int cmd_channels(const char *arg, unsigned *out);
/* --bypass-cache in a build without O_DIRECT: an error if insisted, else off. */
int cmd_bypass(bool *bypass, bool insisted);
/* Print o as one line of JSON and free it. */
void cmd_print_json(cJSON *o);
/* Add the phase times of a save or restore (milliseconds) to o. */
struct snap_times;
/* The payload digest's phase: from where, bytes read, MB/s (nothing if none);
 * o NULL: the --verbose line instead. */
struct snap_digest;
void cmd_add_digest(cJSON *o, const struct snap_digest *d);
void cmd_add_times(cJSON *o, const struct snap_times *t);

int cmd_run(struct conf *c, int argc, char **argv);
int cmd_stop(struct conf *c, int argc, char **argv);
int cmd_list(struct conf *c, int argc, char **argv);
int cmd_qmp(struct conf *c, int argc, char **argv);
int cmd_save(struct conf *c, int argc, char **argv);
int cmd_restore(struct conf *c, int argc, char **argv);
int cmd_inspect(struct conf *c, int argc, char **argv);
int cmd_verify(struct conf *c, int argc, char **argv);
int cmd_keygen(struct conf *c, int argc, char **argv);
int cmd_sign(struct conf *c, int argc, char **argv);
int cmd_watch(struct conf *c, int argc, char **argv);
int cmd_resume(struct conf *c, int argc, char **argv);
int cmd_console(struct conf *c, int argc, char **argv);
int cmd_provision(struct conf *c, int argc, char **argv);
int cmd_version(struct conf *c, int argc, char **argv);

#endif
