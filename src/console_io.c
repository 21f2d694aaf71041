/* console_io: termios for the console's serial port, line input with echo,
 * backspace and length limits, and output lines safe for a terminal. */
#include "console_io.h"
#include "err.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const struct {
	unsigned long rate;
	speed_t code;
} bauds[] = {
	{ 1200, B1200 },     { 2400, B2400 },     { 4800, B4800 },   { 9600, B9600 },
	{ 19200, B19200 },   { 38400, B38400 },   { 57600, B57600 }, { 115200, B115200 },
	{ 230400, B230400 }, { 460800, B460800 }, { 921600, B921600 },
};

static void con_init(struct con *k)
{
	memset(k, 0, sizeof(*k));
	k->in = 0;
	k->out = 1;
}

int con_open_tty(struct con *k, const char *dev, unsigned long baud)
{
	struct termios t;
	size_t i;
	int fd;

	con_init(k);
	for (i = 0; i < ARRAY_SIZE(bauds) && bauds[i].rate != baud; i++)
		;
	if (i == ARRAY_SIZE(bauds))
		return err_set(EXIT_USAGE, "--baud %lu: use 1200, 2400, 4800, 9600, 19200, 38400, "
				"57600, 115200, 230400, 460800 or 921600", baud);
	/* O_NONBLOCK so that a modem port does not hang here waiting for carrier */
	fd = open(dev, O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return err_sys(EXIT_USAGE, "--tty %s", dev);
	if (!isatty(fd) || tcgetattr(fd, &k->tio) < 0) {
		close(fd);
		return err_set(EXIT_USAGE, "--tty %s: not a terminal; give a serial port", dev);
	}
	t = k->tio;
	cfmakeraw(&t);
	t.c_cflag &= ~(tcflag_t)(CSTOPB | PARENB | CRTSCTS);
	t.c_cflag |= CS8 | CLOCAL | CREAD; /* CLOCAL: ignore modem lines, no hangups */
	t.c_iflag &= ~(tcflag_t)(IXON | IXOFF | IXANY);
	t.c_cc[VMIN] = 1;
	t.c_cc[VTIME] = 0;
	if (cfsetispeed(&t, bauds[i].code) < 0 || cfsetospeed(&t, bauds[i].code) < 0 ||
	    tcsetattr(fd, TCSANOW, &t) < 0 || fcntl(fd, F_SETFL, 0) < 0) {
		err_sys(EXIT_FAIL, "--tty %s: setting %lu baud 8N1", dev, baud);
		close(fd);
		return -1;
	}
	k->in = k->out = fd;
	k->echo = k->crlf = k->prompt = k->restore_tio = true;
	return 0;
}

void con_open_stdio(struct con *k)
{
	con_init(k);
	k->prompt = isatty(0) && isatty(1); /* only someone at a terminal sees it */
}

void con_close(struct con *k)
{
	if (k->restore_tio)
		tcsetattr(k->in, TCSADRAIN, &k->tio);
	if (k->in > 2)
		close(k->in);
	k->restore_tio = false;
	k->in = 0;
	k->out = 1;
}

static int out(struct con *k, const void *b, size_t n)
{
	if (k->broken)
		return -1;
	if (write_all(k->out, b, n) < 0) {
		k->broken = true;
		return err_sys(EXIT_FAIL, "writing to the console");
	}
	return 0;
}

static void echo(struct con *k, const char *s, size_t n)
{
	if (k->echo)
		out(k, s, n);
}

/* Next input byte, -1 at the end, -2 if reading fails. */
static int next_byte(struct con *k)
{
	ssize_t n;

	if (k->rpos == k->rlen) {
		do
			n = read(k->in, k->rbuf, sizeof(k->rbuf));
		while (n < 0 && errno == EINTR);
		if (n < 0 && errno == EIO) /* a terminal whose other side hung up */
			n = 0;
		if (n < 0) {
			err_sys(EXIT_FAIL, "reading the console");
			return -2;
		}
		if (n == 0)
			return -1;
		k->rpos = 0;
		k->rlen = (size_t)n;
	}
	return (unsigned char)k->rbuf[k->rpos++];
}

static bool printable(unsigned char c)
{
	return c >= 0x20 && c != 0x7f;
}

/* Backspace: a UTF-8 character goes as a whole, continuation bytes first. */
static void erase(struct con *k)
{
	unsigned char c;

	if (k->too_long || !k->len)
		return;
	do
		c = (unsigned char)k->line[--k->len];
	while (k->len && (c & 0xc0) == 0x80);
	if (printable(c)) /* control characters were never echoed */
		echo(k, "\b \b", 3);
}

static void take(struct con *k, unsigned char c)
{
	if (c == 0x08 || c == 0x7f) {
		erase(k);
	} else if (c == 0x03 && k->echo) { /* ^C abandons the line, as in a shell */
		echo(k, "^C\r\n", 4);
		k->len = 0;
		k->too_long = false;
		con_prompt(k);
	} else if (k->too_long || k->len == CON_LINE_MAX) {
		k->too_long = true; /* the rest of the line is read and dropped */
	} else {
		k->line[k->len++] = (char)c; /* control bytes are kept to refuse the line */
		if (printable(c) || c == '\t')
			echo(k, (char *)&c, 1);
	}
}

/* Well-formed UTF-8 (no overlong forms, surrogates or code points past
 * U+10FFFF) without control characters other than tab. */
static bool text_ok(const unsigned char *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		unsigned c = s[i], len;
		uint32_t cp;

		if (c < 0x80) {
			if (!printable((unsigned char)c) && c != '\t')
				return false;
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			len = 2, cp = c & 0x1f;
		else if (c >= 0xe0 && c <= 0xef)
			len = 3, cp = c & 0x0f;
		else if (c >= 0xf0 && c <= 0xf4)
			len = 4, cp = c & 0x07;
		else
			return false;
		if (n - i < len)
			return false;
		for (unsigned j = 1; j < len; j++) {
			if ((s[i + j] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + j] & 0x3f);
		}
		if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff) || cp < 0xa0) /* cp < 0xa0: C1 controls */
			return false;
		i += len;
	}
	return true;
}

int con_read_line(struct con *k)
{
	bool any = false;
	int b;

	k->len = 0;
	k->too_long = false;
	for (;;) {
		b = next_byte(k);
		if (b == -2)
			return -1;
		if (b == -1) {
			if (!any)
				return CON_EOF;
			break; /* a last line without its end still counts */
		}
		if (k->skip_lf) {
			k->skip_lf = false;
			if (b == '\n') /* the LF of a CR LF */
				continue;
		}
		any = true;
		if (b == '\r' || b == '\n') {
			k->skip_lf = b == '\r';
			echo(k, "\r\n", 2);
			break;
		}
		take(k, (unsigned char)b);
	}
	k->line[k->len] = 0;
	if (k->too_long)
		return CON_LONG;
	return text_ok((const unsigned char *)k->line, k->len) ? CON_LINE : CON_BAD;
}

int con_put_line(struct con *k, const char *s, size_t n)
{
	char buf[256];
	size_t m = 0;

	while (n && (s[n - 1] == '\n' || s[n - 1] == '\r'))
		n--;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		/* a stray ESC or CR from a file name must not drive the terminal */
		buf[m++] = printable(c) || c == '\t' ? (char)c : '?';
		if (m == sizeof(buf) - 2) {
			if (out(k, buf, m) < 0)
				return -1;
			m = 0;
		}
	}
	if (k->crlf)
		buf[m++] = '\r';
	buf[m++] = '\n';
	return out(k, buf, m);
}

int con_printf(struct con *k, const char *fmt, ...)
{
	char buf[CON_LINE_MAX + 512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0)
		return -1;
	return con_put_line(k, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

int con_prompt(struct con *k)
{
	return k->prompt ? out(k, "vmsnap> ", 8) : 0;
}
