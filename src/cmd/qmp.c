/* qmp: send one QMP command to VM NAME and print QEMU's "return" as JSON:
 * for debugging and scripts. A bare word is taken as a command name. */
#include "cmd.h"
#include "err.h"
#include "qmp.h"
#include "vm.h"

#include <stdio.h>
#include <stdlib.h>

const char cmd_qmp_usage[] = "qmp NAME JSON|COMMAND";

int cmd_qmp(struct conf *c, int argc, char **argv)
{
	static const struct option opts[] = { { 0 } };
	struct vm_paths p;
	struct qmp q;
	cJSON *cmd, *reply = NULL, *e;
	char *text;
	int rc = EXIT_OK;

	optind = 1;
	if (cmd_getopt(argc, argv, "", opts) != -1 || argc - optind != 2)
		return cmd_usage(cmd_qmp_usage);
	if (vm_paths(c, argv[optind], &p) < 0)
		return cmd_fail("qmp");
	cmd = cJSON_Parse(argv[optind + 1]);
	if (!cmd && argv[optind + 1][0] != '{' && argv[optind + 1][0] != '[') {
		cmd = cJSON_CreateObject();
		cJSON_AddStringToObject(cmd, "execute", argv[optind + 1]);
	}
	if (!cJSON_IsObject(cmd) || !qmp_str(cmd, "execute")) {
		cJSON_Delete(cmd);
		err_set(EXIT_USAGE, "'%s' is not a QMP command: give {\"execute\": ...} or a command name",
			argv[optind + 1]);
		return cmd_fail("qmp");
	}
	if (!vm_pid(c, argv[optind])) {
		cJSON_Delete(cmd);
		err_set(EXIT_FAIL, "VM '%s' is not running", argv[optind]);
		return cmd_fail("qmp");
	}
	if (qmp_connect(&q, p.qmp, QMP_TIMEOUT_MS) < 0 || qmp_call_json(&q, cmd, &reply) < 0) {
		cJSON_Delete(cmd);
		return cmd_fail("qmp");
	}
	e = cJSON_GetObjectItem(reply, "error");
	if (e) {
		const char *desc = qmp_str(e, "desc"), *cls = qmp_str(e, "class");
		err_set(EXIT_FAIL, "QEMU refused %s: %s (%s)", qmp_str(cmd, "execute"),
			desc ? desc : "no description", cls ? cls : "no class");
		rc = cmd_fail("qmp");
	} else {
		text = cJSON_PrintUnformatted(cJSON_GetObjectItem(reply, "return"));
		printf("%s\n", text ? text : "{}");
		free(text);
	}
	cJSON_Delete(reply);
	cJSON_Delete(cmd);
	qmp_close(&q);
	return rc;
}
