/* SPDX-License-Identifier: Apache-2.0 */
/* The simulated NVML's fixture reader (YAML a test author writes): any bytes load or fail with one line
 * naming the file. The reader is compiled in here; it is internal to the mock library. */
#include <string.h>

#include "../../mock/nvml/fixture.c"
#include "fuzz-common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        char path[64];
        int fd = fuzz_memfd(data, size, path);
        struct mock_node *node = NULL;
        char *err = NULL;
        int r = mock_fixture_load(path, &node, &err);
        if (r < 0) {
                if (r != -ENOMEM && (!err || strchr(err, '\n') || !strstr(err, path)))
                        abort(); /* one line that names the file */
        } else {
                for (unsigned i = 0; i < node->n_gpus; i++)
                        if (node->gpus[i].n_mig > MOCK_MAX_MIG ||
                            node->gpus[i].n_nvlinks > NVML_NVLINK_MAX_LINKS)
                                abort();
        }
        free(err);
        mock_fixture_free(node);
        close(fd);
        return 0;
}
