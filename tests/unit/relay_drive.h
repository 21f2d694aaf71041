/* relay_drive: a v2 restore relay driven as QEMU would read it, for the
 * unit tests of the relay (test_relay) and of the split check that feeds
 * it (test_verify_split). Every byte taken out of the pipe is compared with
 * the image's. */
#ifndef VMSNAP_TEST_RELAY_DRIVE_H
#define VMSNAP_TEST_RELAY_DRIVE_H

#include "helpers.h"
#include "relay.h"
#include "storage.h"

/* Up to max bytes out of the pipe (non-blocking), each compared with the
 * image's (fd) at stream offset off + *got. */
static inline void relay_take(int fd, uint64_t off, int in, uint64_t *got, uint64_t max)
{
	static char buf[65536], want[65536];
	ssize_t n;

	while (max && (n = read(in, buf, max < sizeof(buf) ? max : sizeof(buf))) > 0) {
		assert_int_equal(pread(fd, want, (size_t)n, (off_t)(off + *got)), n);
		if (memcmp(buf, want, (size_t)n))
			fail_msg("the relay handed over other bytes than the image's at stream byte %llu",
				 (unsigned long long)*got);
		*got += (uint64_t)n;
		max -= (uint64_t)n;
	}
}

/* The len stream bytes at off of the image fd, relayed (checked with ck)
 * through the image's fd or (direct) one with O_DIRECT: the bytes QEMU got.
 * A slow QEMU reads 64 KiB per step and 0.2 ms, so the relay's lent pages
 * wait in the pipe long after the fetches behind them have been read. */
static inline uint64_t relay_drive(int fd, uint64_t off, uint64_t len, struct relay_check *ck,
				   bool direct, bool slow, int *rc)
{
	struct relay r;
	int p[2], rfd = direct ? stor_reopen_direct(fd) : fd;
	uint64_t got = 0;

	assert_true(rfd >= 0);
	assert_int_equal(pipe2(p, O_NONBLOCK), 0);
	assert_int_equal(relay_init(&r, RELAY_RESTORE, p[1], rfd, direct, off, len, "img"), 0);
	assert_true(r.lend);
	r.check = ck;
	while ((*rc = relay_step(&r)) == 1 || *rc == 0)
		if (!slow)
			relay_take(fd, off, p[0], &got, UINT64_MAX);
		else if (usleep(200) == 0)
			relay_take(fd, off, p[0], &got, 65536);
	close(p[1]);
	relay_take(fd, off, p[0], &got, UINT64_MAX);
	close(p[0]);
	relay_free(&r);
	if (direct)
		close(rfd);
	return got;
}

#endif
