/* SPDX-License-Identifier: Apache-2.0 */
/* doctor's containerd config reader: any bytes parse or fail with a line number and a reason; lookups on
 * whatever parsed never read out of bounds. */
#include <string.h>

#include "base/strv.h"
#include "doctor/toml.h"
#include "fuzz-common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        _cleanup_(toml_freep) toml *t = NULL;
        unsigned line = 0;
        const char *why = NULL;
        int r = toml_parse((const char *)data, size, &t, &line, &why);
        if (r < 0) {
                /* an error names a line of the input and says why */
                if (!why || line == 0)
                        abort();
                return 0;
        }
        /* the paths the doctor asks for */
        static const char *const version[] = { "version", NULL };
        static const char *const imports[] = { "imports", NULL };
        static const char *const plugins[] = { "plugins", NULL };
        static const char *const cri[] = { "plugins", "io.containerd.grpc.v1.cri", NULL };
        static const char *const runtimes[] = { "plugins", "io.containerd.grpc.v1.cri", "containerd",
                                                "runtimes", NULL };
        static const char *const nvidia[] = { "plugins",    "io.containerd.grpc.v1.cri",
                                              "containerd", "runtimes",
                                              "nvidia",     "options",
                                              "BinaryName", NULL };
        int64_t v;
        (void)toml_get_integer(t, version, &v);
        char *const *l = toml_get_string_array(t, imports);
        for (size_t i = 0; l && l[i]; i++)
                (void)strlen(l[i]);
        (void)toml_has_table(t, cri);
        const char *s = toml_get_string(t, nvidia);
        if (s)
                (void)strlen(s);
        const char *const *paths[] = { plugins, cri, runtimes };
        for (size_t p = 0; p < 3; p++) {
                _cleanup_strv_free_ char **children = NULL;
                if (toml_list_children(t, paths[p], &children) >= 0)
                        for (size_t i = 0; children && children[i]; i++)
                                (void)strlen(children[i]);
        }
        return 0;
}
