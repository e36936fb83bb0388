/* SPDX-License-Identifier: Apache-2.0 */
/* Shared between the config file reader, the flag parser and the YAML writer; not a public API. */
#pragma once

#include "config/config.h"

struct device_list_strategy_name {
        const char *name;
        unsigned bit;
};
extern const struct device_list_strategy_name device_list_strategy_names[4];

/* Replaces *dst with a copy of s (NULL allowed). */
int set_string(char **dst, const char *s);
/* "auto" | "nvml" | "tegra", and "vfio" for GFD. */
bool device_discovery_strategy_valid(const char *s, bool gfd);
/* "gpu" -> "nvidia.com/gpu"; checks length <= 63 and DNS-subdomain syntax. On -EINVAL *ret_why says why. */
int resource_name_normalize(const char *in, char **ret, const char **ret_why);
/* A sharing `devices` entry: GPU index "3", MIG index "3:1", "GPU-..." or "MIG-..." UUID. */
bool device_selector_valid(const char *s);
void sharing_resources_free(struct replicated_resource *r, size_t n);
