/* SPDX-License-Identifier: Apache-2.0 */
/* Failure injection and call tracing for the simulated NVML (docs/mock-nvml.md):
 *   MOCK_NVML_FAIL=<call>[:<n>][,<call>[:<n>]...]  the call answers NVML_ERROR_UNKNOWN: every time, or only
 *                                                  on its n-th call (counted from 1, per process)
 *   MOCK_NVML_TRACE=<file>                         each call's name is appended to file, one a line
 * <call> is NVML's name, with or without the "nvml" prefix (nvmlDeviceGetMemoryInfo, DeviceGetMemoryInfo).
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mock.h"

#define FAIL_RULES_MAX 16

struct fail_rule {
        char name[64];
        unsigned long nth; /* 0: every call */
        unsigned long calls;
};

static pthread_once_t once = PTHREAD_ONCE_INIT;
static pthread_mutex_t fail_lock = PTHREAD_MUTEX_INITIALIZER;
static struct fail_rule rules[FAIL_RULES_MAX];
static size_t n_rules;
static int trace_fd = -1;

static void fail_init(void)
{
        const char *trace = getenv("MOCK_NVML_TRACE");
        if (trace && *trace)
                trace_fd = open(trace, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);

        const char *spec = getenv("MOCK_NVML_FAIL");
        while (spec && *spec && n_rules < FAIL_RULES_MAX) {
                size_t len = strcspn(spec, ",");
                struct fail_rule *r = &rules[n_rules];
                char item[48];
                snprintf(item, sizeof item, "%.*s", (int)len, spec);
                char *colon = strchr(item, ':');
                if (colon) {
                        *colon = '\0';
                        r->nth = strtoul(colon + 1, NULL, 10);
                }
                snprintf(r->name, sizeof r->name, "%s%s", strncmp(item, "nvml", 4) == 0 ? "" : "nvml", item);
                if (r->name[4])
                        n_rules++;
                spec += len + (spec[len] == ',');
        }
}

nvmlReturn_t mock_fail_point(const char *call)
{
        pthread_once(&once, fail_init);
        if (trace_fd >= 0) {
                char line[80];
                int n = snprintf(line, sizeof line, "%s\n", call);
                if (n > 0 && write(trace_fd, line, (size_t)n) < 0) {
                        /* tracing is best effort */
                }
        }
        nvmlReturn_t ret = NVML_SUCCESS;
        pthread_mutex_lock(&fail_lock);
        for (size_t i = 0; i < n_rules; i++)
                if (strcmp(rules[i].name, call) == 0) {
                        rules[i].calls++;
                        if (rules[i].nth == 0 || rules[i].nth == rules[i].calls)
                                ret = NVML_ERROR_UNKNOWN;
                }
        pthread_mutex_unlock(&fail_lock);
        return ret;
}
