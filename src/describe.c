/* describe: the fields inspect prints (see describe.h). Every value comes
 * from an image that may be hostile: nothing here may trust a number. */
#include "describe.h"
#include "verify.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The first bytes of a QEMU migration stream: magic, version, and the
 * machine type of its configuration section. */
static void stream_summary(cJSON *o, const uint8_t *b, size_t n)
{
	uint32_t len;

	if (n < 14 || memcmp(b, "QEVM", 4)) {
		cJSON_AddStringToObject(o, "stream", "not a QEMU migration stream");
		return;
	}
	cJSON_AddStringToObject(o, "stream", "QEMU migration stream");
	/* Unsigned: a first byte >= 0x80 must not shift into an int's sign bit. */
	cJSON_AddNumberToObject(o, "stream_version",
				(double)((uint32_t)b[4] << 24 | (uint32_t)b[5] << 16 |
					 (uint32_t)b[6] << 8 | b[7]));
	if (b[8] == 0x07) { /* QEMU_VM_CONFIGURATION: be32 length, machine name */
		len = (uint32_t)b[9] << 24 | (uint32_t)b[10] << 16 | (uint32_t)b[11] << 8 | b[12];
		if (len < 200 && 13 + (size_t)len <= n) {
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
		cJSON_AddStringToObject(o, key, vfy_hex(d, n, hex, sizeof(hex)));
}

static void ram_fields(cJSON *o, const struct img_header *h)
{
	cJSON_AddStringToObject(o, "ram_file", h->ram_path);
	cJSON_AddNumberToObject(o, "ram_file_size", (double)h->ram_bytes);
	cJSON_AddNumberToObject(o, "ram_file_dev", (double)h->ram_dev);
	cJSON_AddNumberToObject(o, "ram_file_inode", (double)h->ram_ino);
	hex_field(o, "ram_file_digest", h->ram_digest, IMG_DIGEST);
}

cJSON *dsc_image(const struct img_header *h, const char *path, uint64_t size, long long on_disk,
		 const uint8_t *stream, size_t n, const char *def)
{
	cJSON *o = cJSON_CreateObject();

	if (!o)
		return NULL;
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
	if (on_disk >= 0)
		cJSON_AddNumberToObject(o, "on_disk", (double)on_disk);
	hex_field(o, "def_digest", h->def_digest, IMG_DIGEST);
	if (h->digest_chunk) {
		hex_field(o, "payload_digest", h->payload_digest, IMG_DIGEST);
		cJSON_AddNumberToObject(o, "digest_chunk", h->digest_chunk);
	} else {
		cJSON_AddNullToObject(o, "payload_digest");
	}
	cJSON_AddStringToObject(o, "signature", h->sig_len ? "present (check with vmsnap verify)" : "none");
	hex_field(o, "key_id", h->key_id, IMG_DIGEST);
	if (h->version == 4)
		ram_fields(o, h);
	stream_summary(o, stream, n);
	cJSON_AddStringToObject(o, "definition", def);
	return o;
}

/* A creation time as a UTC date; a value no calendar date can hold (a
 * crafted header) is printed as the number it is. */
static void print_created(FILE *out, const char *key, double v)
{
	char when[64] = "";
	struct tm tm;

	if (v >= 0 && v <= 253402300799.0) { /* up to 9999-12-31: a time_t, a struct tm */
		time_t t = (time_t)v;
		if (!gmtime_r(&t, &tm) || !strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm))
			when[0] = 0;
	}
	if (when[0])
		fprintf(out, "%-16s %s\n", key, when);
	else
		fprintf(out, "%-16s %.0f (not a date)\n", key, v);
}

static void print_text(FILE *out, const cJSON *o)
{
	const cJSON *f, *def = cJSON_GetObjectItem(o, "definition");

	cJSON_ArrayForEach(f, o) {
		if (!strcmp(f->string, "definition"))
			continue;
		if (cJSON_IsString(f))
			fprintf(out, "%-16s %s\n", f->string, f->valuestring);
		else if (cJSON_IsBool(f))
			fprintf(out, "%-16s %s\n", f->string, cJSON_IsTrue(f) ? "yes" : "no");
		else if (cJSON_IsNull(f))
			fprintf(out, "%-16s -\n", f->string);
		else if (!strcmp(f->string, "created"))
			print_created(out, f->string, f->valuedouble);
		else
			fprintf(out, "%-16s %.0f\n", f->string, f->valuedouble);
	}
	fprintf(out, "definition:\n%s", cJSON_IsString(def) ? def->valuestring : "");
}

void dsc_print(FILE *out, const cJSON *o, bool json)
{
	if (json) {
		char *t = cJSON_PrintUnformatted(o);
		fprintf(out, "%s\n", t ? t : "{}");
		free(t);
	} else {
		print_text(out, o);
	}
}
