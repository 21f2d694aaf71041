/* patcheck.c - host-side verifier for guest physical memory dumps (e.g. QMP pmemsave).
 * Checks that every 4 KiB page holds the vmsnap guest pattern, or that a dump is all zero. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "pattern.h"

#define CHUNK (4u << 20) /* multiple of the page size, so pages never straddle reads */

static int usage(void)
{
	fprintf(stderr, "usage: patcheck --seed S --base ADDR FILE\n"
			"       patcheck --zero [--base ADDR] FILE\n");
	return 2;
}

static int parse_u64(const char *s, uint64_t *v)
{
	char *end;
	errno = 0;
	*v = strtoull(s, &end, 0);
	return *s && *s != '-' && !*end && !errno;
}

int main(int argc, char **argv)
{
	uint64_t seed = 0, base = 0, off = 0, pages = 0;
	int have_seed = 0, zero = 0;
	const char *file = NULL;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--seed") && i + 1 < argc) {
			if (!parse_u64(argv[++i], &seed))
				return usage();
			have_seed = 1;
		} else if (!strcmp(argv[i], "--base") && i + 1 < argc) {
			if (!parse_u64(argv[++i], &base))
				return usage();
		} else if (!strcmp(argv[i], "--zero")) {
			zero = 1;
		} else if (argv[i][0] != '-' && !file) {
			file = argv[i];
		} else {
			return usage();
		}
	}
	if (!file || zero == have_seed || (base & 4095))
		return usage();

	int fd = open(file, O_RDONLY);
	static unsigned char buf[CHUNK];
	static uint64_t expect[512];
	if (fd < 0) {
		fprintf(stderr, "patcheck: %s: %s\n", file, strerror(errno));
		return 2;
	}
	for (;;) {
		size_t n = 0;
		while (n < CHUNK) {
			ssize_t r = read(fd, buf + n, CHUNK - n);
			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0) {
				fprintf(stderr, "patcheck: %s: %s\n", file, strerror(errno));
				return 2;
			}
			if (r == 0)
				break;
			n += (size_t)r;
		}
		for (size_t pos = 0; pos < n; pos += 4096, pages++) {
			size_t len = n - pos < 4096 ? n - pos : 4096;
			uint64_t pa = base + off + pos;
			if (!zero)
				pat_page(expect, seed, pa);
			if (!memcmp(buf + pos, expect, len))
				continue;
			size_t i = 0;
			while (buf[pos + i] == ((unsigned char *)expect)[i])
				i++;
			printf("FAIL addr=0x%llx\n", (unsigned long long)((pa + i) & ~7ull));
			return 1;
		}
		off += n;
		if (n < CHUNK)
			break;
	}
	printf("ok pages=%llu\n", (unsigned long long)pages);
	return 0;
}
