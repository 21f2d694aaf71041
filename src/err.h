/* err: the one-line message and exit-code class of the last failure, so that
 * modules return -1 and only the command layer prints and exits. */
#ifndef VMSNAP_ERR_H
#define VMSNAP_ERR_H

/* Exit codes, documented in README: scripts depend on them. */
enum {
	EXIT_OK = 0,
	EXIT_FAIL = 1,    /* runtime failure */
	EXIT_USAGE = 2,   /* usage or configuration error */
	EXIT_REFUSED = 3, /* image refused: incomplete, corrupt, unsigned, wrong key */
};

/* Record a failure; both return -1 so callers can `return err_set(...)`.
 * err_sys appends strerror(errno). */
int err_set(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int err_sys(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prefix the current message with more context ("saving 'vm1': ..."). */
int err_wrap(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
const char *err_msg(void);
int err_code(void);
void err_clear(void);

#endif
