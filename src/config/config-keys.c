/* SPDX-License-Identifier: Apache-2.0 */
/* Every key of the config file, by path, for the "did you mean" of an unknown key. The reader in
 * config.c decides what a key means; this list only names them (tests/unit/test-config.c checks that
 * each one loads and that --print-config writes none outside it). */
#include <ctype.h>
#include <strings.h>

#include "config/config-internal.h"

/* A list item's keys are under "<list>[]". */
static const char *const config_keys[] = {
        "version",
        "flags",
        "flags.migStrategy",
        "flags.failOnInitError",
        "flags.mpsRoot",
        "flags.nvidiaDriverRoot",
        "flags.nvidiaDevRoot",
        "flags.gdrcopyEnabled",
        "flags.gdsEnabled",
        "flags.mofedEnabled",
        "flags.useNodeFeatureAPI",
        "flags.deviceDiscoveryStrategy",
        "flags.root",
        "flags.logFormat",
        "flags.plugin",
        "flags.plugin.passDeviceSpecs",
        "flags.plugin.deviceListStrategy",
        "flags.plugin.deviceIDStrategy",
        "flags.plugin.cdiAnnotationPrefix",
        "flags.plugin.nvidiaCTKPath",
        "flags.plugin.nvidiaCDIHookPath",
        "flags.plugin.containerDriverRoot",
        "flags.plugin.sharedDevicesAllocationPolicy",
        "flags.plugin.kubeletSocket",
        "flags.plugin.healthPolicy",
        "flags.plugin.healthRecoveryInterval",
        "flags.plugin.metricsAddress",
        "flags.plugin.healthAddress",
        "flags.plugin.cdiSpecDir",
        "flags.plugin.nodeEvents",
        "flags.gfd",
        "flags.gfd.oneshot",
        "flags.gfd.noTimestamp",
        "flags.gfd.sleepInterval",
        "flags.gfd.outputFile",
        "flags.gfd.machineTypeFile",
        "flags.gfd.outputNode",
        "flags.gfd.kubeconfig",
        "flags.gfd.kubeAPIQPS",
        "flags.gfd.kubeAPIBurst",
        "flags.gfd.namespace",
        "flags.gfd.nodeName",
        "flags.gfd.podName",
        "resources",
        "resources.gpus",
        "resources.gpus[].pattern",
        "resources.gpus[].name",
        "resources.mig",
        "resources.mig[].pattern",
        "resources.mig[].name",
        "sharing",
        "sharing.timeSlicing",
        "sharing.timeSlicing.renameByDefault",
        "sharing.timeSlicing.failRequestsGreaterThanOne",
        "sharing.timeSlicing.resources",
        "sharing.timeSlicing.resources[].name",
        "sharing.timeSlicing.resources[].rename",
        "sharing.timeSlicing.resources[].replicas",
        "sharing.timeSlicing.resources[].devices",
        "sharing.mps",
        "sharing.mps.renameByDefault",
        "sharing.mps.failRequestsGreaterThanOne",
        "sharing.mps.resources",
        "sharing.mps.resources[].name",
        "sharing.mps.resources[].rename",
        "sharing.mps.resources[].replicas",
        "sharing.mps.resources[].devices",
        "imex",
        "imex.channelIDs",
        "imex.required",
        NULL,
};

const char *const *config_key_paths(void)
{
        return config_keys;
}

/* Edit distance (insertions, deletions, substitutions, adjacent swaps), letters compared without
 * case; stops counting at 9. */
static unsigned distance(const char *a, const char *b)
{
        size_t n = strlen(a), m = strlen(b);
        unsigned d[3][65];
        if (n > 63 || m > 63)
                return 9;
        for (size_t j = 0; j <= m; j++)
                d[0][j] = (unsigned)j;
        for (size_t i = 1; i <= n; i++) {
                unsigned *cur = d[i % 3], *prev = d[(i - 1) % 3], *prev2 = d[(i + 1) % 3];
                cur[0] = (unsigned)i;
                for (size_t j = 1; j <= m; j++) {
                        bool same = tolower((unsigned char)a[i - 1]) == tolower((unsigned char)b[j - 1]);
                        unsigned v = MIN(prev[j] + 1, cur[j - 1] + 1);
                        v = MIN(v, prev[j - 1] + (same ? 0u : 1u));
                        if (i > 1 && j > 1 &&
                            tolower((unsigned char)a[i - 1]) == tolower((unsigned char)b[j - 2]) &&
                            tolower((unsigned char)a[i - 2]) == tolower((unsigned char)b[j - 1]))
                                v = MIN(v, prev2[j - 2] + 1);
                        cur[j] = MIN(v, 9u);
                }
        }
        return d[n % 3][m];
}

/* "sharing.timeSlicing.resources[2]" -> "sharing.timeSlicing.resources[]" into buf. */
static void strip_indexes(const char *path, char *buf, size_t size)
{
        size_t o = 0;
        for (const char *p = path; *p && o + 1 < size; p++) {
                buf[o++] = *p;
                if (*p == '[')
                        while (p[1] && p[1] != ']')
                                p++;
        }
        buf[o] = '\0';
}

const char *config_key_canonical(const char *parent, const char *name)
{
        char where[256];
        strip_indexes(parent, where, sizeof(where));
        size_t wl = strlen(where);
        for (const char *const *k = config_keys; *k; k++) {
                const char *last = strrchr(*k, '.');
                bool here = last ? (size_t)(last - *k) == wl && strneq(*k, where, wl) : wl == 0;
                if (here && strcasecmp(last ? last + 1 : *k, name) == 0)
                        return last ? last + 1 : *k;
        }
        return NULL;
}

int config_key_suggest(const char *parent, const char *name, char *buf, size_t size)
{
        char where[256];
        const char *best = NULL;
        unsigned best_d = 9;

        strip_indexes(parent, where, sizeof(where));
        size_t wl = strlen(where);
        /* A near miss among the keys that belong here: a typo or a case slip. */
        for (const char *const *k = config_keys; *k; k++) {
                const char *last = strrchr(*k, '.');
                bool here = last ? (size_t)(last - *k) == wl && strneq(*k, where, wl) : wl == 0;
                if (!here)
                        continue;
                unsigned d = distance(name, last ? last + 1 : *k);
                if (d < best_d) {
                        best_d = d;
                        best = last ? last + 1 : *k;
                }
        }
        size_t len = strlen(name);
        if (best && (best_d == 0 || (best_d <= 2 && best_d * 3 <= len))) {
                snprintf(buf, size, "\"%s\"", best);
                return 1;
        }
        /* A key of another section (NVIDIA#1433: renameByDefault written under flags): name where
         * it belongs, both places when two sections have it. */
        buf[0] = '\0';
        unsigned found = 0;
        for (const char *const *k = config_keys; *k && found < 2; k++) {
                const char *last = strrchr(*k, '.');
                if (distance(name, last ? last + 1 : *k) > (len >= 6 ? 1u : 0u))
                        continue;
                size_t o = strlen(buf);
                snprintf(buf + o, size - o, "%s%s", found ? " or " : "", *k);
                found++;
        }
        return found > 0;
}
