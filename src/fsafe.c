/* fsafe: checks that keep other local users out of what vmsnap writes or
 * trusts: private directories, temp files, special files (fsafe.h). */
#include "fsafe.h"
#include "err.h"
#include "util.h"

#include <limits.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

/* Why another user could change what st describes (NULL: nobody can): it
 * is theirs, or group/other-writable (for a directory, unless sticky and
 * root's, like /tmp: others cannot replace names there that are not theirs). */
static const char *unsafe(const struct stat *st, bool sticky_ok)
{
	if (st->st_uid != geteuid() && st->st_uid != 0)
		return "belongs to another user";
	if (!(st->st_mode & (S_IWGRP | S_IWOTH)))
		return NULL;
	if (sticky_ok && (st->st_mode & S_ISVTX) && st->st_uid == 0)
		return NULL;
	return "is writable by group or others";
}

int fsafe_private_dir(const char *path, const char *what)
{
	struct stat st;

	if (lstat(path, &st) < 0)
		return err_sys(EXIT_USAGE, "%s %s", what, path);
	if (S_ISDIR(st.st_mode) && st.st_uid == geteuid() && !(st.st_mode & (S_IWGRP | S_IWOTH)))
		return 0;
	return err_set(EXIT_USAGE,
		       "%s %s must be a directory (no symlink) of uid %u that group and others cannot write; it is %s of uid %u, mode %04o: chown %u and chmod 0700 it, or remove it so vmsnap creates it",
		       what, path, (unsigned)geteuid(),
		       S_ISLNK(st.st_mode) ? "a symbolic link" : S_ISDIR(st.st_mode) ? "a directory" : "a file",
		       (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777), (unsigned)geteuid());
}

int fsafe_target_dir(const char *path)
{
	char dir[PATH_MAX];
	struct stat st;
	const char *why;

	if (path_dir(dir, sizeof(dir), path) < 0)
		return err_set(EXIT_USAGE, "%s: path too long", path);
	if (stat(dir, &st) < 0)
		return err_sys(EXIT_USAGE, "target directory %s", dir);
	why = S_ISDIR(st.st_mode) ? unsafe(&st, true) : "is not a directory";
	if (why)
		return err_set(EXIT_USAGE,
			       "target directory %s %s: another user could swap the image; save to a directory only vmsnap's user (or root) writes",
			       dir, why);
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
	if (tmp_is_ours(fd, path) < 0) { /* O_NONBLOCK left: a regular file ignores it */
		close(fd);
		return -1;
	}
	return fd;
}

int fsafe_open_read(const char *path, bool nofollow)
{
	/* O_NONBLOCK: opening a FIFO would otherwise wait for a writer forever */
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | (nofollow ? O_NOFOLLOW : 0));

	if (fd < 0)
		return err_sys(errno == ENOENT ? EXIT_USAGE : EXIT_FAIL, "image %s", path);
	fcntl(fd, F_SETFL, 0); /* back to blocking reads; cannot fail on our own fd */
	return fd;
}

int fsafe_trusted(const struct stat *st, const char *what, const char *path)
{
	const char *why = unsafe(st, false);

	if (why)
		return err_set(EXIT_REFUSED,
			       "%s %s %s: only root may change trusted keys; chown root and chmod go-w it",
			       what, path, why);
	return 0;
}
