/* log: messages for people, to stderr or syslog, with a verbosity level;
 * every line is prefixed "vmsnap:" so it can be told apart from QEMU's. */
#ifndef VMSNAP_LOG_H
#define VMSNAP_LOG_H

#include <stdbool.h>

extern int log_verbose;

void log_to_syslog(bool on);
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Only with --verbose. */
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
