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

	base = base ? base + 1 : path;
	if (!*base || !strcmp(base, ".") || !strcmp(base, ".."))
		return err_set(EXIT_USAGE, "%s: name a file", path);
	if (path_dir(dir, sizeof(dir), path) < 0 || !realpath(dir, real))
		return err_sys(EXIT_USAGE, "%s", path);
	return str_fmt(out, size, "%s/%s", strcmp(real, "/") ? real : "", base) < 0
		       ? err_set(EXIT_USAGE, "%s: path too long", path) : 0;
}

/* path is place (a file, after resolve) or lies under it (a directory). */
static bool within(const char *path, const char *place)
{
	char real[PATH_MAX], file[PATH_MAX];
	size_t n;

	if (realpath(place, real)) {
		struct stat st;
		n = strlen(real);
		if (stat(real, &st) == 0 && S_ISDIR(st.st_mode))
			return n == 1 || (!strncmp(path, real, n) && path[n] == '/');
	}
	if (resolve(place, file, sizeof(file)) < 0) {
		err_clear();
		return false;
	}
	return !strcmp(path, file);
}

static bool allowed(const struct conf *c, const char *path)
{
	char list[sizeof(c->console_paths)], *p, *save;
	struct conf_vm vm;

	if (within(path, c->save_dir))
		return true;
	for (unsigned i = 0; i < c->n_vm; i++)
		if (within(path, c->vm[i].image))
			return true;
	for (unsigned i = 0; i < c->n_vms; i++) {
		conf_vm_get(c, c->vms[i], &vm);
		if (within(path, vm.image))
			return true;
	}
	str_copy(list, sizeof(list), c->console_paths);
	for (p = strtok_r(list, " \t", &save); p; p = strtok_r(NULL, " \t", &save))
		if (within(path, p))
			return true;
	return false;
}

static bool golden(const char *path)
{
	struct img_header h;
	uint64_t size;
	char *def;
	int fd;
	bool g = false;

	if (stor_open_image(path, &fd, &size) < 0)
		return false;
	if (vfy_read(fd, size, path, &h, &def) == 0) {
		g = h.flags & IMG_F_GOLDEN;
		free(def);
	}
	close(fd);
	return g;
}

int con_allow(const struct conf *c, const char *path, bool save, char *out, size_t size)
{
	struct stat st;
	bool exists;

	if (resolve(path, out, size) < 0)
		return -1;
	exists = lstat(out, &st) == 0;
	if (exists && S_ISLNK(st.st_mode))
		return err_set(EXIT_USAGE, "%s is a symbolic link: the console follows none", path);
	if (!allowed(c, out))
		return err_set(EXIT_USAGE,
			       "%s: the console only uses save_dir %s, the VMs' images and console_paths",
			       path, c->save_dir);
	if (save && exists && golden(out)) {
		err_clear();
		return err_set(EXIT_USAGE, "%s holds a golden image: the console never overwrites one",
			       path);
	}
	err_clear();
	return 0;
}
