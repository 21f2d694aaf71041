/* verify_split (internal): a signed v3 or v2 image checked against its
 * chunk table in parts, shared by verify_split.c (the parts before and after
 * QEMU's load) and verify_load.c (the RAM block loaded by vmsnap). */
#ifndef VMSNAP_VERIFY_SPLIT_H
#define VMSNAP_VERIFY_SPLIT_H

#include <stdbool.h>
#include <stdint.h>

#include "mapped_ram.h"
#include "relay.h"
#include "util.h"

struct vfy_split {
	uint8_t *table;           /* the chunk hashes, their root the signed digest */
	uint8_t *deferred;        /* per chunk: 1 wholly within the block's pages region and
				     not a zero hole (verify_split.c) */
	struct file_range region; /* the block's pages region (file offsets) */
	struct mr_info block;     /* its id ("pc.ram"), page size and bitmap */
	uint64_t n;               /* chunks */
	struct relay_check ck;    /* v2: the relay's check of every chunk */
	/* verify_load.c: the region's parts in the stream's first and last
	 * chunks not wholly inside it (checked, loaded with the rest), and the
	 * block's bitmap as the image has it. */
	struct {
		uint8_t *buf;
		uint64_t ram_off, len;
	} edge[2];
	uint8_t *bitmap;
};

#endif
