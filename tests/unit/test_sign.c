/* test_sign: P-256 keygen, key ids, sign/verify and its refusals, trusted key
 * directories, header signatures (sig_sign_header), keys made by openssl. */
#include "helpers.h"
#include "sign.h"
#include "verify.h"

static char dir[64];
static char priv_a[4096], pub_a[4096], priv_b[4096], pub_b[4096], keys[4096];

static int setup(void **s)
{
	char p[4096];

	(void)s;
	tu_mkdtemp(dir);
	tu_path(priv_a, dir, "a.key");
	tu_path(pub_a, dir, "a.pem");
	tu_path(priv_b, dir, "b.key");
	tu_path(pub_b, dir, "b.pem");
	tu_path(keys, dir, "trusted");
	if (sig_keygen(priv_a, pub_a) < 0 || sig_keygen(priv_b, pub_b) < 0 || mkdir(keys, 0755) < 0)
		return -1;
	/* trusted/: b's key, a's key, junk; a non-.pem file is ignored. */
	if (link(pub_b, tu_path(p, keys, "0-b.pem")) < 0 || link(pub_a, tu_path(p, keys, "a.pem")) < 0)
		return -1;
	tu_write_str(tu_path(p, keys, "junk.pem"), "not a key\n");
	tu_write_str(tu_path(p, keys, "notes.txt"), "hello\n");
	return 0;
}

static int teardown(void **s)
{
	(void)s;
	tu_rmtree(dir);
	return 0;
}

static void sign_with(const char *key, const uint8_t hash[SIG_HASH], uint8_t *sig, uint16_t *len,
		      uint8_t id[SIG_HASH])
{
	if (sig_key_id(key, id) < 0 || sig_sign(key, hash, sig, len, IMG_SIG_MAX) < 0)
		fail_msg("signing with %s: %s", key, tu_msg());
	assert_in_range(*len, 8, IMG_SIG_MAX);
}

static void test_keygen_writes_private_0600_and_public(void **s)
{
	char *text;
	size_t len;
	struct stat st;

	(void)s;
	assert_int_equal(stat(priv_a, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(read_file(priv_a, 4096, &text, &len), 0);
	assert_non_null(strstr(text, "PRIVATE KEY-----"));
	free(text);
	assert_int_equal(read_file(pub_a, 4096, &text, &len), 0);
	assert_non_null(strstr(text, "-----BEGIN PUBLIC KEY-----"));
	assert_null(strstr(text, "PRIVATE"));
	free(text);
}

static void test_keygen_never_overwrites(void **s)
{
	char *before, *after, fresh[4096];
	size_t n1, n2;

	(void)s;
	assert_int_equal(read_file(priv_a, 4096, &before, &n1), 0);
	assert_int_equal(sig_keygen(priv_a, tu_path(fresh, dir, "fresh.pem")), -1);
	assert_err(EXIT_USAGE, "never overwrites");
	assert_int_equal(read_file(priv_a, 4096, &after, &n2), 0);
	assert_int_equal(n1, n2);
	assert_memory_equal(before, after, n1);
	free(before);
	free(after);
	/* An existing public key: fails, and the new private key is not left behind. */
	assert_int_equal(sig_keygen(tu_path(fresh, dir, "fresh.key"), pub_a), -1);
	assert_err(EXIT_USAGE, "never overwrites");
	assert_int_equal(access(fresh, F_OK), -1);
}

static void test_sign_then_verify(void **s)
{
	uint8_t hash[SIG_HASH], sig[IMG_SIG_MAX], id_a[SIG_HASH], id_b[SIG_HASH];
	uint16_t len;

	(void)s;
	sig_sha256("payload", 7, hash);
	sign_with(priv_a, hash, sig, &len, id_a);
	assert_int_equal(sig_verify(pub_a, hash, sig, len, id_a), 0);
	assert_int_equal(sig_key_id(priv_b, id_b), 0);
	assert_memory_not_equal(id_a, id_b, SIG_HASH);
}

static void test_flipped_hash_bit_is_refused(void **s)
{
	uint8_t hash[SIG_HASH], sig[IMG_SIG_MAX], id[SIG_HASH];
	uint16_t len;

	(void)s;
	sig_sha256("payload", 7, hash);
	sign_with(priv_a, hash, sig, &len, id);
	for (unsigned bit = 0; bit < 8 * SIG_HASH; bit += 37) {
		hash[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		assert_int_equal(sig_verify(pub_a, hash, sig, len, id), -1);
		assert_err(EXIT_REFUSED, "signature check failed");
		hash[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
	assert_int_equal(sig_verify(pub_a, hash, sig, len, id), 0);
}

static void test_flipped_signature_byte_is_refused(void **s)
{
	uint8_t hash[SIG_HASH], sig[IMG_SIG_MAX], id[SIG_HASH];
	uint16_t len;

	(void)s;
	sig_sha256("payload", 7, hash);
	sign_with(priv_a, hash, sig, &len, id);
	for (unsigned i = 0; i < len; i++) {
		sig[i] ^= 0x10;
		err_clear();
		if (sig_verify(pub_a, hash, sig, len, id) != -1 || err_code() != EXIT_REFUSED)
			fail_msg("signature byte %u flipped: not refused (%s)", i, tu_msg());
		sig[i] ^= 0x10;
	}
	assert_int_equal(sig_verify(pub_a, hash, sig, len - 1, id), -1);
	assert_err(EXIT_REFUSED, "signature check failed");
}

static void test_wrong_key_is_refused(void **s)
{
	uint8_t hash[SIG_HASH], sig[IMG_SIG_MAX], id_a[SIG_HASH], id_b[SIG_HASH];
	uint16_t len;

	(void)s;
	sig_sha256("payload", 7, hash);
	sign_with(priv_a, hash, sig, &len, id_a);
	assert_int_equal(sig_verify(pub_b, hash, sig, len, id_a), -1);
	assert_err(EXIT_REFUSED, "wrong key");
	/* A header claiming b's key id does not make a's signature b's. */
	assert_int_equal(sig_key_id(priv_b, id_b), 0);
	assert_int_equal(sig_verify(pub_b, hash, sig, len, id_b), -1);
	assert_err(EXIT_REFUSED, "signature check failed");
}

static void test_verify_dir_finds_the_signer(void **s)
{
	uint8_t hash[SIG_HASH], sig[IMG_SIG_MAX], id[SIG_HASH];
	char used[4096] = "", want[4096];
	uint16_t len;

	(void)s;
	sig_sha256("dir", 3, hash);
	sign_with(priv_a, hash, sig, &len, id);
	assert_int_equal(sig_verify_dir(keys, hash, sig, len, id, used, sizeof(used)), 0);
	assert_string_equal(used, tu_path(want, keys, "a.pem"));
	hash[0] ^= 1;
	assert_int_equal(sig_verify_dir(keys, hash, sig, len, id, used, sizeof(used)), -1);
	assert_err(EXIT_REFUSED, "signature check failed");
	id[0] ^= 1; /* no key has this id */
	assert_int_equal(sig_verify_dir(keys, hash, sig, len, id, used, sizeof(used)), -1);
	assert_err(EXIT_REFUSED, "wrong key");
}

static void test_verify_dir_refuses_world_writable(void **s)
{
	uint8_t hash[SIG_HASH], sig[IMG_SIG_MAX], id[SIG_HASH];
	char used[4096];
	uint16_t len;
	struct stat st;

	(void)s;
	sig_sha256("dir", 3, hash);
	sign_with(priv_a, hash, sig, &len, id);
	assert_int_equal(stat(keys, &st), 0);
	assert_int_equal(chmod(keys, st.st_mode | S_IWOTH), 0);
	assert_int_equal(sig_verify_dir(keys, hash, sig, len, id, used, sizeof(used)), -1);
	assert_err(EXIT_REFUSED, "writable by group or others");
	assert_int_equal(chmod(keys, st.st_mode & 07777), 0);
}

/* Not only the world-write bit: group-writable, another owner, a symlinked
 * key file: each refused, naming the file and the fix. */
static void test_verify_dir_refuses_unsafe_keys(void **s)
{
	uint8_t hash[SIG_HASH], sig[IMG_SIG_MAX], id[SIG_HASH];
	char used[4096], key[4096], link_path[4096];
	uint16_t len;

	(void)s;
	sig_sha256("dir", 3, hash);
	sign_with(priv_a, hash, sig, &len, id);
	assert_int_equal(chmod(keys, 0775), 0);
	assert_int_equal(sig_verify_dir(keys, hash, sig, len, id, used, sizeof(used)), -1);
	assert_err(EXIT_REFUSED, "writable by group or others");
	assert_int_equal(chmod(keys, 0755), 0);
	assert_int_equal(chown(keys, 65534, 65534), 0);
	assert_int_equal(sig_verify_dir(keys, hash, sig, len, id, used, sizeof(used)), -1);
	assert_err(EXIT_REFUSED, "trusted belongs to another user");
	assert_int_equal(chown(keys, 0, 0), 0);
	tu_path(key, keys, "a.pem");
	assert_int_equal(chmod(key, 0664), 0);
	assert_int_equal(sig_verify_dir(keys, hash, sig, len, id, used, sizeof(used)), -1);
	assert_err(EXIT_REFUSED, "a.pem is writable by group or others");
	assert_int_equal(chmod(key, 0644), 0);
	assert_int_equal(chown(key, 65534, 65534), 0);
	assert_int_equal(sig_verify_dir(keys, hash, sig, len, id, used, sizeof(used)), -1);
	assert_err(EXIT_REFUSED, "a.pem belongs to another user");
	assert_int_equal(chown(key, 0, 0), 0);
	assert_int_equal(sig_verify_dir(keys, hash, sig, len, id, used, sizeof(used)), 0);
	/* a key reachable only through a symlink is never used */
	assert_int_equal(sig_keygen(tu_path(key, dir, "c.key"), tu_path(link_path, dir, "c.pem")), 0);
	sign_with(key, hash, sig, &len, id);
	assert_int_equal(symlink(link_path, tu_path(key, keys, "c.pem")), 0);
	assert_int_equal(sig_verify_dir(keys, hash, sig, len, id, used, sizeof(used)), -1);
	assert_err(EXIT_REFUSED, "c.pem is a symbolic link");
	unlink(key);
}

static void test_signed_header_verifies_over_signed_bytes(void **s)
{
	struct img_header h;
	uint8_t bytes[IMG_HEADER_SIZE], hash[SIG_HASH], id[SIG_HASH];

	(void)s;
	tu_header(&h, 100, 4096);
	h.state = IMG_PARTIAL;
	assert_int_equal(sig_sign_header(&h, priv_a), 0);
	assert_int_equal(sig_key_id(priv_a, id), 0);
	assert_memory_equal(h.key_id, id, SIG_HASH);
	assert_in_range(h.sig_len, 8, IMG_SIG_MAX);
	h.state = IMG_CONSUMED; /* state changes after signing */
	img_signed_bytes(&h, bytes);
	sig_sha256(bytes, sizeof(bytes), hash);
	assert_int_equal(sig_verify(pub_a, hash, h.sig, h.sig_len, h.key_id), 0);
	h.flags ^= IMG_F_GOLDEN;
	img_signed_bytes(&h, bytes);
	sig_sha256(bytes, sizeof(bytes), hash);
	assert_int_equal(sig_verify(pub_a, hash, h.sig, h.sig_len, h.key_id), -1);
	assert_err(EXIT_REFUSED, "signature check failed");
}

/* The whole restore-side check: vfy_image on a signed image file. */
static void test_signed_image_passes_vfy_image(void **s)
{
	struct vfy_opts o = { .pubkey = pub_a, .require_signature = true, .verify_payload = true };
	struct vfy_result r;
	struct img_header h;
	struct conf c;
	char img[4096];
	int fd;

	(void)s;
	conf_defaults(&c);
	tu_header(&h, 0, 3 * 4096 + 5);
	tu_write_image(tu_path(img, dir, "signed.img"), &h, "-m 64\n", 4096, priv_a);
	fd = open(img, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(vfy_image(&c, fd, h.stream_offset + h.stream_length, img, &o, &r), 0);
	assert_true(r.signature_checked);
	assert_true(r.payload_checked);
	assert_string_equal(r.def, "-m 64\n");
	vfy_free(&r);
	o.pubkey = NULL; /* the trusted_keys directory */
	str_copy(c.trusted_keys, sizeof(c.trusted_keys), keys);
	assert_int_equal(vfy_image(&c, fd, h.stream_offset + h.stream_length, img, &o, &r), 0);
	assert_string_equal(r.key_used, tu_path(img, keys, "a.pem"));
	vfy_free(&r);
	o.pubkey = pub_b;
	assert_int_equal(vfy_image(&c, fd, h.stream_offset + h.stream_length, img, &o, &r), -1);
	assert_err(EXIT_REFUSED, "wrong key");
	close(fd);
}

/* Make a key with openssl (args after "openssl"); skip when it is missing. */
static void openssl(const char *args, const char *out)
{
	char cmd[8192];

	snprintf(cmd, sizeof(cmd), "openssl %s -out '%s' 2>/dev/null", args, out);
	if (system("command -v openssl >/dev/null 2>&1") != 0)
		skip();
	if (system(cmd) != 0)
		fail_msg("%s failed", cmd);
}

static void check_foreign_p256(const char *gen_args, const char *stem)
{
	char priv[4096], pub[4096], args[4200], name[64];
	uint8_t hash[SIG_HASH], sig[IMG_SIG_MAX], id[SIG_HASH];
	uint16_t len;

	snprintf(name, sizeof(name), "%s.key", stem);
	openssl(gen_args, tu_path(priv, dir, name));
	snprintf(args, sizeof(args), "pkey -in '%s' -pubout", priv);
	snprintf(name, sizeof(name), "%s.pem", stem);
	openssl(args, tu_path(pub, dir, name));
	sig_sha256("openssl", 7, hash);
	sign_with(priv, hash, sig, &len, id);
	assert_int_equal(sig_verify(pub, hash, sig, len, id), 0);
}

static void test_openssl_p256_pkcs8_key_signs_and_verifies(void **s)
{
	(void)s;
	check_foreign_p256("genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256", "ossl-p256");
}

static void test_openssl_p256_sec1_key_signs_and_verifies(void **s)
{
	(void)s;
	check_foreign_p256("ecparam -name prime256v1 -genkey -noout", "ossl-sec1");
}

static void test_p384_and_rsa_keys_are_refused(void **s)
{
	static const struct { const char *gen, *stem; } t[] = {
		{ "genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384", "p384" },
		{ "genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024", "rsa" },
	};
	uint8_t hash[SIG_HASH] = { 1 }, sig[IMG_SIG_MAX] = { 0x30 }, id[SIG_HASH] = { 0 };
	char priv[4096], pub[4096], args[4200], name[64];
	uint16_t len;

	(void)s;
	for (size_t i = 0; i < ARRAY_SIZE(t); i++) {
		snprintf(name, sizeof(name), "%s.key", t[i].stem);
		openssl(t[i].gen, tu_path(priv, dir, name));
		snprintf(args, sizeof(args), "pkey -in '%s' -pubout", priv);
		snprintf(name, sizeof(name), "%s.pem", t[i].stem);
		openssl(args, tu_path(pub, dir, name));
		assert_int_equal(sig_key_id(priv, id), -1);
		assert_err(EXIT_USAGE, priv);
		assert_int_equal(sig_sign(priv, hash, sig, &len, sizeof(sig)), -1);
		assert_err(EXIT_USAGE, priv);
		assert_int_equal(sig_verify(pub, hash, sig, 8, id), -1);
		assert_err(EXIT_USAGE, pub);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keygen_writes_private_0600_and_public),
		cmocka_unit_test(test_keygen_never_overwrites),
		cmocka_unit_test(test_sign_then_verify),
		cmocka_unit_test(test_flipped_hash_bit_is_refused),
		cmocka_unit_test(test_flipped_signature_byte_is_refused),
		cmocka_unit_test(test_wrong_key_is_refused),
		cmocka_unit_test(test_verify_dir_finds_the_signer),
		cmocka_unit_test(test_verify_dir_refuses_world_writable),
		cmocka_unit_test(test_verify_dir_refuses_unsafe_keys),
		cmocka_unit_test(test_signed_header_verifies_over_signed_bytes),
		cmocka_unit_test(test_signed_image_passes_vfy_image),
		cmocka_unit_test(test_openssl_p256_pkcs8_key_signs_and_verifies),
		cmocka_unit_test(test_openssl_p256_sec1_key_signs_and_verifies),
		cmocka_unit_test(test_p384_and_rsa_keys_are_refused),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
