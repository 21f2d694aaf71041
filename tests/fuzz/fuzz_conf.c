/* fuzz_conf: the configuration parser (conf_load through inih) on arbitrary
 * file contents, then the per-VM lookups every command makes. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "conf.h"
#include "config.h"
#include "err.h"

static int cf_fd = -1;
static char cf_path[64];

/* Every string the parser filled is terminated inside its field. */
static void cf_terminated(const char *s, size_t size)
{
	if (!memchr(s, 0, size))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct conf c;
	struct conf_vm vm;

	if (cf_fd < 0) {
		if ((cf_fd = memfd_create("fuzz.conf", MFD_CLOEXEC)) < 0)
			abort();
		snprintf(cf_path, sizeof(cf_path), "/proc/self/fd/%d", cf_fd);
	}
	if (ftruncate(cf_fd, 0) < 0 || pwrite(cf_fd, data, size, 0) != (ssize_t)size)
		abort();
	conf_defaults(&c);
	err_clear();
	if (conf_load(&c, cf_path, true) < 0) {
		if (err_code() != EXIT_USAGE && err_code() != EXIT_FAIL)
			abort();
		return 0;
	}
	if ((c.image_version != 2 && c.image_version != 3) || c.channels > CONFIG_MAX_CHANNELS ||
	    c.n_vms > CONF_MAX_VMS || c.n_vm > CONF_MAX_VMS || c.powerfail_deadline_ms == 0)
		abort();
	cf_terminated(c.vm_dir, sizeof(c.vm_dir));
	cf_terminated(c.run_dir, sizeof(c.run_dir));
	cf_terminated(c.qemu, sizeof(c.qemu));
	for (unsigned i = 0; i < c.n_vms; i++) {
		if (!conf_name_ok(c.vms[i]))
			abort();
		conf_vm_get(&c, c.vms[i], &vm);
		cf_terminated(vm.image, sizeof(vm.image));
	}
	for (unsigned i = 0; i < c.n_vm; i++)
		if (!conf_name_ok(c.vm[i].name))
			abort();
	return 0;
}
