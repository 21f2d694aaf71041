/* inspect: show an image's header, its embedded VM definition and a summary
 * of the QEMU stream (text, or JSON with --json). Reads; never changes. */
#include "cmd.h"
#include "cJSON.h"
#include "err.h"
#include "image.h"
#include "storage.h"
#include "util.h"
#include "verify.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The first bytes of a QEMU migration stream: magic, version, and the
 * machine type of its configuration section. */
static void stream_summary(int fd, const struct img_header *h, cJSON *o)
{
	uint8_t b[5 + 4 + 1 + 4 + 256];
	ssize_t n = pread_all(fd, b, sizeof(b), (off_t)h->stream_offset);
	uint32_t len;

	if (n < 14 || memcmp(b, "QEVM", 4)) {
		cJSON_AddStringToObject(o, "stream", "not a QEMU migration stream");
		return;
	}
	cJSON_AddStringToObject(o, "stream", "QEMU migration stream");
	cJSON_AddNumberToObject(o, "stream_version", b[4] << 24 | b[5] << 16 | b[6] << 8 | b[7]);
	if (b[8] == 0x07) { /* QEMU_VM_CONFIGURATION: be32 length, machine name */
		len = (uint32_t)b[9] << 24 | (uint32_t)b[10] << 16 | (uint32_t)b[11] << 8 | b[12];
		if (len < 200 && (ssize_t)(13 + len) <= n) {
			char m[256];
			memcpy(m, b + 13, len);
			m[len] = 0;
			cJSON_AddStringToObject(o, "stream_machine", m);
		}
	}
}

static void hex_field(cJSON *o, const char *key, const uint8_t *d, size_t n)
{
	char hex[2 * IMG_DIGEST + 1];
	bool zero = true;

	for (size_t i = 0; i < n; i++)
		zero &= d[i] == 0;
	if (zero)
		cJSON_AddNullToObject(o, key);
	else
		cJSON_AddStringToObject(o, key, fmt_hex(d, n, hex, sizeof(hex)));
}

static cJSON *describe(int fd, uint64_t size, const char *path, const struct img_header *h,
		       const char *def)
{
	cJSON *o = cJSON_CreateObject();
	struct stat st;

	cJSON_AddStringToObject(o, "image", path);
	cJSON_AddNumberToObject(o, "version", h->version);
	cJSON_AddStringToObject(o, "state", img_state_name(h->state));
	cJSON_AddStringToObject(o, "name", h->name);
	cJSON_AddStringToObject(o, "machine", h->machine);
	cJSON_AddStringToObject(o, "qemu_version", h->qemu_version);
	cJSON_AddNumberToObject(o, "created", (double)h->created);
	cJSON_AddBoolToObject(o, "was_running", h->flags & IMG_F_WAS_RUNNING);
	cJSON_AddBoolToObject(o, "golden", h->flags & IMG_F_GOLDEN);
	cJSON_AddBoolToObject(o, "direct_io", h->flags & IMG_F_DIRECT_IO);
	cJSON_AddNumberToObject(o, "channels", h->channels);
	cJSON_AddNumberToObject(o, "ram_size", (double)h->ram_size);
	cJSON_AddNumberToObject(o, "def_offset", (double)h->def_offset);
	cJSON_AddNumberToObject(o, "def_length", (double)h->def_length);
	cJSON_AddNumberToObject(o, "stream_offset", (double)h->stream_offset);
	cJSON_AddNumberToObject(o, "stream_length", (double)h->stream_length);
	cJSON_AddNumberToObject(o, "image_size", (double)size);
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
		cJSON_AddNumberToObject(o, "on_disk", (double)st.st_blocks * 512);
	hex_field(o, "def_digest", h->def_digest, IMG_DIGEST);
	if (h->digest_chunk) {
		hex_field(o, "payload_digest", h->payload_digest, IMG_DIGEST);
		cJSON_AddNumberToObject(o, "digest_chunk", h->digest_chunk);
	} else {
		cJSON_AddNullToObject(o, "payload_digest");
	}
	cJSON_AddStringToObject(o, "signature", h->sig_len ? "present (check with vmsnap verify)" : "none");
	hex_field(o, "key_id", h->key_id, IMG_DIGEST);
	if (h->version == IMG_VERSION_INSTANT) {
		cJSON_AddStringToObject(o, "ram_file", h->ram_path);
		cJSON_AddNumberToObject(o, "ram_file_size", (double)h->ram_bytes);
		cJSON_AddNumberToObject(o, "ram_file_dev", (double)h->ram_dev);
		cJSON_AddNumberToObject(o, "ram_file_inode", (double)h->ram_ino);
		hex_field(o, "ram_file_digest", h->ram_digest, IMG_DIGEST);
	}
	stream_summary(fd, h, o);
	cJSON_AddStringToObject(o, "definition", def);
	return o;
}

static void print_text(const cJSON *o)
{
	const cJSON *f;

	cJSON_ArrayForEach(f, o) {
		if (!strcmp(f->string, "definition"))
			continue;
		if (cJSON_IsString(f))
			printf("%-16s %s\n", f->string, f->valuestring);
		else if (cJSON_IsBool(f))
			printf("%-16s %s\n", f->string, cJSON_IsTrue(f) ? "yes" : "no");
		else if (cJSON_IsNull(f))
			printf("%-16s -\n", f->string);
		else if (!strcmp(f->string, "created")) {
			time_t t = (time_t)f->valuedouble;
			char when[64];
			strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", gmtime(&t));
			printf("%-16s %s\n", f->string, when);
		} else
			printf("%-16s %.0f\n", f->string, f->valuedouble);
	}
	printf("definition:\n%s", cJSON_GetObjectItem(o, "definition")->valuestring);
}

const char cmd_inspect_usage[] = "inspect TARGET [--json]";

int cmd_inspect(struct conf *c, int argc, char **argv)
{
	static const struct option opts[] = { { "json", no_argument, 0, 'j' }, { 0 } };
	struct img_header h;
	bool json = false;
	char *def;
	uint64_t size;
	int fd, opt;
	cJSON *o;

	(void)c;
	optind = 1;
	while ((opt = cmd_getopt(argc, argv, "", opts)) != -1) {
		if (opt != 'j')
			return cmd_usage(cmd_inspect_usage);
		json = true;
	}
	if (argc - optind != 1)
		return cmd_usage(cmd_inspect_usage);
	if (stor_open_image(argv[optind], &fd, &size) < 0)
		return cmd_fail("inspect");
	if (vfy_read(fd, size, argv[optind], &h, &def) < 0) {
		close(fd);
		return cmd_fail("inspect");
	}
	o = describe(fd, size, argv[optind], &h, def);
	if (json) {
		char *t = cJSON_PrintUnformatted(o);
		printf("%s\n", t);
		free(t);
	} else {
		print_text(o);
	}
	cJSON_Delete(o);
	free(def);
	close(fd);
	return EXIT_OK;
}
