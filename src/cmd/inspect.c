/* inspect: show an image's header, its embedded VM definition and a summary
 * of the QEMU stream (text, or JSON with --json). Reads; never changes. */
#include "cmd.h"
#include "cJSON.h"
#include "describe.h"
#include "err.h"
#include "image.h"
#include "storage.h"
#include "util.h"
#include "verify.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The stream's first bytes and the space the image takes, then the
 * description (describe.c) of what was read. */
static cJSON *describe(int fd, uint64_t size, const char *path, const struct img_header *h,
		       const char *def)
{
	uint8_t b[DSC_STREAM_HEAD];
	ssize_t n = pread_all(fd, b, sizeof(b), (off_t)h->stream_offset);
	struct stat st;
	long long on_disk = -1;

	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
		on_disk = (long long)st.st_blocks * 512;
	return dsc_image(h, path, size, on_disk, b, n > 0 ? (size_t)n : 0, def);
}

int cmd_inspect(struct conf *c, int argc, char **argv)
{
	static const struct option opts[] = { { "json", no_argument, 0, 'j' }, { 0 } };
	struct img_header h;
	bool json = false;
	char *def;
	uint64_t size;
	int fd, opt;
	cJSON *o;

	(void)c;
	optind = 1;
	while ((opt = cmd_getopt(argc, argv, "", opts)) != -1) {
		if (opt != 'j')
			return cmd_usage(cmd_find("inspect"));
		json = true;
	}
	if (argc - optind != 1)
		return cmd_usage(cmd_find("inspect"));
	if (stor_open_image(argv[optind], &fd, &size) < 0)
		return cmd_fail("inspect");
	if (vfy_read(fd, size, argv[optind], &h, &def) < 0) {
		close(fd);
		return cmd_fail("inspect");
	}
	o = describe(fd, size, argv[optind], &h, def);
	if (o)
		dsc_print(stdout, o, json);
	cJSON_Delete(o);
	free(def);
	close(fd);
	return EXIT_OK;
}
