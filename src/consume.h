/* consume: a resume-once image is restored once. Which images were is kept
 * outside them, in <save_dir>/.consumed/NAME (a directory only vmsnap, as
 * root, writes), keyed by bytes the signature covers: rewriting an image,
 * its state field included, cannot make it restorable again. */
#ifndef VMSNAP_CONSUME_H
#define VMSNAP_CONSUME_H

#include <stdint.h>

#include "conf.h"
#include "image.h"

/* Refuse (EXIT_REFUSED) an image that is not golden and was restored before,
 * or is older than the last image of its VM that was. */
int cons_check(const struct conf *c, const struct img_header *h, const char *image);
/* Record h as restored (synced before it returns), then mark the image open
 * on fd (the verified one, never reopened by name) consumed. Golden: nothing. */
int cons_record(const struct conf *c, int fd, struct img_header *h, const char *image);
/* The creation time for a new image of VM name: now, or one second past the
 * last restored image of that VM if the clock is behind it, so a clock that
 * went back cannot make a fresh image look like a replay. */
uint64_t cons_created(const struct conf *c, const char *name, uint64_t now);

#endif
