/* fsafe: checks that keep other local users out of what vmsnap writes or
 * trusts: private directories, temp files, special files (fsafe.h). */
#include "fsafe.h"
#include "err.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

/* Another user could create, replace or remove names in a directory that is
 * group- or world-writable, or that belongs to someone else. */
static const char *dir_unsafe(const struct stat *st)
{
	uid_t me = geteuid();

	if (st->st_uid != me && st->st_uid != 0)
		return "belongs to another user";
	if (!(st->st_mode & (S_IWGRP | S_IWOTH)))
		return NULL;
	/* /tmp style: others may create names, but only their own can go */
	if ((st->st_mode & S_ISVTX) && st->st_uid == 0)
		return NULL;
	return "is writable by group or others";
}

int fsafe_private_dir(const char *path, const char *what)
{
	struct stat st;

	if (lstat(path, &st) < 0)
		return err_sys(EXIT_USAGE, "%s %s", what, path);
	if (S_ISLNK(st.st_mode) || !S_ISDIR(st.st_mode))
		return err_set(EXIT_USAGE, "%s %s is %s, not a directory: remove it so vmsnap creates it (mode 0700)",
			       what, path, S_ISLNK(st.st_mode) ? "a symbolic link" : "a file");
	if (st.st_uid != geteuid())
		return err_set(EXIT_USAGE,
			       "%s %s belongs to uid %u, not to vmsnap's uid %u: chown %u %s and chmod 0700 it (or remove it so vmsnap creates it)",
			       what, path, (unsigned)st.st_uid, (unsigned)geteuid(), (unsigned)geteuid(), path);
	if (st.st_mode & (S_IWGRP | S_IWOTH))
		return err_set(EXIT_USAGE,
			       "%s %s is writable by group or others (mode %04o): chmod 0700 %s (or remove it so vmsnap creates it)",
			       what, path, (unsigned)(st.st_mode & 07777), path);
	return 0;
}

int fsafe_target_dir(const char *path)
{
	char dir[4096];
	struct stat st;
	const char *why;

	if (path_dir(dir, sizeof(dir), path) < 0)
		return err_set(EXIT_USAGE, "%s: path too long", path);
	if (stat(dir, &st) < 0)
		return err_sys(EXIT_USAGE, "target directory %s", dir);
	why = dir_unsafe(&st);
	if (why)
		return err_set(EXIT_USAGE,
			       "target directory %s %s (owner uid %u, mode %04o): another user could swap the image; save to a directory only vmsnap's user writes",
			       dir, why, (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777));
	return 0;
}

/* An existing temp file is reused only if it is what an earlier vmsnap run
 * left: a plain file of ours with no other name (a hard link to a victim
 * file would make the save overwrite it). */
static int tmp_is_ours(int fd, const char *path)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return err_sys(EXIT_FAIL, "%s", path);
	if (!S_ISREG(st.st_mode) || st.st_uid != geteuid() || st.st_nlink != 1)
		return err_set(EXIT_FAIL,
			       "%s exists and was not left by vmsnap (%s): remove it and save again",
			       path, !S_ISREG(st.st_mode) ? "not a regular file"
			       : st.st_uid != geteuid() ? "another user's file" : "it has other names (hard links)");
	if (fchmod(fd, 0600) < 0)
		return err_sys(EXIT_FAIL, "%s", path);
	return 0;
}

int fsafe_open_tmp(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);

	if (fd >= 0 || errno != EEXIST)
		return fd >= 0 ? fd : err_sys(EXIT_FAIL, "creating %s", path);
	/* a stale one from a crash; O_NONBLOCK: a FIFO in its place must not hang us */
	fd = open(path, O_WRONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return err_sys(EXIT_FAIL, "%s exists and cannot be reused (remove it)", path);
	if (tmp_is_ours(fd, path) < 0 || fcntl(fd, F_SETFL, 0) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static const char *kind_of(mode_t m)
{
	if (S_ISCHR(m)) return "a character device";
	if (S_ISFIFO(m)) return "a pipe (FIFO)";
	if (S_ISSOCK(m)) return "a socket";
	if (S_ISDIR(m)) return "a directory";
	return "not a regular file";
}

int fsafe_open_read(const char *path, bool nofollow, struct stat *st)
{
	/* O_NONBLOCK: opening a FIFO would otherwise wait for a writer forever */
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | (nofollow ? O_NOFOLLOW : 0));

	if (fd < 0) {
		if (errno == ELOOP && nofollow)
			return err_set(EXIT_USAGE, "%s is a symbolic link: name the file itself", path);
		return err_sys(errno == ENOENT ? EXIT_USAGE : EXIT_FAIL, "image %s", path);
	}
	if (fstat(fd, st) < 0) {
		close(fd);
		return err_sys(EXIT_FAIL, "image %s", path);
	}
	if (!S_ISREG(st->st_mode) && !S_ISBLK(st->st_mode)) {
		close(fd);
		return err_set(EXIT_USAGE, "image %s is %s: images are regular files or block devices",
			       path, kind_of(st->st_mode));
	}
	if (fcntl(fd, F_SETFL, 0) < 0) {
		close(fd);
		return err_sys(EXIT_FAIL, "image %s", path);
	}
	return fd;
}

int fsafe_trusted(const struct stat *st, const char *what, const char *path)
{
	if (S_ISLNK(st->st_mode))
		return err_set(EXIT_REFUSED, "%s %s is a symbolic link: copy the key itself there", what,
			       path);
	if (st->st_uid != 0 && st->st_uid != geteuid())
		return err_set(EXIT_REFUSED, "%s %s belongs to uid %u, not root: chown root %s", what,
			       path, (unsigned)st->st_uid, path);
	if (st->st_mode & (S_IWGRP | S_IWOTH))
		return err_set(EXIT_REFUSED, "%s %s is writable by group or others (mode %04o): chmod go-w %s",
			       what, path, (unsigned)(st->st_mode & 07777), path);
	return 0;
}
