/* SPDX-License-Identifier: Apache-2.0 */
#include <stdio.h>

#include "cmd/cmd.h"

/* Placeholder until the plugin subcommand lands. */
int cmd_plugin(int argc, char **argv)
{
        fprintf(stderr, "nvdp plugin: not built yet\n");
        return 2;
}
