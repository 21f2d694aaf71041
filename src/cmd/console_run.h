/* console_run: run one console command in a child process, relay its output
 * to the console line by line, and end the reply with OK or ERR CODE MSG. */
#ifndef VMSNAP_CONSOLE_RUN_H
#define VMSNAP_CONSOLE_RUN_H

#include "console_io.h"

struct conf;
typedef int con_fn(struct conf *c, int argc, char **argv);

/* fn(c, argc, argv) runs in a child (its own getopt and err state; a crash
 * stays there) with stdin /dev/null and stdout, stderr on a pipe to k. The
 * error it fails with (cmd_fail, through a pipe of its own) becomes
 * "ERR CODE MSG", CODE its exit status (1, 2 or 3); exit 0 becomes "OK".
 * -1 if the console broke. */
int con_run(struct con *k, struct conf *c, con_fn *fn, int argc, char **argv);

#endif
