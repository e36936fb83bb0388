/* SPDX-License-Identifier: Apache-2.0 */
/* The config file parser (YAML or JSON an admin writes): any bytes load or fail with one message; what
 * loads formats to YAML that loads back to the same config (config.h promises this round trip). */
#include <string.h>

#include "config/config.h"
#include "fuzz-common.h"

static int load(const char *path, config **ret, char **ret_error)
{
        _cleanup_(config_freep) config *c = NULL;
        if (config_new_default(&c) < 0)
                abort();
        int r = config_load_file(c, path, ret_error);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(c);
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        char path[64];
        _cleanup_close_ int fd = fuzz_memfd(data, size, path);
        (void)fd;
        _cleanup_(config_freep) config *c = NULL, *c2 = NULL;
        _cleanup_free_ char *err = NULL, *yaml = NULL, *yaml2 = NULL;

        int r = load(path, &c, &err);
        if (r < 0) {
                if (r != -ENOMEM && !err)
                        abort(); /* a person must be told why */
                return 0;
        }
        if (config_format_yaml(c, &yaml) < 0)
                abort();
        _cleanup_close_ int fd2 = fuzz_memfd((const uint8_t *)yaml, strlen(yaml), path);
        (void)fd2;
        free(err);
        err = NULL;
        if (load(path, &c2, &err) < 0) {
                fprintf(stderr, "formatted config does not load back: %s\n%s", err, yaml);
                abort();
        }
        if (config_format_yaml(c2, &yaml2) < 0)
                abort();
        if (!streq(yaml, yaml2)) {
                fprintf(stderr, "round trip changed the config:\n%s---\n%s", yaml, yaml2);
                abort();
        }
        return 0;
}
