/* sha256_bench: SHA-256 throughput of the vmsnap build, for the README's
 * figures: one thread through mbedtls_sha256() over a buffer in memory, and
 * sig_payload_digest() over a file (cached: read it once before).
 * Built and run by bench/sha256.sh; VMSNAP_SHA256=portable forces the
 * portable block function. Besides wall-clock rates it prints MB per CPU
 * second, which a machine shared with other work changes far less.
 * usage: sha256_bench mem MIB REPS | sha256_bench file PATH THREADS */
#include "sign.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mbedtls/sha256.h"

static double clock_s(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double now(void)
{
	return clock_s(CLOCK_MONOTONIC);
}

static double cpu(void)
{
	return clock_s(CLOCK_PROCESS_CPUTIME_ID);
}

static void hex(const uint8_t *h)
{
	for (unsigned i = 0; i < SIG_HASH; i++)
		printf("%02x", h[i]);
}

static int bench_mem(size_t mib, int reps)
{
	size_t len = mib << 20;
	uint8_t *buf = malloc(len), out[SIG_HASH];
	double t, c, best = 1e9, best_cpu = 1e9;

	if (!buf)
		return 1;
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(i * 2654435761u >> 13);
	for (int r = 0; r < reps; r++) {
		t = now(), c = cpu();
		mbedtls_sha256(buf, len, out, 0);
		t = now() - t, c = cpu() - c;
		best = t < best ? t : best;
		best_cpu = c < best_cpu ? c : best_cpu;
	}
	printf("mbedtls_sha256, 1 thread, %zu MiB in memory: %.0f MB/s, %.0f MB per CPU s (best of %d) ",
	       mib, len / best / 1e6, len / best_cpu / 1e6, reps);
	hex(out);
	printf("\n");
	free(buf);
	return 0;
}

static int bench_file(const char *path, int threads)
{
	int fd = open(path, O_RDONLY);
	struct stat st;
	uint8_t out[SIG_HASH];
	double t, c;

	if (fd < 0 || fstat(fd, &st) < 0) {
		perror(path);
		return 1;
	}
	t = now(), c = cpu();
	if (sig_payload_digest(fd, 0, (uint64_t)st.st_size, SIG_CHUNK, threads, out) < 0) {
		fprintf(stderr, "sig_payload_digest failed\n");
		return 1;
	}
	t = now() - t, c = cpu() - c;
	printf("sig_payload_digest, %d threads, %s (%lld MiB): %.0f MB/s, %.0f MB per CPU s ",
	       threads, path, (long long)st.st_size >> 20, st.st_size / t / 1e6, st.st_size / c / 1e6);
	hex(out);
	printf("\n");
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 4 && !strcmp(argv[1], "mem"))
		return bench_mem((size_t)atoi(argv[2]), atoi(argv[3]));
	if (argc == 4 && !strcmp(argv[1], "file"))
		return bench_file(argv[2], atoi(argv[3]));
	fprintf(stderr, "usage: sha256_bench mem MIB REPS | sha256_bench file PATH THREADS\n");
	return 2;
}
