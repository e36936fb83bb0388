/* SPDX-License-Identifier: Apache-2.0 */
#include <stdio.h>

#include "cmd/cmd.h"

int cmd_version(int argc, char **argv)
{
        printf("nvdp %s\n", NVDP_VERSION);
        return 0;
}
