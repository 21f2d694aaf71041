/* util: clocks, full-length I/O, strings and sizes (see util.h). */
#include "util.h"
#include "err.h"

#include <limits.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t now_ms(void)
{
	return now_us() / 1000u;
}

int str_copy(char *dst, size_t size, const char *src)
{
	size_t n = strlen(src);

	if (n >= size) {
		if (size)
			dst[0] = 0;
		return -1;
	}
	memcpy(dst, src, n + 1);
	return 0;
}

void str_trunc(char *dst, size_t size, const char *src)
{
	size_t n = strnlen(src, size - 1);

	memcpy(dst, src, n);
	dst[n] = 0;
}

int str_fmt(char *dst, size_t size, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(dst, size, fmt, ap);
	va_end(ap);
	return (n < 0 || (size_t)n >= size) ? -1 : 0;
}

/* write() or, with an offset, pwrite() until all of buf is out. */
static int put_all(int fd, const void *buf, size_t len, off_t *off)
{
	const char *p = buf;

	while (len) {
		ssize_t n = off ? pwrite(fd, p, len, *off) : write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = ENOSPC;
			return -1;
		}
		p += n;
		len -= (size_t)n;
		if (off)
			*off += n;
	}
	return 0;
}

int write_all(int fd, const void *buf, size_t len)
{
	return put_all(fd, buf, len, NULL);
}

int pwrite_all(int fd, const void *buf, size_t len, off_t off)
{
	return put_all(fd, buf, len, &off);
}

ssize_t pread_all(int fd, void *buf, size_t len, off_t off)
{
	char *p = buf;
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, p + done, len - done, off + (off_t)done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return (ssize_t)done;
}

int read_file(const char *path, size_t max, char **out, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return err_sys(EXIT_USAGE, "%s", path);
	return read_fd(fd, path, max, out, len);
}

int read_fd(int fd, const char *path, size_t max, char **out, size_t *len)
{
	struct stat st;
	char *buf;
	ssize_t n;

	if (fstat(fd, &st) < 0) {
		err_sys(EXIT_FAIL, "%s", path);
		close(fd);
		return -1;
	}
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > max) {
		close(fd);
		if (S_ISREG(st.st_mode))
			return err_set(EXIT_USAGE, "%s: larger than %zu bytes", path, max);
		return err_set(EXIT_USAGE, "%s: not a regular file", path);
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		close(fd);
		return err_sys(EXIT_FAIL, "%s", path);
	}
	n = pread_all(fd, buf, (size_t)st.st_size, 0);
	close(fd);
	if (n < 0) {
		free(buf);
		return err_sys(EXIT_FAIL, "reading %s", path);
	}
	buf[n] = 0;
	*out = buf;
	if (len)
		*len = (size_t)n;
	return 0;
}

const char *fmt_bytes(uint64_t n, char *buf, size_t size)
{
	static const char *unit[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)n;
	unsigned u = 0;

	while (v >= 1024 && u + 1 < ARRAY_SIZE(unit)) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, size, "%llu B", (unsigned long long)n);
	else
		snprintf(buf, size, "%.2f %s", v, unit[u]);
	return buf;
}

int parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	unsigned shift = 0;

	if (!s || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -1;
	switch (*end) {
	case 0: break;
	case 'k': case 'K': shift = 10; break;
	case 'm': case 'M': shift = 20; break;
	case 'g': case 'G': shift = 30; break;
	case 't': case 'T': shift = 40; break;
	default: return -1;
	}
	if (*end && end[1] && strcmp(end + 1, "iB") && strcmp(end + 1, "B"))
		return -1;
	if (shift && v > (~0ULL >> shift))
		return -1;
	*out = (uint64_t)v << shift;
	return 0;
}

int parse_uint(const char *s, unsigned long min, unsigned long max, unsigned long *out)
{
	char *end;
	unsigned long v;

	if (!s || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

uint64_t mem_available(void)
{
	char line[128];
	unsigned long long kb = 0;
	FILE *f = fopen("/proc/meminfo", "re");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "MemAvailable:", 13)) {
			kb = strtoull(line + 13, NULL, 10);
			break;
		}
	fclose(f);
	return (uint64_t)kb * 1024;
}

int usable_cpus(void)
{
	cpu_set_t set;
	int n;

	if (sched_getaffinity(0, sizeof(set), &set) < 0)
		return 1;
	n = CPU_COUNT(&set);
	return n > 0 ? n : 1;
}

int path_dir(char *out, size_t size, const char *path)
{
	const char *slash = strrchr(path, '/');

	if (!slash)
		return str_copy(out, size, ".");
	if (slash == path)
		return str_copy(out, size, "/");
	return str_fmt(out, size, "%.*s", (int)(slash - path), path);
}

int path_beside(char *out, size_t size, const char *path, const char *name)
{
	const char *slash = strrchr(path, '/');

	return str_fmt(out, size, "%.*s%s", slash ? (int)(slash - path) + 1 : 0, path, name);
}

int fsync_parent(const char *path)
{
	char dir[PATH_MAX];
	int fd, rc;

	if (path_dir(dir, sizeof(dir), path) < 0)
		return err_set(EXIT_FAIL, "%s: path too long", path);
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return err_sys(EXIT_FAIL, "opening directory %s", dir);
	rc = fsync(fd);
	close(fd);
	return rc < 0 ? err_sys(EXIT_FAIL, "syncing directory %s", dir) : 0;
}

const char *fmt_hex(const uint8_t *d, size_t n, char *buf, size_t size)
{
	static const char hex[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n && 2 * i + 2 < size; i++) {
		buf[2 * i] = hex[d[i] >> 4];
		buf[2 * i + 1] = hex[d[i] & 15];
	}
	buf[2 * i] = 0;
	return buf;
}

void rate_start(struct rate *r)
{
	r->t0 = r->last_t = now_ms();
	r->next = r->t0 + 1000;
	r->last_bytes = 0;
}

void rate_step(struct rate *r, uint64_t bytes, double *mbps, double *secs)
{
	uint64_t t = now_ms();

	*mbps = t > r->last_t ? (double)(bytes - r->last_bytes) / 1e3 / (double)(t - r->last_t) : 0.0;
	*secs = (double)(t - r->t0) / 1e3;
	r->last_bytes = bytes;
	r->last_t = t;
	r->next = t + 1000;
}
