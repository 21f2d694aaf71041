/* version: vmsnap's version and what it was built with. */
#include "cmd.h"
#include "err.h"
#include "config.h"
#include "sha256_accel.h"

#include <stdio.h>

#include "mbedtls/build_info.h"

#ifndef VMSNAP_VERSION
#define VMSNAP_VERSION "dev"
#endif

int cmd_version(struct conf *c, int argc, char **argv)
{
	(void)c;
	(void)argv;
	if (argc != 1)
		return cmd_usage(cmd_find("version"));
	printf("vmsnap %s (mbedtls %s; signing %s, direct-io %s, max channels %d)\n", VMSNAP_VERSION,
	       MBEDTLS_VERSION_STRING, IS_ENABLED(CONFIG_SIGNING) ? "on" : "off",
	       IS_ENABLED(CONFIG_DIRECT_IO) ? "on" : "off", CONFIG_MAX_CHANNELS);
	printf("sha256: %s\n", sha_impl_name());
	return EXIT_OK;
}
