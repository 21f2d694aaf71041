/* fuzz_inspect: what `vmsnap inspect` prints of an image (dsc_image,
 * dsc_print, text and JSON) for any header the decoder accepts, with the
 * header digest made right as a forger would, and any stream bytes. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "describe.h"
#include "err.h"
#include "image.h"
#include "sign.h"

static FILE *insp_null;

static void insp_show(const uint8_t *img, size_t size)
{
	struct img_header h;
	const uint8_t *stream = NULL;
	size_t n = 0;
	char *def;
	cJSON *o;

	err_clear();
	if (img_decode(&h, img, size) < 0)
		return;
	def = calloc(1, h.def_length + 1); /* decoded: within size, at most IMG_DEF_MAX */
	if (!def)
		abort();
	memcpy(def, img + h.def_offset, h.def_length);
	if (h.stream_offset < size) {
		stream = img + h.stream_offset;
		n = size - h.stream_offset < DSC_STREAM_HEAD ? size - h.stream_offset : DSC_STREAM_HEAD;
	}
	o = dsc_image(&h, "fuzz.img", size, (long long)size, stream ? stream : img, n, def);
	if (!o)
		abort();
	dsc_print(insp_null, o, false);
	dsc_print(insp_null, o, true);
	cJSON_Delete(o);
	free(def);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t n = size < IMG_HEADER_SIZE ? IMG_HEADER_SIZE : size;
	uint8_t *img;

	if (!insp_null && !(insp_null = fopen("/dev/null", "w")))
		abort();
	img = calloc(1, n);
	if (!img)
		abort();
	memcpy(img, data, size);
	insp_show(img, size);
	/* inspect does not need a signature, only a header that decodes. */
	sig_sha256(img, IMG_HEADER_SIZE - IMG_DIGEST, img + IMG_HEADER_SIZE - IMG_DIGEST);
	insp_show(img, n);
	free(img);
	return 0;
}
