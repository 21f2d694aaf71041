/* verify: check an image the way restore would (completeness, definition,
 * signature, payload digest) and say what passed; exit 3 on any refusal. */
#include "cmd.h"
#include "consume.h"
#include "err.h"
#include "image.h"
#include "storage.h"
#include "util.h"
#include "verify.h"

#include <stdio.h>
#include <unistd.h>

const char cmd_verify_usage[] = "verify TARGET [--pubkey FILE]";

int cmd_verify(struct conf *c, int argc, char **argv)
{
	static const struct option opts[] = { { "pubkey", required_argument, 0, 'p' }, { 0 } };
	struct vfy_opts o = { .require_signature = c->require_signature, .verify_payload = true,
			      .allow_consumed = true };
	struct vfy_result r;
	uint64_t size;
	int fd, opt;
	char hex[2 * IMG_DIGEST + 1];

	optind = 1;
	while ((opt = cmd_getopt(argc, argv, "", opts)) != -1) {
		if (opt != 'p')
			return cmd_usage(cmd_verify_usage);
		o.pubkey = optarg;
	}
	if (argc - optind != 1)
		return cmd_usage(cmd_verify_usage);
	if (stor_open_image(argv[optind], &fd, &size) < 0)
		return cmd_fail("verify");
	if (vfy_image(c, fd, size, argv[optind], &o, &r) < 0) {
		close(fd);
		return cmd_fail("verify");
	}
	printf("image %s: v%u, %s%s\n", argv[optind], r.h.version, img_state_name(r.h.state),
	       r.h.flags & IMG_F_GOLDEN ? ", golden" : "");
	printf("header: ok\ndefinition: ok\n");
	if (r.signature_checked)
		printf("signature: ok (key %s, id %s)\n", r.key_used,
		       fmt_hex(r.h.key_id, 8, hex, sizeof(hex)));
	else
		printf("signature: %s\n", r.h.sig_len ? "not checked (no trusted key available)" : "none");
	if (r.payload_checked)
		printf("payload: ok (%.2f s)\n", (double)r.digest_ms / 1e3);
	else
		printf("payload: no digest in this image\n");
	/* The header's state is not signed: what restore would say is the record's. */
	if (!(r.h.flags & IMG_F_GOLDEN)) {
		err_clear();
		if (cons_check(c, &r.h, argv[optind]) == 0)
			printf("replay: ok, not in the consumption record\n");
		else
			printf("replay: refused: %s\n", err_msg());
		err_clear();
	}
	vfy_free(&r);
	close(fd);
	return EXIT_OK;
}
