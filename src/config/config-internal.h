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

/* Every config file key by path ("flags.plugin.passDeviceSpecs", list items as
 * "sharing.mps.resources[].name"), NULL-terminated. */
const char *const *config_key_paths(void);
/* For an unknown key `name` under `parent` ("" at the top, "sharing.timeSlicing.resources[0]"): a known
 * key close to it there (written quoted: "\"replicas\""), else the path(s) of a key of that name in
 * another section. Returns 1 with the text in buf, 0 when nothing is close. */
int config_key_suggest(const char *parent, const char *name, char *buf, size_t size);
/* The key's own spelling when name matches a key under parent but for case ("deviceIdStrategy" ->
 * "deviceIDStrategy"): upstream's decoder (Go's encoding/json) matches keys that way. NULL otherwise. */
const char *config_key_canonical(const char *parent, const char *name);
