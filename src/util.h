/* util: small helpers every module needs: clocks, whole-file and full-length
 * I/O, bounded string copies, size formatting, the usable CPU count. */
#ifndef VMSNAP_UTIL_H
#define VMSNAP_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define ALIGN_UP(x, a) (((x) + (a) - 1) / (a) * (a))

/* Bytes [start, end) of a file. */
struct file_range {
	uint64_t start, end;
};

/* Monotonic clock in milliseconds and microseconds. */
uint64_t now_ms(void);
uint64_t now_us(void);

/* Copy with truncation check: -1 if src does not fit (dst is then empty). */
int str_copy(char *dst, size_t size, const char *src);
/* Copy, cutting src short if it does not fit (dst always terminated). */
void str_trunc(char *dst, size_t size, const char *src);
/* snprintf that fails (-1) instead of truncating. */
int str_fmt(char *dst, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Full-length I/O that retries on EINTR and short transfers; -1 with errno. */
int write_all(int fd, const void *buf, size_t len);
int pwrite_all(int fd, const void *buf, size_t len, off_t off);
/* Returns bytes read (short only at end of file) or -1. */
ssize_t pread_all(int fd, void *buf, size_t len, off_t off);

/* Read a whole small file (at most max bytes) into a malloc'd, NUL-terminated
 * buffer; err_* on failure. */
int read_file(const char *path, size_t max, char **out, size_t *len);
/* The same from an open fd (named path in errors), which it closes. */
int read_fd(int fd, const char *path, size_t max, char **out, size_t *len);

/* "1.50 GiB" style, into buf. */
const char *fmt_bytes(uint64_t n, char *buf, size_t size);
/* Lower-case hex of n bytes (a digest, a key id), cut to fit buf. */
const char *fmt_hex(const uint8_t *d, size_t n, char *buf, size_t size);
/* Parse "123", "4K", "1M", "2G", "1T" (binary units); -1 on junk. */
int parse_size(const char *s, uint64_t *out);
/* Parse an unsigned decimal within [min, max]; -1 on junk or range. */
int parse_uint(const char *s, unsigned long min, unsigned long max, unsigned long *out);

/* The figures of a progress line a second: MB/s over the interval since
 * the last line, seconds since the start. */
struct rate {
	uint64_t t0, next; /* the start; when the next line is due */
	uint64_t last_t, last_bytes;
};
void rate_start(struct rate *r);
/* bytes done by now: the figures, and the next line due a second later. */
void rate_step(struct rate *r, uint64_t bytes, double *mbps, double *secs);

/* MemAvailable from /proc/meminfo, in bytes; 0 if unknown. */
uint64_t mem_available(void);

/* CPUs this process may run on (sched_getaffinity), at least 1. */
int usable_cpus(void);

/* The directory that holds path: "." for a bare name, "/" at the root;
 * -1 if it does not fit in out. */
int path_dir(char *out, size_t size, const char *path);
/* The file called name beside path: path's directory part, through its last
 * '/' (nothing for a bare name), then name; -1 if it does not fit in out. */
int path_beside(char *out, size_t size, const char *path, const char *name);
/* fsync the directory that holds path (after a rename or create). */
int fsync_parent(const char *path);

#endif
