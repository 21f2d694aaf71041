/* vm_devices: the two devices of a definition vmsnap acts on (vm_def.h):
 * the QEMU guest agent's port, whose socket vmsnap adds, and the VM
 * generation ID (vmgenid), which vmsnap pins or renews at each launch. */
#include "vm_def.h"
#include "err.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "cJSON.h"

#define AGENT_PORT "org.qemu.guest_agent.0"

/* Option i's name without its dashes, if argv[i] is an option with a value. */
static const char *opt_with_value(const struct vm_def *d, int i)
{
	const char *o = d->argv[i];

	if (i + 1 >= d->argc || d->line[i + 1] != d->line[i] || (i > 0 && d->line[i - 1] == d->line[i]))
		return NULL;
	return o + (o[1] == '-' ? 2 : 1);
}

/* One key=value item of val (",," a literal comma) into item, unescaped:
 * where the next one starts. */
static const char *next_item(const char *val, char *item, size_t size)
{
	size_t n = 0;

	for (; *val && (*val != ',' || val[1] == ','); val++) {
		if (n + 1 < size)
			item[n++] = *val;
		if (*val == ',')
			val++;
	}
	item[n] = 0;
	return *val ? val + 1 : val;
}

/* The value of key in an option's value: QEMU's key=value,... (the first
 * item without '=' is implied's: the driver of -device, the backend of
 * -chardev) or a JSON object. "" when absent. */
static void prop(const char *val, const char *key, const char *implied, char *out, size_t size)
{
	char item[256];
	bool first = true;

	out[0] = 0;
	if (val[0] == '{') {
		cJSON *j = cJSON_Parse(val);
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
		if (cJSON_IsString(v))
			str_trunc(out, size, v->valuestring);
		cJSON_Delete(j);
		return;
	}
	while (*val) {
		char *eq;
		val = next_item(val, item, sizeof(item));
		eq = strchr(item, '=');
		if (eq) {
			*eq = 0;
			if (!strcmp(item, key))
				str_trunc(out, size, eq + 1);
		} else if (first && !strcmp(key, implied)) {
			str_trunc(out, size, item);
		}
		first = false;
	}
}

static bool prop_is(const char *val, const char *key, const char *implied, const char *want)
{
	char v[256];

	prop(val, key, implied, v, sizeof(v));
	return !strcmp(v, want);
}

/* -device value: the agent's port on vmsnap's socket. */
static bool is_agent_port(const char *val)
{
	return prop_is(val, "driver", "driver", "virtserialport") &&
	       prop_is(val, "chardev", "driver", VM_AGENT_CHARDEV) &&
	       prop_is(val, "name", "driver", AGENT_PORT);
}

bool vm_def_has_agent(const struct vm_def *d)
{
	for (int i = 0; i < d->argc; i++) {
		const char *o = opt_with_value(d, i);
		if (o && !strcmp(o, "device") && is_agent_port(d->argv[i + 1]))
			return true;
	}
	return false;
}

/* The chardev is vmsnap's: no definition defines it, and only the agent's
 * port uses it (vmsnap talks the agent's protocol on it). */
int vm_def_check_agent(const struct vm_def *d)
{
	int code = d->code ? d->code : EXIT_USAGE;

	for (int i = 0; i < d->argc; i++) {
		const char *o = opt_with_value(d, i), *v;
		if (!o)
			continue;
		v = d->argv[i + 1];
		if (!strcmp(o, "chardev") && prop_is(v, "id", "backend", VM_AGENT_CHARDEV))
			return err_set(code,
				       "%s:%d: option %s '%.200s': the character device %s is vmsnap's (the guest agent's socket in run_dir): leave this line out",
				       d->origin, d->line[i], d->argv[i], v, VM_AGENT_CHARDEV);
		if (!strcmp(o, "device") && prop_is(v, "chardev", "driver", VM_AGENT_CHARDEV) &&
		    !is_agent_port(v))
			return err_set(code,
				       "%s:%d: option %s '%.200s': %s is for the guest agent's port only: virtserialport,chardev=%s,name=" AGENT_PORT,
				       d->origin, d->line[i], d->argv[i], v, VM_AGENT_CHARDEV,
				       VM_AGENT_CHARDEV);
	}
	return 0;
}

/* The index of the value of the definition's -device vmgenid, or -1. */
static int genid_value(const struct vm_def *d)
{
	for (int i = 0; i < d->argc; i++) {
		const char *o = opt_with_value(d, i);
		if (o && !strcmp(o, "device") && prop_is(d->argv[i + 1], "driver", "driver", "vmgenid"))
			return i + 1;
	}
	return -1;
}

bool vm_def_has_genid(const struct vm_def *d)
{
	return genid_value(d) >= 0;
}

/* A random (version 4) UUID, as QEMU's guid=auto makes one. */
static int new_uuid(char *out, size_t size)
{
	uint8_t b[16];

	if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b))
		return err_sys(EXIT_FAIL, "getrandom");
	b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
	b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
	snprintf(out, size,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
		 b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
	return 0;
}

/* val with its guid set to guid (malloc'd): a JSON object's member, or the
 * key=value items without any guid= one, then ",guid=...". */
static char *with_guid(const char *val, const char *guid)
{
	size_t n = 0, cap = strlen(val) + 64;
	char *out = malloc(cap);

	if (!out)
		return NULL;
	if (val[0] == '{') {
		cJSON *j = cJSON_Parse(val);
		char *s = NULL;
		free(out);
		cJSON_DeleteItemFromObjectCaseSensitive(j, "guid");
		if (j && cJSON_AddStringToObject(j, "guid", guid))
			s = cJSON_PrintUnformatted(j);
		cJSON_Delete(j);
		return s;
	}
	while (*val) {
		const char *start = val;
		for (; *val && (*val != ',' || val[1] == ','); val++)
			if (*val == ',')
				val++;
		if (strncmp(start, "guid=", 5) && val > start) {
			if (n)
				out[n++] = ',';
			memcpy(out + n, start, (size_t)(val - start));
			n += (size_t)(val - start);
		}
		if (*val)
			val++;
	}
	snprintf(out + n, cap - n, ",guid=%s", guid);
	return out;
}

/* d again with line `line` replaced by "opt val" (parsed anew). */
static int replace_line(struct vm_def *d, int line, const char *opt, const char *val)
{
	const char *p = d->text, *end;
	struct vm_def n;
	size_t len;
	char *text;
	int rc;

	for (int l = 1; l < line && p; l++)
		p = (p = strchr(p, '\n')) ? p + 1 : NULL;
	if (!p)
		return err_set(EXIT_FAIL, "%s: line %d not found", d->origin, line);
	end = p + strcspn(p, "\n");
	len = (size_t)(p - d->text) + strlen(opt) + 1 + strlen(val) + strlen(end);
	if (!(text = malloc(len + 1)))
		return err_sys(EXIT_FAIL, "%s", d->origin);
	snprintf(text, len + 1, "%.*s%s %s%s", (int)(p - d->text), d->text, opt, val, end);
	rc = vm_def_parse(&n, text, len, d->origin, d->code);
	free(text);
	if (rc < 0)
		return -1;
	vm_def_free(d);
	*d = n;
	return 0;
}

int vm_def_genid(struct vm_def *d, bool fresh, char *guid, size_t size)
{
	int i = genid_value(d);
	char *val;
	int rc;

	guid[0] = 0;
	if (i < 0)
		return 0;
	prop(d->argv[i], "guid", "driver", guid, size);
	if (!fresh && guid[0] && strcmp(guid, "auto"))
		return 1; /* pinned already: the guest keeps its ID */
	if (new_uuid(guid, size) < 0)
		return -1;
	if (!(val = with_guid(d->argv[i], guid)))
		return err_sys(EXIT_FAIL, "%s", d->origin);
	rc = replace_line(d, d->line[i], d->argv[i - 1], val);
	free(val);
	return rc < 0 ? -1 : 1;
}

void vm_def_genid_warn(const char *text, size_t len, const char *what)
{
	struct vm_def d;

	if (vm_def_parse(&d, text, len, what, EXIT_USAGE) < 0) {
		err_clear();
		return;
	}
	if (!vm_def_has_genid(&d))
		log_warn("%s: its definition has no -device vmgenid, so restored copies will share their RNG state: add -device vmgenid to the definition",
			 what);
	vm_def_free(&d);
}
