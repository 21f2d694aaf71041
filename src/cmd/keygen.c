/* keygen: a new ECDSA P-256 key pair in PEM: the private key mode 0600 and
 * never overwritten, the public key for trusted_keys. */
#include "cmd.h"
#include "err.h"
#include "sign.h"

#include <stdio.h>

const char cmd_keygen_usage[] = "keygen PRIVATE PUBLIC";

int cmd_keygen(struct conf *c, int argc, char **argv)
{
	static const struct option opts[] = { { 0 } };

	(void)c;
	optind = 1;
	if (cmd_getopt(argc, argv, "", opts) != -1 || argc - optind != 2)
		return cmd_usage(cmd_keygen_usage);
	if (sig_keygen(argv[optind], argv[optind + 1]) < 0)
		return cmd_fail("keygen");
	printf("wrote private key %s (mode 0600) and public key %s\n", argv[optind], argv[optind + 1]);
	return EXIT_OK;
}
