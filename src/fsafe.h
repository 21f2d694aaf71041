/* fsafe: file-system checks that keep other local users out of what vmsnap
 * writes or trusts: its private run directory, the directories and temp files
 * of images, special files named as images, trusted key files. */
#ifndef VMSNAP_FSAFE_H
#define VMSNAP_FSAFE_H

#include <stdbool.h>
#include <sys/stat.h>

/* path (what: "run_dir") is a real directory (not a symlink) of vmsnap's
 * own uid that neither group nor others can write; else a usage error that
 * says how to fix it. */
int fsafe_private_dir(const char *path, const char *what);
/* The directory that will hold target path (and its temp file) can be
 * changed only by vmsnap's uid or root: owned by one of them and not
 * writable by group/others, unless sticky and root's (/tmp). */
int fsafe_target_dir(const char *path);
/* Open temp file path for writing: created fresh (O_EXCL, O_NOFOLLOW, 0600),
 * or, if one is left from a crash, reused only when it is a regular file of
 * ours with a single link. Returns the fd or -1 with err_*. */
int fsafe_open_tmp(const char *path);
/* Open a user-named image read-only without blocking on a FIFO (and, with
 * nofollow, without following a final symlink); the caller fstat()s it and
 * refuses what is no regular file or block device. Returns the fd or -1. */
int fsafe_open_read(const char *path, bool nofollow);
/* st (from lstat/fstat of what, e.g. "trusted key") is no symlink, root's
 * or ours, and not writable by group/others; else EXIT_REFUSED with the fix. */
int fsafe_trusted(const struct stat *st, const char *what, const char *path);

#endif
