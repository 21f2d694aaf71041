/* sign: ECDSA P-256 key pairs and signatures with mbedtls (see sign.h).
 * Signing is deterministic (RFC 6979); randomness is only needed for keygen
 * and blinding, and comes from the kernel through mbedtls' entropy pool. */
#include "sign.h"
#include "err.h"
#include "fsafe.h"
#include "image.h"
#include "log.h"
#include "util.h"

#include <limits.h>
#include <dirent.h>
#include <stdbool.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mbedtls/ecdsa.h"
#include "mbedtls/ecp.h"
#include "mbedtls/entropy.h"
#include "mbedtls/hmac_drbg.h"
#include "mbedtls/md.h"
#include "mbedtls/pk.h"

#define KEY_FILE_MAX (16u << 10)

struct rng {
	mbedtls_entropy_context entropy;
	mbedtls_hmac_drbg_context drbg;
};

static int rng_init(struct rng *r)
{
	static const char pers[] = "vmsnap";
	int rc;

	mbedtls_entropy_init(&r->entropy);
	mbedtls_hmac_drbg_init(&r->drbg);
	rc = mbedtls_hmac_drbg_seed(&r->drbg, mbedtls_md_info_from_type(MBEDTLS_MD_SHA256),
				    mbedtls_entropy_func, &r->entropy, (const unsigned char *)pers,
				    sizeof(pers) - 1);
	return rc ? err_set(EXIT_FAIL, "seeding the random generator failed (-0x%04x)", -rc) : 0;
}

static void rng_free(struct rng *r)
{
	mbedtls_hmac_drbg_free(&r->drbg);
	mbedtls_entropy_free(&r->entropy);
}

/* Only P-256 keys: a signature format has one curve or it is a negotiation. */
static int check_p256(mbedtls_pk_context *pk, const char *path)
{
	if (mbedtls_pk_get_type(pk) != MBEDTLS_PK_ECKEY ||
	    mbedtls_ecp_keypair_get_group_id(mbedtls_pk_ec(*pk)) != MBEDTLS_ECP_DP_SECP256R1)
		return err_set(EXIT_USAGE, "key %s is not an ECDSA P-256 (prime256v1) key", path);
	return 0;
}

static int key_id(mbedtls_pk_context *pk, uint8_t id[SIG_HASH])
{
	unsigned char der[256];
	int n = mbedtls_pk_write_pubkey_der(pk, der, sizeof(der));

	if (n < 0)
		return err_set(EXIT_FAIL, "encoding a public key failed (-0x%04x)", -n);
	/* mbedtls writes DER at the end of the buffer. */
	sig_sha256(der + sizeof(der) - n, (size_t)n, id);
	return 0;
}

static int parse_key(mbedtls_pk_context *pk, char *text, size_t len, const char *path,
		     bool private, struct rng *r)
{
	int rc;

	mbedtls_pk_init(pk);
	/* PEM parsing wants the terminating NUL counted. */
	if (private)
		rc = mbedtls_pk_parse_key(pk, (unsigned char *)text, len + 1, NULL, 0,
					  mbedtls_hmac_drbg_random, &r->drbg);
	else
		rc = mbedtls_pk_parse_public_key(pk, (unsigned char *)text, len + 1);
	memset(text, 0, len);
	free(text);
	if (rc)
		return err_set(EXIT_USAGE, "%s: not a readable %s key in PEM (mbedtls -0x%04x)", path,
			       private ? "private" : "public", -rc);
	return check_p256(pk, path);
}

static int load_key(mbedtls_pk_context *pk, const char *path, bool private, struct rng *r)
{
	struct stat st;
	char *text;
	size_t len;

	mbedtls_pk_init(pk);
	if (read_file(path, KEY_FILE_MAX, &text, &len) < 0)
		return err_wrap("key");
	if (private && stat(path, &st) == 0 && (st.st_mode & 077))
		log_warn("sign_key %s is readable by group or others: chmod 600 it", path);
	return parse_key(pk, text, len, path, private, r);
}

static int write_pem(const char *path, const unsigned char *pem, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);

	if (fd < 0)
		return err_sys(errno == EEXIST ? EXIT_USAGE : EXIT_FAIL, "%s%s", path,
			       errno == EEXIST ? " (keygen never overwrites a key; remove it first)" : "");
	if (fchmod(fd, mode) < 0 || write_all(fd, pem, strlen((const char *)pem)) < 0 || fsync(fd) < 0) {
		close(fd);
		unlink(path);
		return err_sys(EXIT_FAIL, "writing %s", path);
	}
	close(fd);
	return 0;
}

int sig_keygen(const char *priv_path, const char *pub_path)
{
	mbedtls_pk_context pk;
	struct rng r;
	unsigned char pem[1024];
	int rc = -1, e;

	if (rng_init(&r) < 0)
		return -1;
	mbedtls_pk_init(&pk);
	e = mbedtls_pk_setup(&pk, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY));
	if (!e)
		e = mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(pk),
					mbedtls_hmac_drbg_random, &r.drbg);
	if (e) {
		err_set(EXIT_FAIL, "generating a P-256 key failed (-0x%04x)", -e);
		goto out;
	}
	if ((e = mbedtls_pk_write_key_pem(&pk, pem, sizeof(pem)))) {
		err_set(EXIT_FAIL, "encoding the private key failed (-0x%04x)", -e);
		goto out;
	}
	if (write_pem(priv_path, pem, 0600) < 0)
		goto out;
	if ((e = mbedtls_pk_write_pubkey_pem(&pk, pem, sizeof(pem)))) {
		unlink(priv_path);
		err_set(EXIT_FAIL, "encoding the public key failed (-0x%04x)", -e);
		goto out;
	}
	if (write_pem(pub_path, pem, 0644) < 0) {
		unlink(priv_path);
		goto out;
	}
	rc = 0;
out:
	memset(pem, 0, sizeof(pem));
	mbedtls_pk_free(&pk);
	rng_free(&r);
	return rc;
}

int sig_key_id(const char *key_path, uint8_t id[SIG_HASH])
{
	mbedtls_pk_context pk;
	struct rng r;
	int rc = -1;

	if (rng_init(&r) < 0)
		return -1;
	if (load_key(&pk, key_path, true, &r) == 0 && key_id(&pk, id) == 0)
		rc = 0;
	mbedtls_pk_free(&pk);
	rng_free(&r);
	return rc;
}

int sig_sign(const char *key_path, const uint8_t hash[SIG_HASH], uint8_t *sig, uint16_t *sig_len,
	     size_t sig_max)
{
	mbedtls_pk_context pk;
	struct rng r;
	size_t n = 0;
	int rc = -1, e;

	if (rng_init(&r) < 0)
		return -1;
	if (load_key(&pk, key_path, true, &r) < 0)
		goto out;
	e = mbedtls_pk_sign(&pk, MBEDTLS_MD_SHA256, hash, SIG_HASH, sig, sig_max, &n,
			    mbedtls_hmac_drbg_random, &r.drbg);
	if (e) {
		err_set(EXIT_FAIL, "signing with %s failed (-0x%04x)", key_path, -e);
		goto out;
	}
	*sig_len = (uint16_t)n;
	rc = 0;
out:
	mbedtls_pk_free(&pk);
	rng_free(&r);
	return rc;
}

/* 1 if the parsed key pk has key_id want, 0 if not (pk freed), -1 on error. */
static int key_is(mbedtls_pk_context *pk, const uint8_t want[SIG_HASH])
{
	uint8_t id[SIG_HASH];

	if (key_id(pk, id) < 0) {
		mbedtls_pk_free(pk);
		return -1;
	}
	if (memcmp(id, want, SIG_HASH)) {
		mbedtls_pk_free(pk);
		return 0;
	}
	return 1;
}

/* 1 if the key at path has key_id, 0 if not, -1 if it is unreadable. */
static int key_matches(const char *path, const uint8_t want[SIG_HASH], mbedtls_pk_context *pk)
{
	if (load_key(pk, path, false, NULL) < 0)
		return -1;
	return key_is(pk, want);
}

static int check(mbedtls_pk_context *pk, const char *path, const uint8_t hash[SIG_HASH],
		 const uint8_t *sig, size_t sig_len)
{
	int e = mbedtls_pk_verify(pk, MBEDTLS_MD_SHA256, hash, SIG_HASH, sig, sig_len);

	mbedtls_pk_free(pk);
	if (e)
		return err_set(EXIT_REFUSED, "signature check failed: the header or definition was changed after signing (key %s)",
			       path);
	return 0;
}

int sig_verify(const char *pub_path, const uint8_t hash[SIG_HASH], const uint8_t *sig,
	       size_t sig_len, const uint8_t want[SIG_HASH])
{
	mbedtls_pk_context pk;
	int m = key_matches(pub_path, want, &pk);

	if (m < 0)
		return -1;
	if (m == 0)
		return err_set(EXIT_REFUSED, "wrong key: the image was signed by a different key than %s",
			       pub_path);
	return check(&pk, pub_path, hash, sig, sig_len);
}

/* A trusted key file in the directory d: a regular file, no symlink (not
 * followed: O_NOFOLLOW), root's, not writable by group/others. */
static int trusted_key_at(DIR *d, const char *name, const char *path, mbedtls_pk_context *pk)
{
	int fd = openat(dirfd(d), name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	struct stat st;
	char *text;
	size_t len;

	mbedtls_pk_init(pk);
	if (fd < 0)
		return err_sys(EXIT_REFUSED, "trusted key %s%s", path,
			       errno == ELOOP ? " is a symbolic link: copy the key itself there" : "");
	if (fstat(fd, &st) < 0 || fsafe_trusted(&st, "trusted key", path) < 0) {
		close(fd);
		return -1;
	}
	if (read_fd(fd, path, KEY_FILE_MAX, &text, &len) < 0)
		return -1; /* not a regular file, too large: skipped */
	return parse_key(pk, text, len, path, false, NULL);
}

static bool is_pem(const char *name)
{
	size_t l = strlen(name);

	return l >= 5 && !strcmp(name + l - 4, ".pem");
}

/* Every key file read on the way to the signer's key must be safe: any key
 * that could verify an image is checked before it is used. */
int sig_verify_dir(const char *dir, const uint8_t hash[SIG_HASH], const uint8_t *sig,
		   size_t sig_len, const uint8_t want[SIG_HASH], char *used, size_t used_size)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	struct stat st;
	char path[PATH_MAX];
	mbedtls_pk_context pk;
	bool pem;
	int m = 0;

	if (!d)
		return err_sys(EXIT_REFUSED, "trusted_keys directory %s", dir);
	if ((fstat(dirfd(d), &st) < 0 ? err_sys(EXIT_REFUSED, "trusted_keys directory %s", dir)
				       : fsafe_trusted(&st, "trusted_keys directory", dir)) < 0) {
		closedir(d);
		return -1;
	}
	err_clear();
	while (m >= 0 && (e = readdir(d))) {
		if (e->d_name[0] == '.' && (!e->d_name[1] || !strcmp(e->d_name, "..")))
			continue;
		if (str_fmt(path, sizeof(path), "%s/%s", dir, e->d_name) < 0)
			continue;
		pem = is_pem(e->d_name);
		if (!pem)
			err_set(EXIT_USAGE, "%s: only files named *.pem are keys", path);
		else if (m)
			continue; /* the signer's key is found: other keys are not read */
		if (pem && trusted_key_at(d, e->d_name, path, &pk) == 0) {
			if ((m = key_is(&pk, want)) == 1)
				str_copy(used, used_size, path);
		} else if (err_code() == EXIT_REFUSED) {
			m = -1;
		} else {
			log_warn("trusted_keys: skipped %s", err_msg());
		}
		if (m >= 0)
			err_clear(); /* another signer's key, or no key: not this one */
	}
	closedir(d);
	if (m < 0)
		return -1;
	if (m == 0)
		return err_set(EXIT_REFUSED, "wrong key: no key in %s matches the image's signer", dir);
	return check(&pk, used, hash, sig, sig_len);
}

int sig_sign_header(struct img_header *h, const char *key_path)
{
	uint8_t bytes[IMG_HEADER_SIZE], hash[SIG_HASH];

	/* The key id is part of what is signed, so it is set first. */
	if (sig_key_id(key_path, h->key_id) < 0)
		return -1;
	memset(h->sig, 0, sizeof(h->sig));
	h->sig_len = 0;
	img_signed_bytes(h, bytes);
	sig_sha256(bytes, sizeof(bytes), hash);
	return sig_sign(key_path, hash, h->sig, &h->sig_len, IMG_SIG_MAX);
}
