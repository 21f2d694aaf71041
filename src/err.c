/* err: keeps the last failure's message and exit class (see err.h). */
#include "err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static char msg[512];
static int code;

static int vset(int c, int with_errno, const char *fmt, va_list ap)
{
	int saved = errno;
	int n = vsnprintf(msg, sizeof(msg), fmt, ap);

	if (with_errno && n >= 0 && (size_t)n < sizeof(msg))
		snprintf(msg + n, sizeof(msg) - n, ": %s", strerror(saved));
	code = c;
	errno = saved;
	return -1;
}

int err_set(int c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vset(c, 0, fmt, ap);
	va_end(ap);
	return -1;
}

int err_sys(int c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vset(c, 1, fmt, ap);
	va_end(ap);
	return -1;
}

int err_wrap(const char *fmt, ...)
{
	char old[sizeof(msg)];
	va_list ap;
	int n;

	memcpy(old, msg, sizeof(old));
	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n >= 0 && (size_t)n + 2 < sizeof(msg)) {
		memcpy(msg + n, ": ", 3);
		strncat(msg, old, sizeof(msg) - (size_t)n - 3);
	}
	return -1;
}

const char *err_msg(void)
{
	return msg[0] ? msg : "unknown error";
}

int err_code(void)
{
	return code ? code : EXIT_FAIL;
}

void err_clear(void)
{
	msg[0] = 0;
	code = 0;
}
