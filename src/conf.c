/* conf: parses the configuration file with inih into struct conf. */
#include "conf.h"
#include "err.h"
#include "util.h"
#include "config.h"

#include "ini.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONF_FILE_MAX (1 << 20) /* a config file is a page or two */

enum kind { K_PATH, K_BOOL, K_VERSION, K_CHANNELS, K_MS, K_LIST, K_USER, K_OPTS };

struct key {
	const char *name;
	enum kind kind;
	size_t off;
};

#define KEY(n, k) { #n, k, offsetof(struct conf, n) }
static const struct key keys[] = {
	{ "save_image_version", K_VERSION, offsetof(struct conf, image_version) },
	KEY(vm_dir, K_PATH),
	KEY(run_dir, K_PATH),
	KEY(save_dir, K_PATH),
	KEY(qemu, K_PATH),
	{ "parallel_channels", K_CHANNELS, offsetof(struct conf, channels) },
	KEY(bypass_cache, K_BOOL),
	KEY(sign_key, K_PATH),
	KEY(trusted_keys, K_PATH),
	KEY(require_signature, K_BOOL),
	KEY(verify_payload, K_BOOL),
	KEY(qemu_sandbox, K_BOOL),
	KEY(qemu_spawn, K_BOOL),
	KEY(qemu_user, K_USER),
	KEY(unsigned_options, K_OPTS),
	KEY(powerfail_deadline_ms, K_MS),
	KEY(powerfail_trigger, K_PATH),
	KEY(vms, K_LIST),
	KEY(console_paths, K_PATH),
};

void conf_defaults(struct conf *c)
{
	memset(c, 0, sizeof(*c));
	c->image_version = CONFIG_DEFAULT_IMAGE_VERSION;
	str_copy(c->vm_dir, sizeof(c->vm_dir), CONFIG_DEFAULT_VM_DIR);
	str_copy(c->run_dir, sizeof(c->run_dir), CONFIG_DEFAULT_RUN_DIR);
	str_copy(c->save_dir, sizeof(c->save_dir), CONFIG_DEFAULT_SAVE_DIR);
	str_copy(c->qemu, sizeof(c->qemu), CONFIG_QEMU_PATH);
	str_copy(c->trusted_keys, sizeof(c->trusted_keys), "/etc/vmsnap/trusted");
	c->verify_payload = true;
	c->qemu_sandbox = true;
	c->powerfail_deadline_ms = 10000;
}

struct ctx {
	struct conf *c;
	const char *file;
};

static int bad(const struct ctx *x, int line, const char *key, const char *val, const char *want)
{
	return err_set(EXIT_USAGE, "%s:%d: %s = '%s': %s", x->file, line, key, val, want);
}

static int parse_bool(const char *v, bool *out)
{
	if (!strcmp(v, "yes") || !strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "on"))
		*out = true;
	else if (!strcmp(v, "no") || !strcmp(v, "false") || !strcmp(v, "0") || !strcmp(v, "off"))
		*out = false;
	else
		return -1;
	return 0;
}

static int set_list(struct ctx *x, int line, const char *key, const char *val)
{
	char buf[CONF_MAX_VMS * CONF_NAME_MAX], *tok, *save;

	if (str_copy(buf, sizeof(buf), val) < 0)
		return bad(x, line, key, val, "list too long");
	x->c->n_vms = 0;
	for (tok = strtok_r(buf, " ,\t", &save); tok; tok = strtok_r(NULL, " ,\t", &save)) {
		if (!conf_name_ok(tok))
			return bad(x, line, key, tok, "VM names use letters, digits, '_', '-', '.' (not first); 'watch' is reserved");
		if (x->c->n_vms == CONF_MAX_VMS)
			return bad(x, line, key, val, "at most 16 VMs");
		str_copy(x->c->vms[x->c->n_vms++], CONF_NAME_MAX, tok);
	}
	return 0;
}

static int set_global(struct ctx *x, int line, const char *name, const char *val)
{
	unsigned long n;

	for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
		void *p = (char *)x->c + keys[i].off;

		if (strcmp(keys[i].name, name))
			continue;
		switch (keys[i].kind) {
		case K_PATH:
			if (str_copy(p, CONF_PATH_MAX, val) < 0)
				return bad(x, line, name, val, "longer than 255 characters");
			if ((!strcmp(name, "powerfail_trigger") || !strcmp(name, "console_paths")) &&
			    val[0] != '/')
				return bad(x, line, name, val, "must be an absolute path");
			return 0;
		case K_BOOL:
			if (parse_bool(val, p) < 0)
				return bad(x, line, name, val, "use yes or no");
			return 0;
		case K_VERSION:
			if (parse_uint(val, 2, 3, &n) < 0)
				return bad(x, line, name, val, "use 2 or 3");
			*(int *)p = (int)n;
			return 0;
		case K_CHANNELS:
			if (!strcmp(val, "auto"))
				n = 0;
			else if (parse_uint(val, 1, CONFIG_MAX_CHANNELS, &n) < 0)
				return err_set(EXIT_USAGE, "%s:%d: %s = '%s': use auto or 1..%d", x->file,
					       line, name, val, CONFIG_MAX_CHANNELS);
			*(unsigned *)p = (unsigned)n;
			return 0;
		case K_MS:
			if (parse_uint(val, 1, 3600000, &n) < 0)
				return bad(x, line, name, val, "use milliseconds, 1..3600000");
			*(unsigned *)p = (unsigned)n;
			return 0;
		case K_LIST:
			return set_list(x, line, name, val);
		case K_OPTS: /* QEMU option names, without '-', split by ' ' or ',' */
			if (strspn(val, "abcdefghijklmnopqrstuvwxyz0123456789_-, \t") != strlen(val) ||
			    str_copy(p, sizeof(x->c->unsigned_options), val) < 0)
				return bad(x, line, name, val,
					   "QEMU option names (m smp device ...), at most 1023 characters");
			return 0;
		case K_USER: /* it becomes "-run-with user=NAME": no ',' may reach QEMU */
			if (val[0] && (val[0] == '-' || strspn(val, "abcdefghijklmnopqrstuvwxyz"
					 "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") != strlen(val) ||
				       str_copy(p, CONF_NAME_MAX, val) < 0))
				return bad(x, line, name, val,
					   "a user name: letters, digits, '_', '.', '-' (not first), at most 63");
			str_copy(p, CONF_NAME_MAX, val);
			return 0;
		}
	}
	return err_set(EXIT_USAGE, "%s:%d: unknown key '%s'", x->file, line, name);
}

static int set_vm(struct ctx *x, int line, const char *section, const char *name, const char *val)
{
	const char *vmname = section + 3;
	struct conf *c = x->c;
	struct conf_vm *vm = NULL;

	if (strncmp(section, "vm ", 3) || !conf_name_ok(vmname))
		return err_set(EXIT_USAGE, "%s:%d: unknown section [%s]; use [vm NAME]", x->file, line,
			       section);
	for (unsigned i = 0; i < c->n_vm; i++)
		if (!strcmp(c->vm[i].name, vmname))
			vm = &c->vm[i];
	if (!vm) {
		if (c->n_vm == CONF_MAX_VMS)
			return err_set(EXIT_USAGE, "%s:%d: at most %d [vm] sections", x->file, line,
				       CONF_MAX_VMS);
		vm = &c->vm[c->n_vm++];
		str_copy(vm->name, sizeof(vm->name), vmname);
	}
	if (!strcmp(name, "image")) {
		if (str_copy(vm->image, sizeof(vm->image), val) < 0)
			return bad(x, line, name, val, "longer than 255 characters");
	} else if (!strcmp(name, "instant")) {
		if (parse_bool(val, &vm->instant) < 0)
			return bad(x, line, name, val, "use yes or no");
	} else if (!strcmp(name, "guest_time_sync")) {
		bool on;
		if (parse_bool(val, &on) < 0)
			return bad(x, line, name, val, "use yes or no");
		vm->no_time_sync = !on;
	} else
		return err_set(EXIT_USAGE, "%s:%d: unknown key '%s' in [%s]", x->file, line, name,
			       section);
	return 0;
}

static int handler(void *user, const char *section, const char *name, const char *val, int line)
{
	struct ctx *x = user;
	int rc = section[0] ? set_vm(x, line, section, name, val) : set_global(x, line, name, val);

	return rc < 0 ? 0 : 1;
}

/* All of f as text. inih misreads a NUL byte after an over-long line (it
 * indexes before its buffer; found by fuzz_conf), so a NUL is refused here
 * and inih parses the text from memory, where it never sees one. */
static int read_text(FILE *f, const char *path, char **out)
{
	size_t len = 0, cap = 4096;
	char *buf = malloc(cap), *nul, *more;
	int line = 1;

	for (;;) {
		if (!buf)
			return err_sys(EXIT_FAIL, "config %s", path);
		len += fread(buf + len, 1, cap - len - 1, f);
		if (len < cap - 1 || cap >= CONF_FILE_MAX)
			break;
		more = realloc(buf, cap *= 2);
		if (!more)
			free(buf);
		buf = more;
	}
	buf[len] = 0;
	if (ferror(f) || (len == cap - 1 && fgetc(f) != EOF)) {
		free(buf);
		return ferror(f) ? err_sys(EXIT_USAGE, "config %s", path)
				 : err_set(EXIT_USAGE, "config %s: larger than %d bytes", path, CONF_FILE_MAX - 1);
	}
	if ((nul = memchr(buf, 0, len))) {
		for (char *p = buf; p < nul; p++)
			line += *p == '\n';
		free(buf);
		return err_set(EXIT_USAGE, "%s:%d: a NUL byte: not a text file", path, line);
	}
	*out = buf;
	return 0;
}

int conf_load(struct conf *c, const char *path, bool required)
{
	struct ctx x = { c, path };
	FILE *f = fopen(path, "re");
	char *text = NULL;
	int rc;

	if (!f) {
		if (errno == ENOENT && !required)
			return 0;
		return err_sys(EXIT_USAGE, "config %s", path);
	}
	if (str_copy(c->path, sizeof(c->path), path) < 0) {
		fclose(f);
		return err_set(EXIT_USAGE, "config path %s: too long", path);
	}
	rc = read_text(f, path, &text);
	fclose(f);
	if (rc < 0)
		return -1;
	err_clear();
	rc = ini_parse_string(text, handler, &x);
	free(text);
	if (rc > 0 && err_code() == EXIT_FAIL) /* inih's own syntax error: no message yet */
		return err_set(EXIT_USAGE, "%s:%d: expected 'key = value', '# comment' or '[vm NAME]'",
			       path, rc);
	if (rc != 0)
		return rc == -2 ? err_set(EXIT_FAIL, "%s: out of memory", path) : -1;
	return 0;
}

void conf_vm_get(const struct conf *c, const char *name, struct conf_vm *out)
{
	memset(out, 0, sizeof(*out));
	str_copy(out->name, sizeof(out->name), name);
	for (unsigned i = 0; i < c->n_vm; i++)
		if (!strcmp(c->vm[i].name, name))
			*out = c->vm[i];
	/* The default follows save_dir wherever the file sets it. */
	if (!out->image[0] && str_fmt(out->image, sizeof(out->image), "%s/%s.img", c->save_dir, name) < 0)
		out->image[0] = 0;
}

int conf_name_ok(const char *name)
{
	size_t n = strlen(name);

	/* "watch": <run_dir>/watch.pid is the daemon's, a VM's pidfile would replace it */
	if (n == 0 || n >= CONF_NAME_MAX || name[0] == '.' || name[0] == '-' || !strcmp(name, "watch"))
		return 0;
	for (size_t i = 0; i < n; i++) {
		char ch = name[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		      ch == '_' || ch == '-' || ch == '.'))
			return 0;
	}
	return 1;
}
