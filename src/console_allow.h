/* console_allow: which paths a console command (save, restore, verify,
 * inspect) may name: under save_dir, a VM's configured image, or under or at
 * an entry of console_paths; never a symlink; a save never over a golden image. */
#ifndef VMSNAP_CONSOLE_ALLOW_H
#define VMSNAP_CONSOLE_ALLOW_H

#include <stdbool.h>
#include <stddef.h>

#include "conf.h"

/* Resolve path (its directory through realpath, its last part not followed)
 * into out and check it; save: the target of a save. A usage error names
 * the path and what the console allows. */
int con_allow(const struct conf *c, const char *path, bool save, char *out, size_t size);

#endif
