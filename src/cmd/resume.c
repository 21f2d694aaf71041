/* resume: being written (issue tracker); refuses until it exists. */
#include "cmd.h"
#include "err.h"

int cmd_resume(struct conf *c, int argc, char **argv)
{
	(void)c;
	(void)argc;
	(void)argv;
	err_set(EXIT_FAIL, "not implemented yet");
	return cmd_fail("resume");
}
