/* fuzz_vmdef: the VM-definition parser (vm_def_parse) and the control-plane
 * check (vm_def_check) on arbitrary definitions, as embedded in images. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "vm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vm_def d;

	if (size > 65536) /* the image format's limit */
		return 0;
	err_clear();
	if (vm_def_parse(&d, (const char *)data, size, "fuzz.vm", EXIT_REFUSED) < 0) {
		if (err_code() != EXIT_REFUSED && err_code() != EXIT_FAIL)
			abort();
		if (d.text || d.store || d.argc)
			abort(); /* a refusal frees everything */
		return 0;
	}
	/* Every argument is a non-empty string inside the parser's copy, with
	 * no line break (one option or value per line), and the first is an
	 * option. */
	if (d.argc < 1 || d.argc > VM_ARGS_MAX || d.len != size || d.argv[0][0] != '-')
		abort();
	for (int i = 0; i < d.argc; i++) {
		const char *a = d.argv[i];
		if (a < d.store || a >= d.store + size + 1 || !a[0] || strchr(a, '\n'))
			abort();
		if (i && d.line[i] < d.line[i - 1])
			abort();
	}
	err_clear();
	if (vm_def_check(&d, "/run/vmsnap-fuzz") < 0 && err_code() != EXIT_REFUSED)
		abort();
	vm_def_free(&d);
	return 0;
}
