/* SPDX-License-Identifier: Apache-2.0 */
/* Builds one of the CDI fixture node filesystems of tests/unit/cdi-fixture.h in a directory, for tests
 * outside C (tests/cdi, tests/integration):
 *   cdi-fixture-root LAYOUT DIR [--mknod] [--version V] [--gpus N]
 * LAYOUT: fhs, usr-local-nvidia, operator, mig. --mknod makes real character devices (root only);
 * --version the driver version of the libraries; --gpus N device nodes /dev/nvidia0..N-1 more. */
#include <stdlib.h>

#include "../unit/cdi-fixture.h"

int main(int argc, char **argv)
{
        if (argc < 3) {
                fprintf(stderr, "usage: %s LAYOUT DIR [--mknod] [--version V] [--gpus N]\n", argv[0]);
                return 2;
        }
        struct fx f = {};
        unsigned gpus = 0;
        snprintf(f.root, sizeof f.root, "%s", argv[2]);
        for (int i = 3; i < argc; i++) {
                if (strcmp(argv[i], "--mknod") == 0)
                        f.flags |= FX_MKNOD;
                else if (strcmp(argv[i], "--version") == 0 && i + 1 < argc)
                        snprintf(f.version, sizeof f.version, "%s", argv[++i]);
                else if (strcmp(argv[i], "--gpus") == 0 && i + 1 < argc)
                        gpus = (unsigned)strtoul(argv[++i], NULL, 10);
                else {
                        fprintf(stderr, "%s: unknown argument %s\n", argv[0], argv[i]);
                        return 2;
                }
        }
        int r;
        const char *dev = "/dev";
        if (strcmp(argv[1], "fhs") == 0)
                r = fx_layout_fhs(&f);
        else if (strcmp(argv[1], "usr-local-nvidia") == 0)
                r = fx_layout_usr_local_nvidia(&f);
        else if (strcmp(argv[1], "operator") == 0) {
                r = fx_layout_operator(&f);
                dev = "/run/nvidia/driver/dev";
        } else if (strcmp(argv[1], "mig") == 0)
                r = fx_layout_mig(&f);
        else {
                fprintf(stderr, "%s: unknown layout %s\n", argv[0], argv[1]);
                return 2;
        }
        /* More GPU nodes than the layout has (the simulated nodes have up to 8 GPUs). */
        for (unsigned i = 0; r >= 0 && i < gpus; i++) {
                char p[256], full[4096];
                snprintf(p, sizeof p, "%s/nvidia%u", dev, i);
                if (fx_path(&f, p, full) == 0 && access(full, F_OK) == 0)
                        continue;
                r = fx_node(&f, p, 195, i);
        }
        if (r < 0) {
                fprintf(stderr, "%s: building %s in %s failed: %s\n", argv[0], argv[1], argv[2],
                        strerror(-r));
                return 1;
        }
        return 0;
}
