/* SPDX-License-Identifier: Apache-2.0 */
#include <stdio.h>

#include "cmd/cmd.h"

/* Placeholder until the info subcommand lands. */
int cmd_info(int argc, char **argv)
{
        fprintf(stderr, "nvdp info: not built yet\n");
        return 2;
}
