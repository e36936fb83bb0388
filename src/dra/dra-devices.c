/* SPDX-License-Identifier: Apache-2.0 */
/* The devices of the node's pool, their names, and attribute values spelled as NVIDIA's DRA driver does. */
#include <inttypes.h>
#include <stdio.h>

#include "dra.h"

int dra_devices_list(const inventory *inv, struct dra_device **ret, size_t *ret_n)
{
        size_t n = 0;
        for (size_t g = 0; inv && g < inv->n_gpus; g++)
                n += inv->gpus[g].mig_enabled ? inv->gpus[g].n_mig : 1;
        _cleanup_free_ struct dra_device *d = new0(struct dra_device, n + 1);
        if (!d)
                return -ENOMEM;
        size_t k = 0;
        for (size_t g = 0; inv && g < inv->n_gpus; g++) {
                const struct gpu *gpu = &inv->gpus[g];
                if (!gpu->mig_enabled) {
                        d[k] = (struct dra_device){ .gpu = g, .mig = -1 };
                        snprintf(d[k].name, sizeof d[k].name, "gpu-%u", gpu->minor);
                        k++;
                        continue;
                }
                for (size_t m = 0; m < gpu->n_mig; m++) {
                        d[k] = (struct dra_device){ .gpu = g, .mig = (int)m };
                        /* The GPU and compute instance ids name a MIG device for as long as it exists;
                         * NVIDIA's driver uses the GPU instance's profile and placement instead, which we do
                         * not read. */
                        snprintf(d[k].name, sizeof d[k].name, "gpu-%u-mig-%u-%u", gpu->minor,
                                 gpu->mig[m].gi_id, gpu->mig[m].ci_id);
                        k++;
                }
        }
        *ret = TAKE_PTR(d);
        *ret_n = n;
        return 0;
}

const struct dra_device *dra_devices_find(const struct dra_device *d, size_t n, const char *name)
{
        for (size_t i = 0; name && i < n; i++)
                if (streq(d[i].name, name))
                        return &d[i];
        return NULL;
}

bool dra_device_healthy(const health_tracker *t, const struct dra_device *d,
                        const struct health_unit **ret_unit)
{
        const struct health_unit *u = t ? health_tracker_unit(t, d->gpu, -1) : NULL;
        if (u && !u->healthy)
                goto unhealthy;
        u = t && d->mig >= 0 ? health_tracker_unit(t, d->gpu, d->mig) : NULL;
        if (u && !u->healthy)
                goto unhealthy;
        if (ret_unit)
                *ret_unit = NULL;
        return true;
unhealthy:
        if (ret_unit)
                *ret_unit = u;
        return false;
}

int dra_version_compute_capability(unsigned major, unsigned minor, char *out, size_t size)
{
        if (major == 0)
                return -EINVAL;
        snprintf(out, size, "%u.%u.0", major, minor);
        return 0;
}

int dra_version_driver(const char *v, char *out, size_t size)
{
        /* "580.105.08": up to three numeric parts; missing ones are 0, leading zeros go (semver forbids
         * them; Masterminds/semver, which NVIDIA's driver uses, drops them the same way). */
        unsigned long parts[3] = {};
        const char *p = v;
        for (size_t i = 0; i < 3; i++) {
                if (!p || *p < '0' || *p > '9')
                        return -EINVAL;
                char *end;
                errno = 0;
                parts[i] = strtoul(p, &end, 10);
                if (errno != 0)
                        return -EINVAL;
                if (*end == '\0') {
                        p = NULL;
                        break;
                }
                if (*end != '.' || i == 2)
                        return -EINVAL;
                p = end + 1;
        }
        snprintf(out, size, "%lu.%lu.%lu", parts[0], parts[1], parts[2]);
        return 0;
}

int dra_version_cuda(int cuda, char *out, size_t size)
{
        if (cuda <= 0)
                return -EINVAL;
        snprintf(out, size, "%d.%d.0", cuda / 1000, (cuda % 1000) / 10);
        return 0;
}

const char *dra_brand_name(const char *brand)
{
        static const char *const names[][2] = {
                { "quadro", "Quadro" },
                { "tesla", "Tesla" },
                { "nvs", "NVS" },
                { "grid", "Grid" },
                { "geforce", "GeForce" },
                { "titan", "Titan" },
                { "nvidia-vapps", "NvidiaVApps" },
                { "nvidia-vpc", "NvidiaVPC" },
                { "nvidia-vcs", "NvidiaVCS" },
                { "nvidia-vws", "NvidiaVWS" },
                { "nvidia-cloud-gaming", "NvidiaCloudGaming" },
                { "quadro-rtx", "QuadroRTX" },
                { "nvidia-rtx", "NvidiaRTX" },
                { "nvidia", "Nvidia" },
                { "geforce-rtx", "GeForceRTX" },
                { "titan-rtx", "TitanRTX" },
        };
        for (size_t i = 0; brand && i < ELEMENTSOF(names); i++)
                if (streq(brand, names[i][0]))
                        return names[i][1];
        return "Unknown";
}

const char *dra_architecture_name(const char *architecture)
{
        static const char *const names[][2] = {
                { "kepler", "Kepler" },    { "maxwell", "Maxwell" }, { "pascal", "Pascal" },
                { "volta", "Volta" },      { "turing", "Turing" },   { "ampere", "Ampere" },
                { "ada", "Ada Lovelace" }, { "hopper", "Hopper" },   { "blackwell", "Blackwell" },
        };
        for (size_t i = 0; architecture && i < ELEMENTSOF(names); i++)
                if (streq(architecture, names[i][0]))
                        return names[i][1];
        return "Unknown";
}
