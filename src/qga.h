/* qga: the little of the QEMU guest agent's protocol vmsnap speaks, on the
 * socket of the agent's port (vm_def.h): set the guest's clock after a restore. */
#ifndef VMSNAP_QGA_H
#define VMSNAP_QGA_H

#include <stdint.h>

/* guest-sync-delimited (the 0xFF resynchronisation the protocol asks for),
 * then guest-set-time to the host's CLOCK_REALTIME, within timeout_ms for
 * each step: 0 set, or -1 with why in err (no agent answered, its error).
 * What comes back is the guest's: read in bounded lines, never trusted. */
int qga_set_time(const char *path, int timeout_ms);

/* CLOCK_REALTIME in nanoseconds. */
uint64_t qga_wall_ns(void);

#endif
