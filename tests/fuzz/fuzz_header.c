/* fuzz_header: the image header decoder and the read path every restore
 * takes before QEMU (img_decode, vfy_image, the embedded definition) on
 * arbitrary bytes, and again with the digests made right, as a forger would. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "conf.h"
#include "err.h"
#include "image.h"
#include "sign.h"
#include "util.h"
#include "verify.h"
#include "vm.h"

/* Seed images are signed with this test key, so mutations reach ECDSA. */
#define HDR_PUBKEY "tests/fuzz/keys/fuzz.pub.pem"

static int hdr_fd = -1;

/* An accepted header encodes back to exactly the bytes it came from: the
 * decoder checks every byte it does not keep. */
static void hdr_decode(const uint8_t *b, uint64_t size)
{
	struct img_header h;
	uint8_t again[IMG_HEADER_SIZE];

	err_clear();
	if (img_decode(&h, b, size) < 0) {
		if (err_code() != EXIT_REFUSED)
			abort();
		return;
	}
	if (h.stream_offset + h.stream_length > size || h.def_offset + h.def_length > h.stream_offset)
		abort();
	img_encode(&h, again);
	if (memcmp(again, b, IMG_HEADER_SIZE))
		abort();
}

/* What restore does with an image file before QEMU starts. */
static void hdr_restore_checks(const uint8_t *img, size_t size)
{
	struct vfy_opts o = { .verify_payload = true, .allow_consumed = true };
	struct vfy_result r;
	struct vm_def d;
	struct conf c;

	conf_defaults(&c);
	str_copy(c.trusted_keys, sizeof(c.trusted_keys), "/nonexistent/vmsnap-fuzz");
	if (access(HDR_PUBKEY, R_OK) == 0)
		o.pubkey = HDR_PUBKEY;
	else
		o.require_signature = true; /* no key: refuse signed ones early, quietly */
	if (ftruncate(hdr_fd, 0) < 0 || pwrite(hdr_fd, img, size, 0) != (ssize_t)size)
		abort();
	if (vfy_image(&c, hdr_fd, size, "fuzz.img", &o, &r) < 0)
		return;
	if (!r.def || strlen(r.def) > r.h.def_length)
		abort();
	if (vm_def_parse(&d, r.def, r.h.def_length, "fuzz.img definition", EXIT_REFUSED) == 0) {
		vm_def_check(&d, "/run/vmsnap-fuzz");
		vm_def_free(&d);
	}
	vfy_free(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t n = size < IMG_HEADER_SIZE ? IMG_HEADER_SIZE : size;
	uint8_t *img;
	uint64_t def_len;

	if (hdr_fd < 0 && (hdr_fd = memfd_create("fuzz.img", MFD_CLOEXEC)) < 0)
		abort();
	img = calloc(1, n);
	if (!img)
		abort();
	memcpy(img, data, size);
	/* As the bytes come. */
	hdr_decode(img, size);
	hdr_restore_checks(data, size);
	/* As a forger: the definition and header digests match what is there. */
	memcpy(&def_len, img + 40, 8); /* little-endian hosts only, like the fuzzer */
	if (def_len && def_len <= IMG_DEF_MAX && IMG_HEADER_SIZE + def_len <= n)
		sig_sha256(img + IMG_HEADER_SIZE, (size_t)def_len, img + 240);
	sig_sha256(img, IMG_HEADER_SIZE - IMG_DIGEST, img + IMG_HEADER_SIZE - IMG_DIGEST);
	hdr_decode(img, n);
	hdr_restore_checks(img, n);
	free(img);
	return 0;
}
