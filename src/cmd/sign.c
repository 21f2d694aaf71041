/* sign: (re)sign a complete image in place, e.g. at the factory: recompute
 * the payload digest, optionally mark it golden, write the signed header. */
#include "cmd.h"
#include "err.h"
#include "image.h"
#include "instant.h"
#include "sign.h"
#include "storage.h"
#include "util.h"
#include "verify.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int cmd_sign(struct conf *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "key", required_argument, 0, 'k' },
		{ "golden", no_argument, 0, 'g' },
		{ 0 },
	};
	const char *key = NULL, *path;
	bool golden = false;
	struct img_header h;
	uint64_t size;
	char *def, ram[4200];
	int fd, opt;

	(void)c;
	optind = 1;
	while ((opt = cmd_getopt(argc, argv, "", opts)) != -1) {
		if (opt == 'k')
			key = optarg;
		else if (opt == 'g')
			golden = true;
		else
			return cmd_usage(cmd_find("sign"));
	}
	if (argc - optind != 1 || !key)
		return cmd_usage(cmd_find("sign"));
	path = argv[optind];
	if (stor_open_image(path, &fd, &size) < 0)
		return cmd_fail("sign");
	if (vfy_read(fd, size, path, &h, &def) < 0) {
		close(fd);
		return cmd_fail("sign");
	}
	free(def);
	if (h.state != IMG_COMPLETE) {
		close(fd);
		err_set(EXIT_REFUSED, "image %s is %s: only complete images can be signed", path,
			img_state_name(h.state));
		return cmd_fail("sign");
	}
	h.digest_chunk = SIG_CHUNK;
	if (sig_payload_digest(fd, h.stream_offset, h.stream_length, SIG_CHUNK, usable_cpus(),
			       h.payload_digest) < 0) {
		close(fd);
		return cmd_fail("sign");
	}
	close(fd);
	if (golden && h.version == 4 && h.ram_path[0] == '/') {
		err_set(EXIT_USAGE,
			"image %s refers to the running RAM file %s, which a cold start replaces: make golden instant images with save --golden",
			path, h.ram_path);
		return cmd_fail("sign");
	}
	/* Instant mode: the RAM file's content is signed too. */
	if (h.version == 4 && (inst_check(&h, path, ram, sizeof(ram), NULL) < 0 ||
			       inst_digest(ram, h.ram_bytes, h.ram_digest) < 0))
		return cmd_fail("sign");
	if (golden)
		h.flags |= IMG_F_GOLDEN;
	if (vfy_sign_header(&h, key) < 0)
		return cmd_fail("sign");
	if (stor_rewrite_header(path, &h) < 0)
		return cmd_fail("sign");
	printf("signed %s with %s%s\n", path, key, golden ? " (golden)" : "");
	return EXIT_OK;
}
