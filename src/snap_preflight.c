/* snap_preflight: the part of a save before the VM stops: what QEMU says
 * about the VM, and every check that can refuse (target, capabilities, keys). */
#include "snap_save.h"
#include "err.h"
#include "instant.h"
#include "log.h"
#include "mig.h"
#include "sign.h"
#include "storage.h"
#include "util.h"
#include "verify.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

/* Room beyond RAM a v2 stream may need: page headers and device state. */
#define V2_OVERHEAD(ram) ((ram) / 256 + (16u << 20))

/* A RAM file name the way inst_reference makes them for the image at path:
 * "<image name>.<hex>-<hex>.ram", beside it. Nothing else is ever removed. */
static bool own_link_name(const char *ram_path, const char *path)
{
	const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	size_t n = strlen(base), l = strlen(ram_path);
	const char *p = ram_path + n + 1;

	if (strncmp(ram_path, base, n) || ram_path[n] != '.' || l < n + 8 ||
	    strcmp(ram_path + l - 4, ".ram"))
		return false;
	for (int dash = 0; p < ram_path + l - 4; p++)
		if (*p == '-' ? dash++ : !strchr("0123456789abcdef", *p))
			return false;
	return true;
}

/* The RAM file of a golden instant image already at the target, to remove
 * once the new image has replaced it: only a link this vmsnap made beside it,
 * and only when the header names it under a signature a trusted key made
 * (whoever can write the target could otherwise name any file). */
void snap_save_note_old_ram(struct save *s, const char *target)
{
	struct vfy_opts vo = { .require_signature = true, .allow_consumed = true };
	struct vfy_result v;
	char real[PATH_MAX];
	uint64_t size;
	int fd;

	s->old_ram[0] = 0;
	if (!realpath(target, real) || stor_open_image(real, &fd, &size) < 0) {
		err_clear();
		return;
	}
	if (vfy_image(s->c, fd, size, real, &vo, &v) == 0) {
		if (v.h.version == IMG_VERSION_INSTANT && (v.h.flags & IMG_F_GOLDEN) && own_link_name(v.h.ram_path, real))
			str_copy(s->old_ram, sizeof(s->old_ram), v.ram_path);
		vfy_free(&v);
	} else if (access(real, F_OK) == 0) {
		log_debug("%s: %s; its RAM file, if any, is left alone", real, err_msg());
	}
	err_clear();
	close(fd);
}

/* What QEMU tells about the VM before anything changes. */
int snap_save_query_vm(struct save *s)
{
	cJSON *r, *args;
	const char *m;
	size_t l;

	if (qmp_call(&s->q, "query-status", NULL, NULL, 0, &r) < 0)
		return -1;
	if (qmp_bool(r, "running", 0))
		s->h.flags |= IMG_F_WAS_RUNNING;
	cJSON_Delete(r);
	if (qmp_call(&s->q, "query-memory-size-summary", NULL, NULL, 0, &r) < 0)
		return -1;
	s->h.ram_size = (uint64_t)qmp_int(r, "base-memory", 0);
	/* DIMMs (memory hotplug) are in the stream too, but not in base-memory. */
	s->plugged = (uint64_t)qmp_int(r, "plugged-memory", 0);
	cJSON_Delete(r);
	args = cJSON_CreateObject();
	cJSON_AddStringToObject(args, "path", "/machine");
	cJSON_AddStringToObject(args, "property", "type");
	if (qmp_call(&s->q, "qom-get", args, NULL, 0, &r) < 0)
		return -1;
	m = cJSON_IsString(r) ? r->valuestring : "";
	l = strlen(m);
	if (l > 8 && !strcmp(m + l - 8, "-machine"))
		l -= 8; /* QOM type "pc-q35-10.0-machine" is machine "pc-q35-10.0" */
	snprintf(s->h.machine, sizeof(s->h.machine), "%.*s", (int)l, m);
	cJSON_Delete(r);
	str_copy(s->h.qemu_version, sizeof(s->h.qemu_version), s->q.version_str);
	return 0;
}

/* Instant mode: the image refers to the RAM file, which must stay as saved. */
static int preflight_instant(struct save *s, const char *target, enum stor_kind kind)
{
	struct stat ram, dir;
	char d[PATH_MAX];

	if (s->o->keep_running)
		return err_set(EXIT_USAGE,
			       "VM '%s' is in instant mode: with --keep-running the guest would change the RAM file the image refers to",
			       s->name);
	if (stat(s->ram, &ram) < 0)
		return err_sys(EXIT_FAIL, "RAM file %s of VM '%s'", s->ram, s->name);
	if (!s->o->golden)
		return 0;
	/* The golden pair is a hard link beside the image. */
	if (kind == STOR_BLK || path_dir(d, sizeof(d), target) < 0 || stat(d, &dir) < 0 ||
	    dir.st_dev != ram.st_dev)
		return err_set(EXIT_USAGE,
			       "a golden instant-mode image goes beside its RAM file: save it to a file on the file system of %s",
			       s->ram);
	return 0;
}

/* A v3 image is written by QEMU's multifd threads, and QEMU 10.0 can crash
 * when one of their writes fails (a use after free in its error path, seen
 * on a full file system): so v3 is refused before the VM stops unless the
 * file system has room for the whole RAM, the worst case. */
static int preflight_room(struct save *s, const char *target, enum stor_kind kind)
{
	uint64_t ram = s->h.ram_size + s->plugged;
	uint64_t need = img_stream_offset(s->def_len) + ram + V2_OVERHEAD(ram), have;
	char d[PATH_MAX], a[32], b[32], n[32];
	struct statvfs sv;

	/* An existing target (through a symlink too) tells its own file system. */
	if (kind == STOR_REG ? statvfs(target, &sv) < 0
			     : path_dir(d, sizeof(d), target) < 0 || statvfs(d, &sv) < 0)
		return 0; /* creating the file says what is wrong */
	have = (uint64_t)sv.f_bavail * sv.f_frsize;
	if (sv.f_blocks == 0 || have >= need) /* no blocks at all: no limit told (ramfs) */
		return 0;
	return err_set(EXIT_USAGE,
		       "no space for a v3 image of VM '%s' (%s of RAM) at %s: its file system has %s free, a v3 save needs up to %s; free space, or use --format 2",
		       s->name, fmt_bytes(ram, b, sizeof(b)), target, fmt_bytes(have, a, sizeof(a)),
		       fmt_bytes(need, n, sizeof(n)));
}

/* Everything that can refuse, before the VM stops. */
int snap_save_preflight(struct save *s, const char *target)
{
	enum stor_kind kind;
	uint64_t cap;
	char a[32], b[32], n[32];

	if (stor_check_save(target, s->h.version == IMG_VERSION_INSTANT ? 2 : (int)s->h.version, &kind, &cap) < 0)
		return -1;
	if (s->o->sign_key && sig_key_id(s->o->sign_key, s->h.key_id) < 0)
		return err_wrap("sign_key");
	if (s->h.version == IMG_VERSION_INSTANT)
		return preflight_instant(s, target, kind);
	if (s->h.version == 3) {
		int has = mig_has_cap(&s->q, "mapped-ram");
		if (has < 0)
			return -1;
		if (!has)
			return err_set(EXIT_USAGE,
				       "QEMU %s of VM '%s' has no mapped-ram capability: v3 needs QEMU >= 9.0; use --format 2",
				       s->q.version_str, s->name);
		if (kind != STOR_BLK && preflight_room(s, target, kind) < 0)
			return -1;
	}
	if (kind == STOR_BLK) {
		uint64_t ram = s->h.ram_size + s->plugged;
		uint64_t need = img_stream_offset(s->def_len) + ram + V2_OVERHEAD(ram);
		if (cap < need)
			return err_set(EXIT_USAGE,
				       "target %s holds %s, but saving VM '%s' (%s of RAM) may need up to %s: use a larger device or a file",
				       target, fmt_bytes(cap, a, sizeof(a)), s->name,
				       fmt_bytes(ram, b, sizeof(b)), fmt_bytes(need, n, sizeof(n)));
	}
	return 0;
}

