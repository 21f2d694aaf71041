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
int cmd_usage(const char *usage);
/* Print the pending error as "vmsnap: <name>: <msg>", return its exit code.
 * With cmd_err_fd set (a console command's child) the message goes there
 * alone, for the console's ERR reply. */
int cmd_fail(const char *name);
extern int cmd_err_fd;
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
/* Add an image's format, channels and direct_io to o (save, restore). */
void cmd_add_format(cJSON *o, int version, unsigned channels, bool direct_io);
/* Add the phase times of a save or restore (milliseconds) to o. */
struct snap_times;
/* The payload digest's phase: from where, bytes read, MB/s (nothing if none);
 * o NULL: the --verbose line instead. */
struct snap_digest;
void cmd_add_digest(cJSON *o, const struct snap_digest *d);
void cmd_add_times(cJSON *o, const struct snap_times *t);
/* Cold-start VM name from <vm_dir>/NAME.vm under its lock (start.c);
 * refuses if it already runs. */
int cmd_start_vm(const struct conf *c, const char *name);

/* The commands, and their usage text (beside each option table). */
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
/* resume's work for every VM in `vms`, or for n of them (watch's, for the
 * VMs it saved, when power returns). */
int cmd_resume_all(const struct conf *c);
int cmd_resume_some(const struct conf *c, const char (*names)[CONF_NAME_MAX], unsigned n);
int cmd_console(struct conf *c, int argc, char **argv);
int cmd_provision(struct conf *c, int argc, char **argv);
int cmd_version(struct conf *c, int argc, char **argv);

extern const char cmd_run_usage[];
extern const char cmd_stop_usage[];
extern const char cmd_list_usage[];
extern const char cmd_qmp_usage[];
extern const char cmd_save_usage[];
extern const char cmd_restore_usage[];
extern const char cmd_inspect_usage[];
extern const char cmd_verify_usage[];
extern const char cmd_keygen_usage[];
extern const char cmd_sign_usage[];
extern const char cmd_watch_usage[];
extern const char cmd_resume_usage[];
extern const char cmd_console_usage[];
extern const char cmd_provision_usage[];
extern const char cmd_version_usage[];

#endif
