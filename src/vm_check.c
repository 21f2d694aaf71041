/* vm_check: keeps a VM definition away from vmsnap's control plane: no
 * option value may name a file in run_dir or a QMP socket (see vm_def.h). */
#include "vm_def.h"
#include "err.h"
#include "util.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cJSON.h"

static const char IN_RUN_DIR[] = "names a file in run_dir";

struct roots {
	char lexical[PATH_MAX]; /* run_dir, absolute, '.' and '..' folded */
	char real[PATH_MAX];    /* the same with symlinks resolved */
	char cwd[PATH_MAX];     /* QEMU opens relative paths here until it daemonizes */
};

/* base/path (or path if absolute) with '//', '.' and '..' folded the way
 * the names read; no symlinks followed. */
static int fold(char *out, size_t size, const char *base, const char *path)
{
	char buf[2 * PATH_MAX], *save, *c;
	size_t n = 0;

	if (str_fmt(buf, sizeof(buf), "%s/%s", path[0] == '/' ? "" : base, path) < 0)
		return -1;
	out[0] = 0;
	for (c = strtok_r(buf, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
		size_t l = strlen(c);
		if (!strcmp(c, "."))
			continue;
		if (!strcmp(c, "..")) {
			while (n > 0 && out[--n] != '/')
				;
			out[n] = 0;
			continue;
		}
		if (n + 1 + l + 1 > size)
			return -1;
		out[n++] = '/';
		memcpy(out + n, c, l + 1);
		n += l;
	}
	if (!n)
		str_copy(out, size, "/");
	return 0;
}

/* The file the kernel would reach: symlinks resolved along the longest
 * prefix that exists, the rest folded. */
static int resolve(char *out, size_t size, const char *abs)
{
	char head[PATH_MAX], real[PATH_MAX];
	size_t cut = strlen(abs);

	if (cut >= sizeof(head))
		return -1;
	for (;;) {
		memcpy(head, abs, cut);
		head[cut] = 0;
		if (realpath(cut ? head : "/", real))
			return fold(out, size, real, abs[cut] ? abs + cut + 1 : ".");
		while (cut > 0 && abs[--cut] != '/')
			;
	}
}

static bool in_dir(const char *path, const char *dir)
{
	size_t n = strlen(dir);

	if (n == 1) /* run_dir "/" would make every path "inside" */
		return false;
	return !strncmp(path, dir, n) && (path[n] == '/' || !path[n]);
}

static bool is_qmp(const char *path)
{
	size_t n = strlen(path);

	return n >= 4 && !strcmp(path + n - 4, ".qmp");
}

/* Why a path (one piece of a value) must not reach QEMU, or NULL. */
static const char *path_problem(const char *p, const struct roots *r)
{
	char abs[PATH_MAX], real[PATH_MAX];
	/* A relative name QEMU may open before (cwd) or after (/) it
	 * daemonizes; a bare word is a path only if it exists. */
	const char *bases[2] = { r->cwd, "/" };
	int nb = p[0] == '/' ? 1 : strchr(p, '/') ? 2 : access(p, F_OK) == 0 ? 1 : 0;

	if (is_qmp(p))
		return "names a QMP socket (*.qmp): only vmsnap talks to QEMU's monitors";
	for (int i = 0; i < nb; i++) {
		if (fold(abs, sizeof(abs), bases[i], p) < 0 || resolve(real, sizeof(real), abs) < 0)
			return "is a path too long to check";
		if (in_dir(abs, r->lexical) || in_dir(abs, r->real) || in_dir(real, r->lexical) ||
		    in_dir(real, r->real))
			return IN_RUN_DIR;
		if (is_qmp(real))
			return "leads to a QMP socket (*.qmp): only vmsnap talks to QEMU's monitors";
	}
	return NULL;
}

/* Prefixes that make QEMU read a value as something else: "json:" a block
 * driver's options in a string (paths vmsnap would have to parse QEMU's way
 * to check), "mon:" a human monitor multiplexed on a character device (its
 * commands run programs: migrate "exec:"). */
static const char *prefix_problem(const char *v)
{
	if (!strncmp(v, "json:", 5))
		return "is a json: file name: give the block options as -blockdev JSON instead";
	if (!strncmp(v, "mon:", 4))
		return "opens a monitor (mon:): only vmsnap talks to QEMU's monitors";
	return NULL;
}

/* QEMU's key=value,... syntax (",," is a literal comma), a "proto:" prefix
 * ("unix:/path"): every item, its value and each ':' piece are checked. */
static const char *value_problem(const char *val, const struct roots *r)
{
	char item[PATH_MAX];
	const char *why;

	while (*val) {
		size_t n = 0;
		char *v, *save, *piece;

		for (; *val && (*val != ',' || val[1] == ','); val++) {
			if (n + 1 >= sizeof(item))
				return "has an item too long to check";
			item[n++] = *val;
			if (*val == ',')
				val++;
		}
		if (*val)
			val++;
		item[n] = 0;
		if (!n)
			continue;
		if ((why = path_problem(item, r)))
			return why;
		v = strchr(item, '=');
		v = v ? v + 1 : item;
		if ((why = prefix_problem(v)))
			return why;
		if (v != item && (why = path_problem(v, r)))
			return why;
		for (piece = strtok_r(v, ":", &save); piece; piece = strtok_r(NULL, ":", &save))
			if ((why = path_problem(piece, r)))
				return why;
	}
	return NULL;
}

/* JSON option values (-blockdev {...}): every string in them, decoded. */
static const char *json_problem(const cJSON *j, const struct roots *r)
{
	const cJSON *c;
	const char *why;

	if (cJSON_IsString(j))
		return value_problem(j->valuestring, r);
	cJSON_ArrayForEach(c, j)
		if ((why = json_problem(c, r)))
			return why;
	return NULL;
}

/* The whole value must be one JSON object: QEMU reads what follows it
 * ("{},file=...") as options, so cJSON's "stop after the object" would let
 * an unchecked path through. */
static const char *json_value_problem(const char *val, const struct roots *r)
{
	const char *why;
	cJSON *j = cJSON_ParseWithOpts(val, NULL, 1);

	if (!j)
		return "is JSON vmsnap cannot read (one object, nothing after it), so cannot check";
	why = json_problem(j, r);
	cJSON_Delete(j);
	return why;
}

static int roots_init(struct roots *r, const char *run_dir)
{
	if (!getcwd(r->cwd, sizeof(r->cwd)))
		str_copy(r->cwd, sizeof(r->cwd), "/");
	if (fold(r->lexical, sizeof(r->lexical), r->cwd, run_dir) < 0 ||
	    resolve(r->real, sizeof(r->real), r->lexical) < 0)
		return err_set(EXIT_USAGE, "run_dir %s: path too long", run_dir);
	return 0;
}

int vm_def_check(const struct vm_def *d, const char *run_dir)
{
	struct roots *r = malloc(sizeof(*r));
	const char *why = NULL;
	int i;

	if (!r)
		return err_sys(EXIT_FAIL, "%s", d->origin);
	if (roots_init(r, run_dir) < 0) {
		free(r);
		return -1;
	}
	/* argv[i] is a value when it shares its line with the option before it. */
	for (i = 1; i < d->argc && !why; i++) {
		const char *val = d->argv[i];
		if (d->line[i] != d->line[i - 1])
			continue;
		if (val[0] == '{') {
			why = json_value_problem(val, r);
		} else {
			why = value_problem(val, r);
		}
	}
	free(r);
	if (!why)
		return vm_def_check_agent(d);
	i--;
	if (why == IN_RUN_DIR)
		return err_set(d->code ? d->code : EXIT_USAGE,
			       "%s:%d: option %s '%.200s' names a file in run_dir %s, where vmsnap keeps each VM's QMP socket, pidfile and lock",
			       d->origin, d->line[i], d->argv[i - 1], d->argv[i], run_dir);
	return err_set(d->code ? d->code : EXIT_USAGE, "%s:%d: option %s '%.200s' %s", d->origin,
		       d->line[i], d->argv[i - 1], d->argv[i], why);
}

/* Is option o (its name, no '-') in list ("m smp,device ...")? */
static bool listed(const char *list, const char *o)
{
	size_t n = strlen(o);

	for (const char *p = list; *p;) {
		size_t l = strcspn(p, " ,\t");
		if (l == n && !strncmp(p, o, n))
			return true;
		p += l;
		p += strspn(p, " ,\t");
	}
	return false;
}

int vm_def_allowed(const struct vm_def *d, const char *list, const char *key)
{
	for (int i = 0; i < d->argc; i++) {
		const char *o = d->argv[i];
		if (i > 0 && d->line[i] == d->line[i - 1])
			continue; /* a value */
		o += o[1] == '-' ? 2 : 1;
		if (!listed(list, o))
			return err_set(d->code ? d->code : EXIT_USAGE,
				       "%s:%d: option %s is not in %s, and the image's signature was not checked",
				       d->origin, d->line[i], d->argv[i], key);
	}
	return 0;
}
