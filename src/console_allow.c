/* console_allow: the places a console command may name (console_allow.h).
 * Whoever sits at a serial port has no login: a path there must not reach
 * any file root could write, only the appliance's own image places. */
#include "console_allow.h"
#include "err.h"
#include "storage.h"
#include "util.h"
#include "verify.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* path with its directory resolved (realpath: no "..", no symlinks) and its
 * last part kept as it is, so that a symlink there is seen, not followed. */
static int resolve(const char *path, char *out, size_t size)
{
	char dir[PATH_MAX], real[PATH_MAX];
	const char *base = strrchr(path, '/');

	/* "." or ".." as base stays textual: what it names is a directory, refused later */
	base = base ? base + 1 : path;
	if (path_dir(dir, sizeof(dir), path) < 0 || !realpath(dir, real))
		return err_sys(EXIT_USAGE, "%s", path);
	return str_fmt(out, size, "%s/%s", strcmp(real, "/") ? real : "", base) < 0
		       ? err_set(EXIT_USAGE, "%s: path too long", path) : 0;
}

/* path is place or lies under it (a file has nothing under it). A place
 * that does not exist yet (an image not saved so far) is resolved like path. */
static bool within(const char *path, const char *place)
{
	char real[PATH_MAX];
	size_t n;

	if (!realpath(place, real))
		return resolve(place, real, sizeof(real)) == 0 && !strcmp(path, real);
	n = strlen(real);
	return n == 1 || !strcmp(path, real) || (!strncmp(path, real, n) && path[n] == '/');
}

static bool allowed(const struct conf *c, const char *path)
{
	char list[sizeof(c->console_paths)], *p, *save;

	if (within(path, c->save_dir))
		return true;
	/* a VM without a [vm] section has its image in save_dir */
	for (unsigned i = 0; i < c->n_vm; i++)
		if (within(path, c->vm[i].image))
			return true;
	str_copy(list, sizeof(list), c->console_paths);
	for (p = strtok_r(list, " \t", &save); p; p = strtok_r(NULL, " \t", &save))
		if (within(path, p))
			return true;
	return false;
}

int con_allow(const struct conf *c, const char *path, bool save, char *out, size_t size)
{
	struct stat st;
	bool exists;

	if (resolve(path, out, size) < 0)
		return -1;
	exists = lstat(out, &st) == 0;
	if ((exists && S_ISLNK(st.st_mode)) || !allowed(c, out))
		return err_set(EXIT_USAGE, "%s: %s", path,
			       exists && S_ISLNK(st.st_mode) ? "is a symbolic link: the console follows none"
			       : "the console only uses save_dir, the VMs' images and console_paths");
	if (save && exists && vfy_golden(out))
		return err_set(EXIT_USAGE, "%s holds a golden image: the console never overwrites one",
			       path);
	err_clear();
	return 0;
}
