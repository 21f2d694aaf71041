/* describe: what `vmsnap inspect` shows of an image (header fields, the
 * embedded definition, a summary of the QEMU stream's first bytes), built
 * from bytes alone so that the fuzzer reaches every line of it. */
#ifndef VMSNAP_DESCRIBE_H
#define VMSNAP_DESCRIBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cJSON.h"
#include "image.h"

/* Bytes of the stream's start the summary reads: magic, version, the
 * configuration section's machine name. */
#define DSC_STREAM_HEAD (5 + 4 + 1 + 4 + 256)

/* The description of image path (size bytes; on_disk bytes allocated, or
 * -1 if unknown) with header h, definition def and the first n bytes of its
 * stream. NULL only when out of memory. */
cJSON *dsc_image(const struct img_header *h, const char *path, uint64_t size, long long on_disk,
		 const uint8_t *stream, size_t n, const char *def);
/* Write it as one JSON line, or as "field value" lines and the definition. */
void dsc_print(FILE *out, const cJSON *o, bool json);

#endif
