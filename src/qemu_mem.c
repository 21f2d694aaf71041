/* qemu_mem: QEMU's main RAM block from /proc/PID/mem (qemu_mem.h). */
#include "qemu_mem.h"
#include "log.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int qemu_mem_open(struct qmp *q, pid_t pid, struct qemu_mem *m)
{
	static const char *const at[] = { "gpa2hva 0", "gpa2hva 0x40000000" };
	char path[64], *name, *end;
	unsigned long long hva;
	uint8_t probe;
	cJSON *args, *r;

	*m = (struct qemu_mem){ .fd = -1 };
	for (size_t i = 0; i < sizeof(at) / sizeof(at[0]) && !m->block[0]; i++) {
		args = cJSON_CreateObject();
		cJSON_AddStringToObject(args, "command-line", at[i]);
		if (qmp_call(q, "human-monitor-command", args, NULL, 0, &r) < 0)
			return -1;
		/* "Host virtual address for 0x0 (pc.ram) is 0x7fa7c3e00000" */
		if (cJSON_IsString(r) && (name = strchr(r->valuestring, '(')) &&
		    (end = strstr(++name, ") is 0x")) && end > name &&
		    (size_t)(end - name) < sizeof(m->block) && (hva = strtoull(end + 7, NULL, 16))) {
			memcpy(m->block, name, (size_t)(end - name));
			m->block[end - name] = 0;
			m->at = hva;
		}
		cJSON_Delete(r);
	}
	snprintf(path, sizeof(path), "/proc/%d/mem", (int)pid);
	if (!m->block[0] || (m->fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -1;
	if (pread(m->fd, &probe, 1, (off_t)m->at) != 1) {
		qemu_mem_close(m);
		return -1;
	}
	log_debug("RAM block %s of QEMU (pid %d) at 0x%llx, readable", m->block, (int)pid,
		  (unsigned long long)m->at);
	return 0;
}

void qemu_mem_close(struct qemu_mem *m)
{
	if (m->fd >= 0)
		close(m->fd);
	m->fd = -1;
}
