/* verify: the checks an image passes before it reaches QEMU (verify.h). */
#include "verify.h"
#include "err.h"
#include "instant.h"
#include "log.h"
#include "sign.h"
#include "storage.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int vfy_read(int fd, uint64_t size, const char *path, struct img_header *h, char **def)
{
	uint8_t buf[IMG_HEADER_SIZE], digest[SIG_HASH];
	ssize_t n;

	*def = NULL;
	if (size < IMG_HEADER_SIZE)
		return err_set(EXIT_REFUSED, "image %s is truncated: %llu bytes, smaller than its header",
			       path, (unsigned long long)size);
	n = pread_all(fd, buf, sizeof(buf), 0);
	if (n < 0)
		return err_sys(EXIT_FAIL, "reading %s", path);
	if (n != IMG_HEADER_SIZE)
		return err_set(EXIT_REFUSED, "image %s is truncated", path);
	if (img_decode(h, buf, size) < 0)
		return err_wrap("image %s", path);
	*def = malloc(h->def_length + 1);
	if (!*def)
		return err_sys(EXIT_FAIL, "reading %s", path);
	n = pread_all(fd, *def, h->def_length, (off_t)h->def_offset);
	if (n < 0 || (uint64_t)n != h->def_length) {
		free(*def);
		*def = NULL;
		return n < 0 ? err_sys(EXIT_FAIL, "reading %s", path)
			     : err_set(EXIT_REFUSED, "image %s is truncated in its definition", path);
	}
	(*def)[h->def_length] = 0;
	sig_sha256(*def, h->def_length, digest);
	if (memcmp(digest, h->def_digest, SIG_HASH)) {
		free(*def);
		*def = NULL;
		return err_set(EXIT_REFUSED,
			       "image %s: definition digest mismatch: the embedded VM definition is corrupt or was changed",
			       path);
	}
	return 0;
}

static int check_signature(const struct conf *c, const char *path, const struct vfy_opts *o,
			   struct vfy_result *r)
{
	uint8_t signed_bytes[IMG_HEADER_SIZE], hash[SIG_HASH];
	const struct img_header *h = &r->h;

	if (!h->sig_len) {
		if (o->require_signature)
			return err_set(EXIT_REFUSED,
				       "image %s is not signed and signatures are required (require_signature = yes)",
				       path);
		return 0;
	}
	if (!IS_ENABLED(CONFIG_SIGNING)) {
		if (o->require_signature)
			return sig_verify(NULL, NULL, NULL, 0, NULL);
		log_warn("image %s is signed, but this vmsnap cannot check signatures", path);
		return 0;
	}
	img_signed_bytes(h, signed_bytes);
	sig_sha256(signed_bytes, sizeof(signed_bytes), hash);
	if (o->pubkey) {
		if (sig_verify(o->pubkey, hash, h->sig, h->sig_len, h->key_id) < 0)
			return err_wrap("image %s", path);
		str_copy(r->key_used, sizeof(r->key_used), o->pubkey);
	} else if (access(c->trusted_keys, F_OK) < 0 && errno == ENOENT && !o->require_signature) {
		log_warn("image %s is signed but trusted_keys %s does not exist: signature not checked",
			 path, c->trusted_keys);
		return 0;
	} else if (sig_verify_dir(c->trusted_keys, hash, h->sig, h->sig_len, h->key_id, r->key_used,
				  sizeof(r->key_used)) < 0) {
		return err_wrap("image %s", path);
	}
	r->signature_checked = true;
	return 0;
}

/* Instant mode: the RAM file must be the one saved; with a digest and
 * verify_payload, its content is read and checked too. */
static int check_ram(const char *path, const struct vfy_opts *o, struct vfy_result *r)
{
	static const uint8_t none[SIG_HASH];
	uint8_t d[SIG_HASH];
	uint64_t t0 = now_ms();

	if (inst_check(&r->h, path, r->ram_path, sizeof(r->ram_path), &r->ram_fd) < 0)
		return -1;
	r->ram_open = true;
	if (!o->verify_payload || o->payload_by_caller || !memcmp(r->h.ram_digest, none, SIG_HASH))
		return 0;
	if (inst_digest_fd(r->ram_fd, r->h.ram_bytes, d) < 0)
		return -1;
	r->digest_ms += now_ms() - t0;
	if (memcmp(d, r->h.ram_digest, SIG_HASH))
		return vfy_ram_mismatch(path, r->ram_path);
	r->ram_checked = true;
	return 0;
}

int vfy_payload_whole(int fd, const char *path, struct vfy_result *r)
{
	uint8_t d[SIG_HASH];
	struct sig_info in = { 0 };

	vfy_split_free(r->split);
	r->split = NULL;
	if (sig_payload_digest_info(fd, r->h.stream_offset, r->h.stream_length, r->h.digest_chunk,
				    usable_cpus(), d, &in) < 0)
		return -1;
	r->digest_ms = in.ms;
	r->digest_bytes = in.bytes;
	r->digest_read = in.bytes_read;
	if (memcmp(d, r->h.payload_digest, SIG_HASH))
		return vfy_payload_mismatch(path);
	r->payload_checked = true;
	return 0;
}

/* The payload digest: of the whole stream, or (o->split) left to the
 * restore, chunk by chunk as the stream goes to QEMU (vfy_split_*). */
static int check_payload(int fd, uint64_t size, const char *path, const struct vfy_opts *o,
			 struct vfy_result *r)
{
	int dfd, rc;

	if (o->split && r->h.version != IMG_VERSION_INSTANT)
		vfy_split_prepare(fd, size, r);
	if (r->split)
		return 0;
	dfd = o->direct ? stor_reopen_direct(fd) : -1;
	rc = vfy_payload_whole(dfd >= 0 ? dfd : fd, path, r);
	if (dfd >= 0)
		close(dfd);
	return rc;
}

int vfy_image(const struct conf *c, int fd, uint64_t size, const char *path,
	      const struct vfy_opts *o, struct vfy_result *r)
{
	memset(r, 0, sizeof(*r));
	if (vfy_read(fd, size, path, &r->h, &r->def) < 0)
		return -1;
	if (r->h.state == IMG_PARTIAL) {
		vfy_free(r);
		return err_set(EXIT_REFUSED, "image %s is incomplete: its save never finished", path);
	}
	if (r->h.state == IMG_CONSUMED && !o->allow_consumed) {
		vfy_free(r);
		return err_set(EXIT_REFUSED,
			       "image %s was already resumed once (consumed): restoring it again would replay the guest against disks that moved on",
			       path);
	}
	if (check_signature(c, path, o, r) < 0) {
		vfy_free(r);
		return -1;
	}
	if (o->verify_payload && r->h.digest_chunk) {
		if (!o->payload_by_caller && check_payload(fd, size, path, o, r) < 0) {
			vfy_free(r);
			return -1;
		}
	} else if (o->verify_payload && r->h.sig_len && o->require_signature) {
		vfy_free(r);
		return err_set(EXIT_REFUSED, "image %s is signed without a payload digest: its RAM is not covered",
			       path);
	}
	if (r->h.version == IMG_VERSION_INSTANT && check_ram(path, o, r) < 0) {
		vfy_free(r);
		return -1;
	}
	return 0;
}

int vfy_peek(const char *path, struct img_header *h)
{
	uint64_t size;
	char *def;
	int fd, rc;

	if (stor_open_image(path, &fd, &size) < 0) {
		err_clear();
		return -1;
	}
	rc = vfy_read(fd, size, path, h, &def) == 0;
	if (rc)
		free(def);
	err_clear();
	close(fd);
	return rc;
}

int vfy_payload_mismatch(const char *path)
{
	return err_set(EXIT_REFUSED, "image %s: payload digest mismatch: the QEMU stream was changed or is corrupt",
		       path);
}

int vfy_ram_mismatch(const char *path, const char *ram_path)
{
	return err_set(EXIT_REFUSED, "image %s: RAM file digest mismatch: %s was changed since the save",
		       path, ram_path);
}

void vfy_free(struct vfy_result *r)
{
	vfy_split_free(r->split);
	r->split = NULL;
	free(r->def);
	r->def = NULL;
	if (r->ram_open)
		close(r->ram_fd);
	r->ram_open = false;
}

bool vfy_golden(const char *path)
{
	struct img_header h;

	return vfy_peek(path, &h) == 1 && (h.flags & IMG_F_GOLDEN);
}
