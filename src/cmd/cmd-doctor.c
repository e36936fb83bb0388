/* SPDX-License-Identifier: Apache-2.0 */
#include <stdio.h>

#include "cmd/cmd.h"

/* Placeholder until the doctor subcommand lands. */
int cmd_doctor(int argc, char **argv)
{
        fprintf(stderr, "nvdp doctor: not built yet\n");
        return 2;
}
