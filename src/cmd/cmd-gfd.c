/* SPDX-License-Identifier: Apache-2.0 */
#include <stdio.h>

#include "cmd/cmd.h"

/* Placeholder until the gfd subcommand lands. */
int cmd_gfd(int argc, char **argv)
{
        fprintf(stderr, "nvdp gfd: not built yet\n");
        return 2;
}
