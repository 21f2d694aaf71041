/* console_io: the console's terminal: a serial port set raw, 8N1, at a
 * standard baud rate, or stdin/stdout; line input with echo and editing. */
#ifndef VMSNAP_CONSOLE_IO_H
#define VMSNAP_CONSOLE_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <termios.h>

#define CON_LINE_MAX 1024 /* bytes in a command line, without its end */

/* What con_read_line found. */
enum { CON_EOF, CON_LINE, CON_LONG, CON_BAD };

struct con {
	int in, out;
	bool echo;   /* we echo and erase typed characters (raw serial port) */
	bool crlf;   /* output lines end with CR LF */
	bool prompt; /* a person may be typing: show a prompt */
	bool broken; /* output failed: the other side is gone */
	bool restore_tio;
	struct termios tio; /* the port's settings before we changed them */
	bool skip_lf;       /* the last line ended with CR: an LF next is its end too */
	bool too_long, bad; /* the line being read */
	size_t len, rpos, rlen;
	char line[CON_LINE_MAX + 1];
	char rbuf[512];
};

/* Open dev as the console: raw input, 8N1, no flow control, baud (one of
 * the standard rates; a usage error otherwise), echo and CRLF. */
int con_open_tty(struct con *k, const char *dev, unsigned long baud);
/* stdin/stdout; a terminal there keeps its own line editing and echo,
 * and its own LF to CR LF. */
void con_open_stdio(struct con *k);
/* Give the port its old settings back and close it. */
void con_close(struct con *k);

/* Next line into k->line (NUL-terminated): CON_LINE, CON_LONG (more than
 * CON_LINE_MAX bytes, discarded), CON_BAD (control characters or invalid
 * UTF-8), CON_EOF; -1 with err_* if reading fails. */
int con_read_line(struct con *k);

/* One output line, its end added, unprintable bytes shown as '?'. Failures
 * set k->broken and return -1. */
int con_put_line(struct con *k, const char *s, size_t n);
int con_printf(struct con *k, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "vmsnap> " without a line end, when a person may be typing. */
int con_prompt(struct con *k);

#endif
