/* log: stderr or syslog output for people (see log.h). */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <syslog.h>

int log_verbose;
static bool use_syslog;

void log_to_syslog(bool on)
{
	if (on && !use_syslog)
		openlog("vmsnap", LOG_PID, LOG_DAEMON);
	use_syslog = on;
}

static void vlog(int prio, const char *tag, const char *fmt, va_list ap)
{
	char line[1024];

	vsnprintf(line, sizeof(line), fmt, ap);
	if (use_syslog)
		syslog(prio, "%s%s", tag, line);
	fprintf(stderr, "vmsnap: %s%s\n", tag, line);
}

#define LOGFN(fn, prio, tag, cond)                  \
	void fn(const char *fmt, ...)               \
	{                                           \
		va_list ap;                         \
		if (!(cond))                        \
			return;                     \
		va_start(ap, fmt);                  \
		vlog(prio, tag, fmt, ap);           \
		va_end(ap);                         \
	}

LOGFN(log_info, LOG_INFO, "", 1)
LOGFN(log_warn, LOG_WARNING, "warning: ", 1)
LOGFN(log_error, LOG_ERR, "", 1)
LOGFN(log_debug, LOG_DEBUG, "", log_verbose)
