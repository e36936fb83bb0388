/* SPDX-License-Identifier: Apache-2.0 */
/* nvdp-cdi-hook: the OCI hooks of nvdp's CDI spec alone (`nvdp-cdi-hook HOOK [FLAGS]`, nvidia-cdi-hook's
 * arguments), built statically: the runtime runs a hook on the host, whose C library may be older than
 * the one nvdp is built against (or not glibc at all), and the chart copies this file there. What the
 * hooks do needs no NSS, no dlopen and no locale files, so static glibc is sound (docs/cdi.md). */
#include "cmd/cmd.h"

int main(int argc, char **argv)
{
        return cmd_cdi_hook(argc, argv);
}
