/* vm_def: VM definitions (see vm_def.h): one QEMU option per line, parsed
 * into an argv with the options vmsnap manages itself refused. */
#include "vm_def.h"
#include "err.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

/* Options vmsnap adds itself, or that would let a definition take over the
 * host side (another monitor, a config file, detaching, chroot, the
 * sandbox and user QEMU runs with: vmsnap's policy, not the definition's). */
static const char *const forbidden[] = {
	"qmp", "qmp-pretty", "monitor", "mon", "pidfile", "daemonize", "S", "incoming",
	"loadvm", "readconfig", "chroot", "runas", "run-with", "nographic", "sandbox",
};

static bool is_forbidden(const char *opt)
{
	const char *o = opt + (opt[1] == '-' ? 2 : 1); /* QEMU takes -x and --x alike */

	for (size_t i = 0; i < ARRAY_SIZE(forbidden); i++)
		if (!strcmp(o, forbidden[i]))
			return true;
	return false;
}

/* A value that starts with '-' is read by QEMU as the next option when the
 * option before it takes none ("-nodefaults -readconfig"): refused, except
 * for the kernel command line, which is free text. */
static bool value_is_option(const char *opt, const char *val)
{
	const char *o = opt + (opt[1] == '-' ? 2 : 1);

	return val[0] == '-' && strcmp(o, "append") != 0;
}

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t' || *s == '\r')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
		*--e = 0;
	return s;
}

/* One line of the definition: its option, and its value if it has one,
 * appended to d->argv. The caller frees d on failure (the message is made
 * first: opt points into d). */
static int add_line(struct vm_def *d, char *p, int line, const char *origin)
{
	char *opt = trim(p), *val;

	if (!*opt || *opt == '#')
		return 0;
	if (opt[0] != '-' || !opt[1])
		return err_set(d->code, "%s:%d: '%s': each line is one QEMU option starting with '-'",
			       origin, line, opt);
	val = opt + strcspn(opt, " \t");
	if (*val) {
		*val++ = 0;
		val = trim(val);
	}
	if (is_forbidden(opt))
		return err_set(d->code, "%s:%d: option %s is not allowed: vmsnap manages it", origin,
			       line, opt);
	if (value_is_option(opt, val))
		return err_set(d->code,
			       "%s:%d: option %s: value '%.100s' starts with '-': QEMU could read it as an option",
			       origin, line, opt, val);
	if (d->argc + 2 > VM_ARGS_MAX)
		return err_set(d->code, "%s:%d: more than %d arguments", origin, line, VM_ARGS_MAX);
	d->line[d->argc] = line;
	d->argv[d->argc++] = opt;
	if (*val) {
		d->line[d->argc] = line;
		d->argv[d->argc++] = val;
	}
	return 0;
}

int vm_def_parse(struct vm_def *d, const char *text, size_t len, const char *origin, int code)
{
	char *p, *next;
	int line = 0;

	memset(d, 0, sizeof(*d));
	d->code = code;
	str_trunc(d->origin, sizeof(d->origin), origin);
	if (memchr(text, 0, len))
		return err_set(code, "%s: the definition contains a NUL byte", origin);
	d->text = malloc(len + 1);
	d->store = malloc(len + 1);
	if (!d->text || !d->store) {
		vm_def_free(d);
		return err_sys(EXIT_FAIL, "%s", origin);
	}
	memcpy(d->text, text, len);
	d->text[len] = 0;
	d->len = len;
	memcpy(d->store, text, len);
	d->store[len] = 0;
	for (p = d->store; p; p = next) {
		next = strchr(p, '\n');
		if (next)
			*next++ = 0;
		if (add_line(d, p, ++line, origin) < 0) {
			vm_def_free(d);
			return -1;
		}
	}
	if (!d->argc) {
		vm_def_free(d);
		return err_set(code, "%s: the definition has no QEMU options", origin);
	}
	return 0;
}

int vm_def_load(struct vm_def *d, const char *path)
{
	char *text;
	size_t len;
	int rc;

	if (read_file(path, 64 << 10, &text, &len) < 0)
		return -1;
	rc = vm_def_parse(d, text, len, path, EXIT_USAGE);
	free(text);
	return rc;
}

void vm_def_free(struct vm_def *d)
{
	free(d->text);
	free(d->store);
	memset(d, 0, sizeof(*d));
}
