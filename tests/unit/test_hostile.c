/* test_hostile: hostile images through the restore path (snap_restore) with a
 * fake QEMU that records being run: bad header fields, every truncation, and
 * forged definitions reaching for vmsnap's control plane, each refused (exit
 * class 3) before QEMU starts; vm_def_check on its own. Tables, one per kind. */
#include "helpers.h"
#include "conf.h"
#include "snap.h"
#include "vm.h"

static char dir[64], run[4096], marker[4096], img[4096], pidfile[4096];
static struct conf conf;

static const char def_ok[] = "-m 64\n-nodefaults\n";

static int setup(void **s)
{
	char path[4096], script[8192];

	(void)s;
	tu_mkdtemp(dir);
	tu_path(run, dir, "run");
	tu_path(marker, dir, "qemu-ran");
	tu_path(img, dir, "hostile.img");
	tu_path(pidfile, run, "vm1.pid");
	mkdir(run, 0700);
	conf_defaults(&conf);
	str_copy(conf.run_dir, sizeof(conf.run_dir), run);
	str_copy(conf.vm_dir, sizeof(conf.vm_dir), tu_path(path, dir, "vms"));
	str_copy(conf.save_dir, sizeof(conf.save_dir), dir);
	str_copy(conf.trusted_keys, sizeof(conf.trusted_keys), tu_path(path, dir, "trusted"));
	/* The fake QEMU leaves a mark and fails: a launch is seen, nothing runs. */
	str_copy(conf.qemu, sizeof(conf.qemu), tu_path(path, dir, "fake-qemu"));
	snprintf(script, sizeof(script), "#!/bin/sh\necho \"$@\" >'%s'\necho 'fake QEMU' >&2\nexit 1\n",
		 marker);
	tu_write_str(conf.qemu, script);
	chmod(conf.qemu, 0755);
	return 0;
}

static int teardown(void **s)
{
	(void)s;
	tu_rmtree(dir);
	return 0;
}

/* Restore img the way `vmsnap restore IMG` does. */
static int restore(void)
{
	struct restore_opts o = { .running = -1 };
	struct restore_result r;

	unlink(marker);
	err_clear();
	return snap_restore(&conf, img, &o, &r);
}

/* Refused with EXIT_REFUSED, the message names want, QEMU never ran. */
static int refused_before_qemu(const char *what, int rc, const char *want)
{
	if (rc == -1 && err_code() == EXIT_REFUSED && strstr(err_msg(), want) &&
	    access(marker, F_OK) < 0 && access(pidfile, F_OK) < 0) {
		if (getenv("TEST_VERBOSE"))
			print_message("# %s: %s\n", what, tu_msg());
		return 0;
	}
	print_error("# %s: rc %d, code %d, '%s' (want '%s'), QEMU %s\n", what, rc, err_code(),
		    tu_msg(), want, access(marker, F_OK) == 0 ? "RAN" : "not run");
	return 1;
}

/* A valid v2 image of def with a payload digest; h is what was written. */
static void write_image(struct img_header *h, const char *def)
{
	tu_header(h, 0, 8192);
	tu_write_image(img, h, def, 4096, NULL);
}

/* Rewrite the header from h with a correct header digest, as a forger would. */
static void rewrite_header(const struct img_header *h)
{
	uint8_t b[IMG_HEADER_SIZE];
	int fd = open(img, O_WRONLY);

	img_encode(h, b);
	if (fd < 0 || pwrite(fd, b, sizeof(b), 0) != (ssize_t)sizeof(b))
		fail_msg("rewriting %s", img);
	close(fd);
}

/* --- header fields out of range -------------------------------------------- */

#define EDIT(fn, stmt) static void fn(struct img_header *h) { stmt; }
EDIT(h_version0, h->version = 0)
EDIT(h_version1, h->version = 1)
EDIT(h_version5, h->version = 5)
EDIT(h_version_max, h->version = 0xffffffffu)
EDIT(h_def_off_eof, h->def_offset = 1ull << 40)
EDIT(h_def_off_max, h->def_offset = UINT64_MAX)
EDIT(h_def_len_max, h->def_length = UINT64_MAX)
EDIT(h_def_len_big, h->def_length = IMG_DEF_MAX + 1)
EDIT(h_def_len_eof, (h->def_length = 8192, h->stream_offset = img_stream_offset(8192)))
EDIT(h_stream_off_eof, h->stream_offset = 1ull << 50)
EDIT(h_stream_off_max, h->stream_offset = UINT64_MAX)
EDIT(h_stream_len_eof, h->stream_length += 1)
EDIT(h_stream_len_wrap, h->stream_length = UINT64_MAX - h->stream_offset + 1)
EDIT(h_stream_len_max, h->stream_length = UINT64_MAX)
EDIT(h_stream_len0, h->stream_length = 0)
EDIT(h_channels0, h->channels = 0)
EDIT(h_channels257, h->channels = IMG_CHANNELS_MAX + 1)
EDIT(h_channels_max, h->channels = 0xffffffffu)
EDIT(h_chunk1, h->digest_chunk = 1)
EDIT(h_chunk_odd, h->digest_chunk = 3 * 4096)
EDIT(h_chunk_2g, h->digest_chunk = 0x80000000u)
EDIT(h_sig_len_max, h->sig_len = 0xffff)
EDIT(h_sig_tail, (h->sig_len = 8, memset(h->sig, 1, 9)))
EDIT(h_state0, h->state = 0)
EDIT(h_partial, h->state = IMG_PARTIAL)
EDIT(h_consumed, h->state = IMG_CONSUMED)
EDIT(h_flags, h->flags |= 1u << 7)
EDIT(h_name_unterminated, memset(h->name, 'a', sizeof(h->name)))
EDIT(h_name_climbs, strcpy(h->name, "../../etc/vm1"))
EDIT(h_name_empty, h->name[0] = 0)
EDIT(h_name_option, strcpy(h->name, "-daemonize"))
EDIT(h_ram_path_v2, strcpy(h->ram_path, "/run/vmsnap/vm2.qmp"))
EDIT(h_v4_climbs, (h->version = 4, h->ram_bytes = h->ram_size, strcpy(h->ram_path, "../x.ram")))
EDIT(h_payload_digest, h->payload_digest[5] ^= 1)
EDIT(h_def_digest, h->def_digest[0] ^= 1)
EDIT(h_no_digest_chunk_v2, h->digest_chunk = 4096 * 2) /* a different chunking */

static const struct {
	const char *what;
	void (*edit)(struct img_header *h);
	const char *want;
} header_cases[] = {
	{ "version 0", h_version0, "version 0 " },
	{ "version 1", h_version1, "version 1 " },
	{ "version 5", h_version5, "version 5 " },
	{ "version 0xffffffff", h_version_max, "version 4294967295" },
	{ "def_offset past EOF", h_def_off_eof, "def_offset" },
	{ "def_offset UINT64_MAX", h_def_off_max, "def_offset" },
	{ "def_length UINT64_MAX", h_def_len_max, "def_length" },
	{ "def_length 64 KiB + 1", h_def_len_big, "def_length" },
	{ "definition past EOF", h_def_len_eof, "truncated" },
	{ "stream_offset past EOF", h_stream_off_eof, "stream_offset" },
	{ "stream_offset UINT64_MAX", h_stream_off_max, "stream_offset" },
	{ "stream one byte past EOF", h_stream_len_eof, "truncated" },
	{ "stream_length wraps to 0", h_stream_len_wrap, "overflows" },
	{ "stream_length UINT64_MAX", h_stream_len_max, "overflows" },
	{ "stream_length 0", h_stream_len0, "stream_length" },
	{ "channels 0", h_channels0, "channels" },
	{ "channels 257", h_channels257, "channels" },
	{ "channels 0xffffffff", h_channels_max, "channels" },
	{ "digest_chunk 1", h_chunk1, "digest_chunk" },
	{ "digest_chunk 12 KiB", h_chunk_odd, "digest_chunk" },
	{ "digest_chunk 2 GiB", h_chunk_2g, "digest_chunk" },
	{ "sig_len 0xffff", h_sig_len_max, "sig_len" },
	{ "signature bytes past sig_len", h_sig_tail, "past sig_len" },
	{ "state 0", h_state0, "state" },
	{ "state partial", h_partial, "incomplete" },
	{ "state consumed", h_consumed, "consumed" },
	{ "unknown flag", h_flags, "flags" },
	{ "name not terminated", h_name_unterminated, "name" },
	{ "name climbs out of run_dir", h_name_climbs, "VM name '../../etc/vm1' is not valid" },
	{ "name empty", h_name_empty, "VM name '' is not valid" },
	{ "name is an option", h_name_option, "VM name '-daemonize' is not valid" },
	{ "ram_path in a v2 image", h_ram_path_v2, "ram_path" },
	{ "v4 ram_path climbs out", h_v4_climbs, "ram_path" },
	{ "payload digest changed", h_payload_digest, "payload digest mismatch" },
	{ "definition digest changed", h_def_digest, "definition digest mismatch" },
	{ "digest chunk changed", h_no_digest_chunk_v2, "payload digest mismatch" },
};

static void test_header_fields_out_of_range(void **s)
{
	int failed = 0;

	(void)s;
	for (size_t i = 0; i < ARRAY_SIZE(header_cases); i++) {
		struct img_header h;

		write_image(&h, def_ok);
		header_cases[i].edit(&h);
		rewrite_header(&h);
		failed += refused_before_qemu(header_cases[i].what, restore(), header_cases[i].want);
	}
	assert_int_equal(failed, 0);
}

/* Damage the digest itself, or the magic: the forger did not re-digest. */
static void test_header_digest_and_magic(void **s)
{
	static const struct { const char *what; off_t off; const char *want; } t[] = {
		{ "magic", 0, "bad magic" },
		{ "header digest", IMG_HEADER_SIZE - 1, "header digest mismatch" },
		{ "a field, not re-digested", 72, "header digest mismatch" },
	};
	int failed = 0;

	(void)s;
	for (size_t i = 0; i < ARRAY_SIZE(t); i++) {
		struct img_header h;
		uint8_t b;
		int fd;

		write_image(&h, def_ok);
		fd = open(img, O_RDWR);
		assert_true(fd >= 0);
		assert_int_equal(pread(fd, &b, 1, t[i].off), 1);
		b ^= 0x40;
		assert_int_equal(pwrite(fd, &b, 1, t[i].off), 1);
		close(fd);
		failed += refused_before_qemu(t[i].what, restore(), t[i].want);
	}
	assert_int_equal(failed, 0);
}

/* The control: the same image unharmed reaches QEMU (the fake one fails). */
static void test_control_valid_image_reaches_qemu(void **s)
{
	struct img_header h;

	(void)s;
	write_image(&h, def_ok);
	assert_int_equal(restore(), -1);
	assert_err(EXIT_FAIL, "QEMU failed to start VM 'vm1'");
	assert_int_equal(access(marker, F_OK), 0);
}

/* Cut at every byte of the header and definition and across the stream:
 * each cut image is refused by the restore path, QEMU never started.
 * (test_image_refusals cuts the header for vfy_read alone.) */
static void test_every_truncation_is_refused(void **s)
{
	struct img_header h;
	struct stat st;
	int fd, failed = 0;
	char what[64];

	(void)s;
	write_image(&h, def_ok);
	assert_int_equal(stat(img, &st), 0);
	assert_int_equal((uint64_t)st.st_size, h.stream_offset + h.stream_length);
	fd = open(img, O_RDWR);
	assert_true(fd >= 0);
	for (off_t len = st.st_size - 1; len >= 0 && failed < 5; len--) {
		assert_int_equal(ftruncate(fd, len), 0);
		snprintf(what, sizeof(what), "cut at %lld", (long long)len);
		failed += refused_before_qemu(what, restore(), "truncated");
	}
	close(fd);
	assert_int_equal(failed, 0);
}

/* --- forged definitions ----------------------------------------------------- */

/* text with @RUN@ (run_dir) and @DIR@ (the scratch directory) filled in. */
static const char *subst(const char *text)
{
	static char out[8192];
	size_t n = 0;

	while (*text && n < sizeof(out) - 4200) {
		if (!strncmp(text, "@RUN@", 5)) {
			n += (size_t)sprintf(out + n, "%s", run);
			text += 5;
		} else if (!strncmp(text, "@DIR@", 5)) {
			n += (size_t)sprintf(out + n, "%s", dir);
			text += 5;
		} else {
			out[n++] = *text++;
		}
	}
	out[n] = 0;
	return out;
}

static const struct {
	const char *what, *def, *want;
} def_cases[] = {
	{ "-incoming", "-m 64\n-incoming tcp:0:4444\n", "option -incoming is not allowed" },
	{ "-qmp", "-m 64\n-qmp unix:/tmp/evil.sock,server=on,wait=off\n", "option -qmp is not allowed" },
	{ "--qmp", "-m 64\n--qmp tcp:127.0.0.1:4444,server=on\n", "option --qmp is not allowed" },
	{ "-qmp-pretty", "-qmp-pretty stdio\n", "option -qmp-pretty is not allowed" },
	{ "-daemonize", "-m 64\n-daemonize\n", "option -daemonize is not allowed" },
	{ "-monitor", "-monitor stdio\n", "option -monitor is not allowed" },
	{ "-mon", "-chardev socket,id=m,path=/tmp/m.sock\n-mon chardev=m,mode=control\n",
	  "option -mon is not allowed" },
	{ "-readconfig", "-readconfig /etc/qemu/evil.cfg\n", "option -readconfig is not allowed" },
	{ "-pidfile", "-pidfile @RUN@/vm2.pid\n", "option -pidfile is not allowed" },
	{ "-S", "-m 64\n-S\n", "option -S is not allowed" },
	{ "-loadvm", "-loadvm snap1\n", "option -loadvm is not allowed" },
	{ "-chroot", "-chroot /tmp\n", "option -chroot is not allowed" },
	{ "-runas", "-runas nobody\n", "option -runas is not allowed" },
	{ "-run-with", "-run-with user=nobody\n", "option -run-with is not allowed" },
	{ "-sandbox", "-sandbox off\n", "option -sandbox is not allowed" },
	{ "another VM's QMP socket in run_dir",
	  "-m 64\n-chardev socket,id=c,path=@RUN@/vm2.qmp\n-serial chardev:c\n",
	  ":2: option -chardev 'socket,id=c,path=" },
	{ "a QMP socket via -chardev, elsewhere", "-chardev socket,id=c,path=/var/run/other/vm2.qmp\n",
	  "names a QMP socket" },
	{ "a QMP socket via -serial unix:", "-serial unix:@RUN@/vm2.qmp\n", "QMP socket" },
	{ "a QMP socket via -netdev stream",
	  "-netdev stream,id=n,addr.type=unix,addr.path=/tmp/x/vm2.qmp\n", "QMP socket" },
	{ "a QMP socket via -gdb", "-gdb unix:/tmp/vm2.qmp,server=on\n", "QMP socket" },
	{ "another VM's pidfile as a disk", "-drive file=@RUN@/vm2.pid,format=raw,if=virtio\n",
	  "names a file in run_dir" },
	{ "another VM's definition as a serial log", "-chardev file,id=s,path=@RUN@/vm2.vm\n",
	  "names a file in run_dir" },
	{ "another VM's lock via -D", "-D @RUN@/vm2.lock\n", "names a file in run_dir" },
	{ "run_dir itself", "-virtfs local,path=@RUN@,mount_tag=r,security_model=none\n",
	  "names a file in run_dir" },
	{ "run_dir through '..'", "-chardev socket,id=c,path=@DIR@/nope/../run/vm2.sock\n",
	  "names a file in run_dir" },
	{ "run_dir through '//' and '.'", "-chardev socket,id=c,path=@DIR@//./run/./vm2.sock\n",
	  "names a file in run_dir" },
	{ "run_dir through a symlink", "-chardev socket,id=c,path=@DIR@/link/vm2.sock\n",
	  "names a file in run_dir" },
	{ "a QMP socket through a symlink", "-chardev socket,id=c,path=@DIR@/qmp-link\n",
	  "leads to a QMP socket" },
	{ "run_dir relative to the cwd", "-drive file=run/vm2.pid,format=raw\n",
	  "names a file in run_dir" },
	{ "QEMU's ',,' escape", "-chardev socket,id=c,path=@RUN@/a,,b\n", "names a file in run_dir" },
	{ "JSON with escaped slashes",
	  "-blockdev {\"driver\":\"file\",\"node-name\":\"f\",\"filename\":\"\\/@RUN@\\/vm2.pid\"}\n",
	  "names a file in run_dir" },
	{ "JSON nested", "-object {\"qom-type\":\"x\",\"id\":\"y\",\"props\":[{\"path\":\"@RUN@/vm2.qmp\"}]}\n",
	  "QMP socket" },
	{ "JSON vmsnap cannot read", "-blockdev {'driver':'file','filename':'@RUN@/vm2.pid'}\n",
	  "JSON vmsnap cannot read" },
	/* Security round 2 (issue 13, item 14): each passed the filter before. */
	{ "JSON with options after it (-trace)", "-trace {},file=@RUN@/vm2.pid\n",
	  "one object, nothing after it" },
	{ "JSON with options after it (-fw_cfg)", "-fw_cfg {},file=@RUN@/vm2.vm,name=opt/x\n",
	  "one object, nothing after it" },
	{ "a json: file name in -drive",
	  "-drive file=json:{\"driver\":\"file\",,\"filename\":\"@RUN@/vm2.pid\"},format=raw\n",
	  "is a json: file name" },
	{ "a json: file name inside -blockdev JSON",
	  "-blockdev {\"driver\":\"raw\",\"node-name\":\"r\",\"file\":\"json:{}\"}\n",
	  "is a json: file name" },
	{ "a human monitor on -serial mon:", "-serial mon:unix:@DIR@/m.sock,server=on,wait=off\n",
	  "opens a monitor (mon:)" },
	{ "a human monitor on -serial mon:stdio", "-serial mon:stdio\n", "opens a monitor (mon:)" },
	{ "a forbidden option in the value slot", "-nodefaults -readconfig\n-m 64\n",
	  ":1: option -nodefaults: value '-readconfig' starts with '-'" },
	{ "-S in the value slot", "-no-reboot -S\n", "value '-S' starts with '-'" },
	{ "not an option", "-m 64\nrm -rf /\n", ":2: 'rm -rf /': each line is one QEMU option" },
	{ "the guest agent's chardev, defined by the image",
	  "-chardev socket,id=vmsnap-qga,path=/tmp/x.sock,server=on,wait=off\n",
	  "the character device vmsnap-qga is vmsnap's" },
	{ "the guest agent's chardev on a serial port", "-device isa-serial,chardev=vmsnap-qga\n",
	  "vmsnap-qga is for the guest agent's port only" },
	{ "a NUL byte", NULL, "NUL byte" },
};

static void test_forged_definitions_are_refused(void **s)
{
	char link[4096], target[4096], cwd[4096];
	int failed = 0;

	(void)s;
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(symlink(run, tu_path(link, dir, "link")), 0);
	tu_write_str(tu_path(target, dir, "elsewhere.qmp"), "");
	assert_int_equal(symlink(target, tu_path(link, dir, "qmp-link")), 0);
	assert_int_equal(chdir(dir), 0); /* for the relative path */
	for (size_t i = 0; i < ARRAY_SIZE(def_cases); i++) {
		struct img_header h;

		if (def_cases[i].def) {
			write_image(&h, subst(def_cases[i].def));
		} else { /* a NUL in the definition: written, digested and signed as is */
			static const char nul[] = "-m 64\n-name a\0b\n";
			int fd = open(img, O_RDWR);
			write_image(&h, "-m 64\n-name a_b\n");
			sig_sha256(nul, sizeof(nul) - 1, h.def_digest);
			assert_int_equal(pwrite(fd, nul, sizeof(nul) - 1, IMG_HEADER_SIZE), sizeof(nul) - 1);
			close(fd);
			rewrite_header(&h);
		}
		failed += refused_before_qemu(def_cases[i].what, restore(), def_cases[i].want);
	}
	assert_int_equal(chdir(cwd), 0);
	assert_int_equal(failed, 0);
}

/* A trusted signature does not make a definition that reaches for the
 * control plane acceptable: the checks are about what, not who. */
static void test_signed_forbidden_definition_is_refused(void **s)
{
	char key[4096], pub[4096], trusted[4096];
	struct img_header h;
	int rc, rc2;

	(void)s;
	tu_path(key, dir, "k.pem");
	mkdir(tu_path(trusted, dir, "trusted"), 0755);
	assert_int_equal(sig_keygen(key, tu_path(pub, trusted, "k.pem")), 0);
	tu_header(&h, 0, 8192);
	tu_write_image(img, &h, subst("-m 64\n-chardev socket,id=c,path=@RUN@/vm2.qmp\n"), 4096, key);
	conf.require_signature = true;
	rc = refused_before_qemu("signed, trusted key", restore(), "QMP socket");
	tu_write_image(img, &h, def_ok, 4096, key); /* the control: signed and fine */
	rc2 = restore();
	conf.require_signature = false;
	assert_int_equal(rc, 0);
	assert_int_equal(rc2, -1);
	assert_err(EXIT_FAIL, "QEMU failed to start");
}

/* unsigned_options: an unsigned image's definition may use only the options
 * listed; a signed one (signature checked) and --vm-file are not limited. */
static void test_unsigned_options_allow_list(void **s)
{
	char key[4096], pub[4096], trusted[4096];
	struct img_header h;
	int rc_refused, rc_listed, rc_signed;

	(void)s;
	str_copy(conf.unsigned_options, sizeof(conf.unsigned_options), "m, nodefaults machine");
	write_image(&h, "-m 64\n-nodefaults\n-netdev user,id=n\n");
	rc_refused = refused_before_qemu("unsigned, -netdev not listed", restore(),
					 "definition:3: option -netdev is not in unsigned_options");
	write_image(&h, "-m 64\n--nodefaults\n-machine q35\n");
	rc_listed = restore(); /* reaches the fake QEMU */
	assert_int_equal(access(marker, F_OK), 0);
	tu_path(key, dir, "ku.pem");
	mkdir(tu_path(trusted, dir, "trusted"), 0755);
	assert_int_equal(sig_keygen(key, tu_path(pub, trusted, "ku.pem")), 0);
	tu_header(&h, 0, 8192);
	tu_write_image(img, &h, "-m 64\n-netdev user,id=n\n", 4096, key);
	rc_signed = restore();
	conf.unsigned_options[0] = 0;
	unlink(pub);
	assert_int_equal(rc_refused, 0);
	assert_int_equal(rc_listed, -1);
	assert_int_equal(rc_signed, -1);
	assert_err(EXIT_FAIL, "QEMU failed to start"); /* the signed one reached QEMU */
}

/* A forbidden definition given with --vm-file is a usage error (exit 2),
 * still before QEMU. */
static void test_vm_file_forbidden_is_usage_error(void **s)
{
	struct restore_opts o = { .running = -1 };
	struct restore_result r;
	struct img_header h;
	char vmfile[4096];

	(void)s;
	write_image(&h, def_ok);
	tu_write_str(tu_path(vmfile, dir, "evil.vm"), subst("-m 64\n-serial unix:@RUN@/vm2.qmp\n"));
	o.vm_file = vmfile;
	unlink(marker);
	err_clear();
	assert_int_equal(snap_restore(&conf, img, &o, &r), -1);
	assert_err(EXIT_USAGE, "evil.vm:2: option -serial");
	assert_true(access(marker, F_OK) < 0);
}

/* --- vm_def_check directly ---------------------------------------------------- */

static void test_vm_def_check_table(void **s)
{
	static const struct { const char *def; int refused; } t[] = {
		{ "-m 256M\n-machine q35,accel=tcg\n-smp 2\n", 0 },
		{ "-chardev file,id=s,path=@DIR@/serial.log\n-serial chardev:s\n", 0 },
		{ "-drive file=@DIR@/disk.img,if=virtio,format=raw\n", 0 },
		{ "-chardev socket,id=c,path=@RUN@shot/x.sock\n", 0 }, /* a sibling, not inside */
		{ "-name vm.qmpx\n", 0 },
		{ "-append root=/dev/vda console=ttyS0 init=/sbin/init\n", 0 },
		{ "-name $(touch /tmp/pwned)\n-append a;touch x\n", 0 },
		{ "-kernel @DIR@/k\n-append qmp=x\n", 0 },
		{ "-kernel @DIR@/k\n-append -v quiet\n", 0 }, /* free text may start with '-' */
		{ "-blockdev {\"driver\":\"null-co\",\"node-name\":\"n\"}  \n", 0 },
		{ "-serial chardev:mon\n-name mon:x\n", 1 }, /* any value, strictly */
		{ "-chardev socket,id=c,path=@RUN@\n", 1 },
		{ "-chardev socket,id=c,path=@RUN@/\n", 1 },
		{ "-chardev socket,id=c,path=@RUN@/vm2.sock\n", 1 },
		{ "-chardev socket,id=c,path=vm2.qmp\n", 1 },
		{ "-chardev socket,id=c,path=/a/b/../../@RUN@/x\n", 1 },
		{ "-serial unix:@RUN@/x.sock,server=on\n", 1 },
		{ "-m 64\n-drive if=none,file=@RUN@/vm2.vm\n", 1 },
		{ "-incoming-not-an-option @RUN@/x\n", 1 }, /* any option's value */
	};
	int failed = 0;

	(void)s;
	for (size_t i = 0; i < ARRAY_SIZE(t); i++) {
		const char *def = subst(t[i].def);
		struct vm_def d;
		int rc;

		err_clear();
		if (vm_def_parse(&d, def, strlen(def), "vm1.vm", EXIT_USAGE) < 0)
			fail_msg("case %zu: does not parse: %s", i, tu_msg());
		rc = vm_def_check(&d, run);
		if ((rc < 0) != t[i].refused || (rc < 0 && err_code() != EXIT_USAGE)) {
			print_error("# case %zu '%s': rc %d (%s)\n", i, def, rc, tu_msg());
			failed++;
		}
		vm_def_free(&d);
	}
	assert_int_equal(failed, 0);
}

/* With the cwd inside run_dir, plain words ("256M") are not taken for
 * files there; a name that exists there is. */
static void test_vm_def_check_cwd_in_run_dir(void **s)
{
	static const char ok[] = "-m 256M\n-machine q35,accel=tcg\n-name web\n";
	static const char bad[] = "-drive file=vm2.pid,format=raw\n";
	char cwd[4096], p[4096];
	struct vm_def d;

	(void)s;
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	tu_write_str(tu_path(p, run, "vm2.pid"), "1\n");
	assert_int_equal(chdir(run), 0);
	assert_int_equal(vm_def_parse(&d, ok, strlen(ok), "ok.vm", EXIT_REFUSED), 0);
	assert_int_equal(vm_def_check(&d, run), 0);
	vm_def_free(&d);
	assert_int_equal(vm_def_parse(&d, bad, strlen(bad), "image x definition", EXIT_REFUSED), 0);
	assert_int_equal(vm_def_check(&d, "."), -1); /* a relative run_dir too */
	assert_err(EXIT_REFUSED, "image x definition:1: option -drive 'file=vm2.pid,format=raw' names a file in run_dir");
	vm_def_free(&d);
	assert_int_equal(chdir(cwd), 0);
	unlink(p);
}

/* Shell syntax in a definition is data: argv holds it byte for byte
 * (vm_launch hands argv to execve; tests/integration/hostile.sh shows QEMU
 * receives it). */
static void test_shell_syntax_is_literal(void **s)
{
	static const char text[] = "-name $(touch /tmp/pwned)\n-append a;touch x|y `z` && w\n";
	static const char *const want[] = { "-name", "$(touch /tmp/pwned)", "-append",
					    "a;touch x|y `z` && w" };
	struct vm_def d;

	(void)s;
	assert_int_equal(vm_def_parse(&d, text, strlen(text), "vm1.vm", EXIT_USAGE), 0);
	assert_int_equal(d.argc, 4);
	for (int i = 0; i < 4; i++)
		assert_string_equal(d.argv[i], want[i]);
	assert_int_equal(vm_def_check(&d, run), 0);
	vm_def_free(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_control_valid_image_reaches_qemu),
		cmocka_unit_test(test_header_fields_out_of_range),
		cmocka_unit_test(test_header_digest_and_magic),
		cmocka_unit_test(test_every_truncation_is_refused),
		cmocka_unit_test(test_forged_definitions_are_refused),
		cmocka_unit_test(test_signed_forbidden_definition_is_refused),
		cmocka_unit_test(test_vm_file_forbidden_is_usage_error),
		cmocka_unit_test(test_unsigned_options_allow_list),
		cmocka_unit_test(test_vm_def_check_table),
		cmocka_unit_test(test_vm_def_check_cwd_in_run_dir),
		cmocka_unit_test(test_shell_syntax_is_literal),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
