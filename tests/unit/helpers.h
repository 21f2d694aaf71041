/* helpers: small shared pieces of the unit tests: temp directories, files,
 * error assertions and a valid image header/file to start from. */
#ifndef VMSNAP_TEST_HELPERS_H
#define VMSNAP_TEST_HELPERS_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "image.h"
#include "sign.h"
#include "util.h"
#include "verify.h"

/* Failure messages as TAP comments, so tests/run shows them. */
#undef fail_msg
#define fail_msg(msg, ...)                                           \
	do {                                                         \
		print_error("# ERROR: " msg "\n", ##__VA_ARGS__); \
		fail();                                              \
	} while (0)

/* err_msg() with unprintable bytes as '?', safe to print. */
static inline const char *tu_msg(void)
{
	static char buf[600];
	size_t i;

	for (i = 0; err_msg()[i] && i < sizeof(buf) - 1; i++)
		buf[i] = (err_msg()[i] >= ' ' && err_msg()[i] < 127) ? err_msg()[i] : '?';
	buf[i] = 0;
	return buf;
}

/* Assert the last failure's exit class and that its message contains want. */
#define assert_err(want_code, want)                                                          \
	do {                                                                                 \
		if (err_code() != (want_code))                                               \
			fail_msg("err_code %d, want %d (msg: %s)", err_code(), (want_code),  \
				 tu_msg());                                                  \
		if (!strstr(err_msg(), (want)))                                              \
			fail_msg("err_msg '%s' does not contain '%s'", tu_msg(), (want));    \
	} while (0)

/* A fresh directory under /tmp; path must hold 64 bytes. */
static inline void tu_mkdtemp(char *path)
{
	strcpy(path, "/tmp/vmsnap-unit-XXXXXX");
	if (!mkdtemp(path))
		fail_msg("mkdtemp failed");
}

static inline int tu_rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st; (void)flag; (void)f;
	chmod(p, 0700); /* a test may have changed modes */
	return remove(p);
}

static inline void tu_rmtree(const char *path)
{
	if (path && path[0])
		nftw(path, tu_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* dir/name into buf (4096 bytes). */
/* A test file's temporary directory, tu_dir: made by tu_dir_setup and
 * removed by tu_dir_teardown (a cmocka group's or a test's setup/teardown). */
static char tu_dir[64] __attribute__((unused));
static inline int tu_dir_setup(void **s)
{
	(void)s;
	tu_mkdtemp(tu_dir);
	return 0;
}
static inline int tu_dir_teardown(void **s)
{
	(void)s;
	tu_rmtree(tu_dir);
	return 0;
}

static inline char *tu_path(char *buf, const char *dir, const char *name)
{
	if (snprintf(buf, 4096, "%s/%s", dir, name) >= 4096)
		fail_msg("path too long");
	return buf;
}

static inline void tu_write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	if (fd < 0 || write(fd, data, len) != (ssize_t)len)
		fail_msg("writing %s failed", path);
	close(fd);
}

static inline void tu_write_str(const char *path, const char *text)
{
	tu_write_file(path, text, strlen(text));
}

/* A valid, complete v2 header for a definition of def_len bytes and a
 * stream of stream_len bytes (def_digest left for the caller). */
static inline void tu_header(struct img_header *h, uint64_t def_len, uint64_t stream_len)
{
	memset(h, 0, sizeof(*h));
	h->version = 2;
	h->state = IMG_COMPLETE;
	h->flags = IMG_F_WAS_RUNNING;
	h->created = 1700000000;
	h->def_offset = IMG_HEADER_SIZE;
	h->def_length = def_len;
	h->stream_offset = img_stream_offset(def_len);
	h->stream_length = stream_len;
	h->ram_size = 64u << 20;
	h->channels = 1;
	strcpy(h->name, "vm1");
	strcpy(h->machine, "pc-q35-8.2");
	strcpy(h->qemu_version, "8.2.0");
}

/* Write a whole image (header from h, def, a patterned stream) to path;
 * sets h's definition length and stream offset for def, fills def_digest, with chunk != 0 its payload digest, and with key
 * != NULL signs the header with that private key. */
static inline void tu_write_image(const char *path, struct img_header *h, const char *def,
				  uint32_t chunk, const char *key)
{
	uint8_t hdr[IMG_HEADER_SIZE];
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	char *stream = malloc(h->stream_length ? h->stream_length : 1);

	if (fd < 0 || !stream)
		fail_msg("creating %s failed", path);
	h->def_length = strlen(def);
	h->stream_offset = img_stream_offset(h->def_length);
	for (uint64_t i = 0; i < h->stream_length; i++)
		stream[i] = (char)(i * 7 + 1);
	sig_sha256(def, strlen(def), h->def_digest);
	if (pwrite(fd, def, strlen(def), IMG_HEADER_SIZE) != (ssize_t)strlen(def) ||
	    pwrite(fd, stream, h->stream_length, (off_t)h->stream_offset) != (ssize_t)h->stream_length)
		fail_msg("writing %s failed", path);
	h->digest_chunk = chunk;
	if (chunk && sig_payload_digest(fd, h->stream_offset, h->stream_length, chunk, 1,
					h->payload_digest) < 0)
		fail_msg("payload digest: %s", tu_msg());
	if (key && sig_sign_header(h, key) < 0)
		fail_msg("signing: %s", tu_msg());
	img_encode(h, hdr);
	if (pwrite(fd, hdr, sizeof(hdr), 0) != (ssize_t)sizeof(hdr))
		fail_msg("writing %s failed", path);
	close(fd);
	free(stream);
}

#endif
