/* SPDX-License-Identifier: Apache-2.0 */
/* Reads a mock NVML fixture (format: docs/mock-nvml.md) into struct mock_node. Every key is known or
 * the fixture is rejected, with one line naming the file, the line and the key. */
#include <stdarg.h>
#include <yaml.h>

#include "mock.h"

struct reader {
        const char *file;
        yaml_document_t doc;
        char *error;
        /* mig_profiles: name -> sequence node, resolved when a GPU names it */
        yaml_node_t *profile_sets;
};

_printf_(3, 4) static bool failf(struct reader *rd, const yaml_node_t *at, const char *fmt, ...)
{
        char msg[300];
        va_list ap;
        if (rd->error)
                return false;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        /* Keys and values are quoted into the message: keep it one line whatever they hold. */
        for (char *c = msg; *c; c++)
                if ((unsigned char)*c < 0x20)
                        *c = '?';
        int k = at ? asprintf(&rd->error, "mock-nvml: fixture %s line %zu: %s", rd->file,
                              (size_t)at->start_mark.line + 1, msg)
                   : asprintf(&rd->error, "mock-nvml: fixture %s: %s", rd->file, msg);
        if (k < 0)
                rd->error = NULL;
        return false;
}

static yaml_node_t *node_at(struct reader *rd, int id)
{
        return yaml_document_get_node(&rd->doc, id);
}

static bool is_scalar(const yaml_node_t *n)
{
        return n && n->type == YAML_SCALAR_NODE;
}

static const char *scalar(const yaml_node_t *n)
{
        return (const char *)n->data.scalar.value;
}

static bool want(struct reader *rd, const yaml_node_t *n, yaml_node_type_t type, const char *key)
{
        static const char *const names[] = { [YAML_SCALAR_NODE] = "a value",
                                             [YAML_SEQUENCE_NODE] = "a list",
                                             [YAML_MAPPING_NODE] = "a mapping" };
        if (!n || n->type != type)
                return failf(rd, n, "key '%s' expects %s", key, names[type]);
        if (type != YAML_MAPPING_NODE)
                return true;
        /* A repeated key would silently win or lose: refuse it. */
        for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++)
                for (yaml_node_pair_t *q = n->data.mapping.pairs.start; q < p; q++) {
                        yaml_node_t *a = node_at(rd, p->key), *b = node_at(rd, q->key);
                        if (is_scalar(a) && is_scalar(b) && streq(scalar(a), scalar(b)))
                                return failf(rd, a, "key '%s' appears twice", scalar(a));
                }
        return true;
}

static bool get_str(struct reader *rd, const char *key, const yaml_node_t *v, char *buf, size_t size)
{
        if (!want(rd, v, YAML_SCALAR_NODE, key))
                return false;
        if (strlen(scalar(v)) >= size)
                return failf(rd, v, "key '%s' is longer than %zu characters", key, size - 1);
        strcpy(buf, scalar(v));
        return true;
}

static bool get_u64(struct reader *rd, const char *key, const yaml_node_t *v, uint64_t max, uint64_t *ret)
{
        char *end;
        if (!want(rd, v, YAML_SCALAR_NODE, key))
                return false;
        errno = 0;
        unsigned long long x = strtoull(scalar(v), &end, 0);
        if (errno != 0 || end == scalar(v) || *end != '\0' || scalar(v)[0] == '-' || x > max)
                return failf(rd, v, "key '%s' expects a number up to %llu, got '%s'", key,
                             (unsigned long long)max, scalar(v));
        *ret = x;
        return true;
}

static bool get_uint(struct reader *rd, const char *key, const yaml_node_t *v, unsigned *ret)
{
        uint64_t x;
        if (!get_u64(rd, key, v, UINT32_MAX, &x))
                return false;
        *ret = (unsigned)x;
        return true;
}

static bool get_bool(struct reader *rd, const char *key, const yaml_node_t *v, bool *ret)
{
        if (!want(rd, v, YAML_SCALAR_NODE, key))
                return false;
        if (streq(scalar(v), "true"))
                *ret = true;
        else if (streq(scalar(v), "false"))
                *ret = false;
        else
                return failf(rd, v, "key '%s' expects true or false, got '%s'", key, scalar(v));
        return true;
}

static bool get_enum(struct reader *rd, const char *key, const yaml_node_t *v, const char *const *names,
                     size_t n, unsigned *ret)
{
        if (!want(rd, v, YAML_SCALAR_NODE, key))
                return false;
        for (size_t i = 0; i < n; i++)
                if (names[i] && streq(names[i], scalar(v))) {
                        *ret = (unsigned)i;
                        return true;
                }
        return failf(rd, v, "key '%s' has unknown value '%s'", key, scalar(v));
}

/* Iterates a mapping's pairs: k is the key's text, v the value node. */
#define FOREACH_PAIR(rd, map, k, v)                                                                         \
        for (yaml_node_pair_t *p_ = (map)->data.mapping.pairs.start; p_ < (map)->data.mapping.pairs.top;    \
             p_++)                                                                                          \
                for (yaml_node_t *kn_ = node_at(rd, p_->key), *v = node_at(rd, p_->value); kn_; kn_ = NULL) \
                        for (const char *k = is_scalar(kn_) ? scalar(kn_) : ""; k; k = NULL)

#define FOREACH_ITEM(rd, seq, v)                                                                            \
        for (yaml_node_item_t *i_ = (seq)->data.sequence.items.start; i_ < (seq)->data.sequence.items.top;  \
             i_++)                                                                                          \
                for (yaml_node_t *v = node_at(rd, *i_); v; v = NULL)

static bool unknown_key(struct reader *rd, const yaml_node_t *v, const char *k, const char *where)
{
        return failf(rd, v, "unknown key '%s' in %s", k, where);
}

static const char *const brand_names[NVML_BRAND_COUNT] = {
        [NVML_BRAND_UNKNOWN] = "unknown",
        [NVML_BRAND_QUADRO] = "quadro",
        [NVML_BRAND_TESLA] = "tesla",
        [NVML_BRAND_NVS] = "nvs",
        [NVML_BRAND_GRID] = "grid",
        [NVML_BRAND_GEFORCE] = "geforce",
        [NVML_BRAND_TITAN] = "titan",
        [NVML_BRAND_NVIDIA_RTX] = "nvidia-rtx",
        [NVML_BRAND_QUADRO_RTX] = "quadro-rtx",
        [NVML_BRAND_NVIDIA] = "nvidia",
        [NVML_BRAND_GEFORCE_RTX] = "geforce-rtx",
        [NVML_BRAND_TITAN_RTX] = "titan-rtx",
};

static const char *const arch_names[] = {
        [NVML_DEVICE_ARCH_KEPLER] = "kepler",
        [NVML_DEVICE_ARCH_MAXWELL] = "maxwell",
        [NVML_DEVICE_ARCH_PASCAL] = "pascal",
        [NVML_DEVICE_ARCH_VOLTA] = "volta",
        [NVML_DEVICE_ARCH_TURING] = "turing",
        [NVML_DEVICE_ARCH_AMPERE] = "ampere",
        [NVML_DEVICE_ARCH_ADA] = "ada",
        [NVML_DEVICE_ARCH_HOPPER] = "hopper",
        [NVML_DEVICE_ARCH_BLACKWELL] = "blackwell",
};

unsigned mock_ci_profile_slices(unsigned ci_profile)
{
        static const unsigned slices[NVML_COMPUTE_INSTANCE_PROFILE_COUNT] = { 1, 2, 3, 4, 7, 8, 6, 1 };
        return ci_profile < NVML_COMPUTE_INSTANCE_PROFILE_COUNT ? slices[ci_profile] : 0;
}

/* "00000000:1B:00.0" (or 4-digit domain): the parts NVML's nvmlPciInfo_t carries. */
static bool parse_bus_id(struct reader *rd, const yaml_node_t *v, struct mock_gpu *g)
{
        /* all four parts and nothing after them ("1:2:3" without a function used to crash the reader) */
        unsigned fn = 0;
        int end = 0;
        if (sscanf(g->bus_id, "%x:%x:%x.%x%n", &g->domain, &g->bus, &g->device, &fn, &end) != 4 ||
            g->bus_id[end] != '\0')
                return failf(rd, v, "key 'bus_id' expects a PCI address like 00000000:1B:00.0, got '%s'",
                             g->bus_id);
        /* NVML always prints an 8-digit upper-case domain. */
        snprintf(g->bus_id, sizeof(g->bus_id), "%08X:%02X:%02X.%X", g->domain, g->bus, g->device, fn);
        return true;
}

static bool read_profile(struct reader *rd, yaml_node_t *m, struct mock_profile *p)
{
        bool have_id = false, have_profile_id = false;
        if (!want(rd, m, YAML_MAPPING_NODE, "mig_profiles[]"))
                return false;
        FOREACH_PAIR(rd, m, k, v)
        {
                bool ok;
                if (streq(k, "id"))
                        ok = have_id = get_uint(rd, k, v, &p->id);
                else if (streq(k, "profile_id"))
                        ok = have_profile_id = get_uint(rd, k, v, &p->profile_id);
                else if (streq(k, "slices"))
                        ok = get_uint(rd, k, v, &p->slices);
                else if (streq(k, "instances"))
                        ok = get_uint(rd, k, v, &p->instances);
                else if (streq(k, "multiprocessors"))
                        ok = get_uint(rd, k, v, &p->multiprocessors);
                else if (streq(k, "copy_engines"))
                        ok = get_uint(rd, k, v, &p->copy_engines);
                else if (streq(k, "decoders"))
                        ok = get_uint(rd, k, v, &p->decoders);
                else if (streq(k, "encoders"))
                        ok = get_uint(rd, k, v, &p->encoders);
                else if (streq(k, "jpeg"))
                        ok = get_uint(rd, k, v, &p->jpeg);
                else if (streq(k, "ofa"))
                        ok = get_uint(rd, k, v, &p->ofa);
                else if (streq(k, "memory_mib"))
                        ok = get_u64(rd, k, v, UINT32_MAX, &p->memory_mib);
                else
                        ok = unknown_key(rd, v, k, "a MIG profile");
                if (!ok)
                        return false;
        }
        if (!have_id || !have_profile_id || p->id >= NVML_GPU_INSTANCE_PROFILE_COUNT || p->slices == 0)
                return failf(rd, m, "a MIG profile needs 'id' (0-%d), 'profile_id' and 'slices' (>0)",
                             NVML_GPU_INSTANCE_PROFILE_COUNT - 1);
        return true;
}

static bool read_gpu_profiles(struct reader *rd, yaml_node_t *v, struct mock_gpu *g)
{
        yaml_node_t *set = NULL;
        if (!want(rd, v, YAML_SCALAR_NODE, "mig_profiles"))
                return false;
        if (rd->profile_sets)
                FOREACH_PAIR(rd, rd->profile_sets, k, s) if (streq(k, scalar(v))) set = s;
        if (!set)
                return failf(rd, v, "key 'mig_profiles' names '%s', which the top-level mig_profiles lacks",
                             scalar(v));
        if (!want(rd, set, YAML_SEQUENCE_NODE, "mig_profiles"))
                return false;
        FOREACH_ITEM(rd, set, item)
        {
                if (g->n_profiles >= MOCK_MAX_PROFILES)
                        return failf(rd, item, "more than %d MIG profiles", MOCK_MAX_PROFILES);
                if (!read_profile(rd, item, &g->profiles[g->n_profiles]))
                        return false;
                g->n_profiles++;
        }
        return true;
}

static bool read_nvlinks(struct reader *rd, yaml_node_t *seq, struct mock_gpu *g)
{
        static const char *const types[] = { [NVML_NVLINK_DEVICE_TYPE_GPU] = "gpu",
                                             [NVML_NVLINK_DEVICE_TYPE_IBMNPU] = "npu",
                                             [NVML_NVLINK_DEVICE_TYPE_SWITCH] = "switch" };
        if (!want(rd, seq, YAML_SEQUENCE_NODE, "nvlinks"))
                return false;
        FOREACH_ITEM(rd, seq, item)
        {
                char remote[NVML_DEVICE_PCI_BUS_ID_BUFFER_SIZE] = "";
                unsigned type = NVML_NVLINK_DEVICE_TYPE_GPU, count = 1;
                if (!want(rd, item, YAML_MAPPING_NODE, "nvlinks[]"))
                        return false;
                FOREACH_PAIR(rd, item, k, v)
                {
                        bool ok;
                        if (streq(k, "remote"))
                                ok = get_str(rd, k, v, remote, sizeof(remote));
                        else if (streq(k, "type"))
                                ok = get_enum(rd, k, v, types, ELEMENTSOF(types), &type);
                        else if (streq(k, "links"))
                                ok = get_uint(rd, k, v, &count);
                        else
                                ok = unknown_key(rd, v, k, "an nvlinks entry");
                        if (!ok)
                                return false;
                }
                if (remote[0] == '\0')
                        return failf(rd, item, "an nvlinks entry needs 'remote'");
                if (count > NVML_NVLINK_MAX_LINKS - g->n_nvlinks)
                        return failf(rd, item, "GPU %u has more than %d NVLinks", g->index,
                                     NVML_NVLINK_MAX_LINKS);
                for (unsigned i = 0; i < count; i++) {
                        struct mock_nvlink *l = &g->nvlinks[g->n_nvlinks++];
                        strcpy(l->remote, remote);
                        l->type = (nvmlIntNvLinkDeviceType_t)type;
                }
        }
        return true;
}

static bool read_topology(struct reader *rd, yaml_node_t *m, struct mock_gpu *g)
{
        if (!want(rd, m, YAML_MAPPING_NODE, "topology"))
                return false;
        FOREACH_PAIR(rd, m, k, v)
        {
                bool ok;
                unsigned cpu = 0;
                if (streq(k, "board"))
                        ok = get_str(rd, k, v, g->board, sizeof(g->board));
                else if (streq(k, "pcie_switch"))
                        ok = get_str(rd, k, v, g->pcie_switch, sizeof(g->pcie_switch));
                else if (streq(k, "host_bridge"))
                        ok = get_str(rd, k, v, g->host_bridge, sizeof(g->host_bridge));
                else if (streq(k, "cpu")) {
                        ok = get_uint(rd, k, v, &cpu);
                        g->cpu = (int)cpu;
                } else
                        ok = unknown_key(rd, v, k, "topology");
                if (!ok)
                        return false;
        }
        return true;
}

static int hex_digit(char c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

/* "2b6a2e4c-0c5e-4d3f-9a7b-1c2d3e4f5a6b": 32 hex digits; dashes between bytes are skipped. */
static bool parse_uuid_bytes(const char *s, unsigned char out[MOCK_FABRIC_UUID_LEN])
{
        unsigned n = 0;
        for (; *s; s++) {
                if (*s == '-')
                        continue;
                int hi = hex_digit(s[0]), lo = s[1] ? hex_digit(s[1]) : -1;
                if (hi < 0 || lo < 0 || n >= MOCK_FABRIC_UUID_LEN)
                        return false;
                out[n++] = (unsigned char)(hi << 4 | lo);
                s++;
        }
        return n == MOCK_FABRIC_UUID_LEN;
}

static bool read_fabric(struct reader *rd, yaml_node_t *m, struct mock_gpu *g)
{
        static const char *const states[] = { "not-supported", "not-started", "in-progress", "completed" };
        char uuid[64] = "";
        if (!want(rd, m, YAML_MAPPING_NODE, "fabric"))
                return false;
        g->fabric.state = MOCK_FABRIC_STATE_COMPLETED;
        FOREACH_PAIR(rd, m, k, v)
        {
                bool ok;
                if (streq(k, "cluster_uuid"))
                        ok = get_str(rd, k, v, uuid, sizeof(uuid));
                else if (streq(k, "clique_id"))
                        ok = get_uint(rd, k, v, &g->fabric.clique_id);
                else if (streq(k, "state"))
                        ok = get_enum(rd, k, v, states, ELEMENTSOF(states), &g->fabric.state);
                else if (streq(k, "status"))
                        ok = get_uint(rd, k, v, &g->fabric.status);
                else
                        ok = unknown_key(rd, v, k, "fabric");
                if (!ok)
                        return false;
        }
        /* An all-zero cluster UUID is what a GPU outside a multi-node fabric reports. */
        if (uuid[0] != '\0' && !parse_uuid_bytes(uuid, g->fabric.cluster_uuid))
                return failf(rd, m, "key 'cluster_uuid' expects a UUID (32 hex digits), got '%s'", uuid);
        g->fabric.present = true;
        return true;
}

static bool read_mig_device(struct reader *rd, yaml_node_t *m, struct mock_gpu *g)
{
        struct mock_mig *d;
        unsigned gi_profile = UINT32_MAX;
        bool have_gi = false, have_ci = false, have_ci_profile = false;

        if (g->n_mig >= MOCK_MAX_MIG)
                return failf(rd, m, "GPU %u has more than %d MIG devices", g->index, MOCK_MAX_MIG);
        d = &g->mig[g->n_mig];
        if (!want(rd, m, YAML_MAPPING_NODE, "mig_devices[]"))
                return false;
        FOREACH_PAIR(rd, m, k, v)
        {
                bool ok;
                if (streq(k, "uuid"))
                        ok = get_str(rd, k, v, d->uuid, sizeof(d->uuid));
                else if (streq(k, "gi"))
                        ok = have_gi = get_uint(rd, k, v, &d->gi_id);
                else if (streq(k, "ci"))
                        ok = have_ci = get_uint(rd, k, v, &d->ci_id);
                else if (streq(k, "profile"))
                        ok = get_uint(rd, k, v, &gi_profile);
                else if (streq(k, "ci_profile"))
                        ok = have_ci_profile = get_uint(rd, k, v, &d->ci_profile);
                else
                        ok = unknown_key(rd, v, k, "a MIG device");
                if (!ok)
                        return false;
        }
        if (!startswith(d->uuid, "MIG-") || !have_gi || !have_ci)
                return failf(rd, m, "a MIG device needs 'uuid' (MIG-...), 'gi' and 'ci'");
        for (unsigned i = 0; i < g->n_profiles; i++)
                if (g->profiles[i].id == gi_profile)
                        d->profile = &g->profiles[i];
        if (!d->profile)
                return failf(rd, m, "MIG device %s: key 'profile' is %u, not among GPU %u's mig_profiles",
                             d->uuid, gi_profile, g->index);
        if (!have_ci_profile) {
                /* Default: one compute instance spanning the GPU instance. */
                d->ci_profile = UINT32_MAX;
                for (unsigned j = 0; j < NVML_COMPUTE_INSTANCE_PROFILE_1_SLICE_REV1; j++)
                        if (mock_ci_profile_slices(j) == d->profile->slices)
                                d->ci_profile = j;
        }
        d->ci_slices = mock_ci_profile_slices(d->ci_profile);
        if (d->ci_slices == 0 || d->ci_slices > d->profile->slices)
                return failf(rd, m,
                             "MIG device %s: no compute instance profile fits a %u-slice GPU instance",
                             d->uuid, d->profile->slices);
        unsigned same_profile = 1;
        for (unsigned i = 0; i < g->n_mig; i++) {
                if (g->mig[i].gi_id == d->gi_id && g->mig[i].profile != d->profile)
                        return failf(rd, m, "MIG device %s: gi %u already has another profile", d->uuid,
                                     d->gi_id);
                bool counted = g->mig[i].profile != d->profile || g->mig[i].gi_id == d->gi_id;
                for (unsigned j = 0; j < i && !counted; j++)
                        counted = g->mig[j].gi_id == g->mig[i].gi_id;
                if (!counted)
                        same_profile++; /* another GPU instance of this profile */
        }
        if (same_profile > d->profile->instances)
                return failf(rd, m,
                             "MIG device %s: more GPU instances of profile %u than its 'instances' (%u)",
                             d->uuid, d->profile->id, d->profile->instances);
        for (unsigned i = 0; i < g->n_mig; i++)
                if (g->mig[i].gi_id == d->gi_id && g->mig[i].ci_id == d->ci_id)
                        return failf(rd, m, "MIG device %s: GPU %u already has gi %u ci %u", d->uuid,
                                     g->index, d->gi_id, d->ci_id);
        d->dev = (struct nvmlDevice_st){ .kind = MOCK_MIG, .gpu = g, .mig = d };
        d->gi.mig = d;
        d->ci.mig = d;
        g->n_mig++;
        return true;
}

static bool read_gpu(struct reader *rd, yaml_node_t *m, struct mock_gpu *g)
{
        yaml_node_t *mig_devices = NULL;
        char cc[16] = "";

        if (!want(rd, m, YAML_MAPPING_NODE, "gpus[]"))
                return false;
        g->architecture = NVML_DEVICE_ARCH_UNKNOWN;
        g->cpu = -1;
        FOREACH_PAIR(rd, m, k, v)
        {
                bool ok;
                unsigned u;
                if (streq(k, "name"))
                        ok = get_str(rd, k, v, g->name, sizeof(g->name));
                else if (streq(k, "uuid"))
                        ok = get_str(rd, k, v, g->uuid, sizeof(g->uuid));
                else if (streq(k, "minor"))
                        ok = get_uint(rd, k, v, &g->minor);
                else if (streq(k, "bus_id"))
                        ok = get_str(rd, k, v, g->bus_id, sizeof(g->bus_id)) && parse_bus_id(rd, v, g);
                else if (streq(k, "pci_device_id"))
                        ok = get_uint(rd, k, v, &g->pci_device_id);
                else if (streq(k, "pci_subsystem_id"))
                        ok = get_uint(rd, k, v, &g->pci_subsystem_id);
                else if (streq(k, "memory_mib"))
                        ok = get_u64(rd, k, v, 1ULL << 32, &g->memory_mib);
                else if (streq(k, "brand")) {
                        ok = get_enum(rd, k, v, brand_names, ELEMENTSOF(brand_names), &u);
                        g->brand = u;
                } else if (streq(k, "architecture")) {
                        ok = get_enum(rd, k, v, arch_names, ELEMENTSOF(arch_names), &u);
                        g->architecture = u;
                } else if (streq(k, "compute_capability")) {
                        char tail;
                        ok = get_str(rd, k, v, cc, sizeof(cc));
                        if (ok && sscanf(cc, "%d.%d%c", &g->cc_major, &g->cc_minor, &tail) != 2)
                                ok = failf(rd, v, "key 'compute_capability' expects MAJOR.MINOR, got '%s'",
                                           cc);
                } else if (streq(k, "mig_capable"))
                        ok = get_bool(rd, k, v, &g->mig_capable);
                else if (streq(k, "mig_enabled"))
                        ok = get_bool(rd, k, v, &g->mig_enabled);
                else if (streq(k, "mig_profiles"))
                        ok = read_gpu_profiles(rd, v, g);
                else if (streq(k, "mig_devices"))
                        ok = want(rd, mig_devices = v, YAML_SEQUENCE_NODE, k);
                else if (streq(k, "topology"))
                        ok = read_topology(rd, v, g);
                else if (streq(k, "nvlinks"))
                        ok = read_nvlinks(rd, v, g);
                else if (streq(k, "fabric"))
                        ok = read_fabric(rd, v, g);
                else
                        ok = unknown_key(rd, v, k, "a GPU");
                if (!ok)
                        return false;
        }
        if (!startswith(g->uuid, "GPU-") || isempty(g->name) || isempty(g->bus_id) || g->memory_mib == 0 ||
            cc[0] == '\0')
                return failf(rd, m,
                             "GPU %u needs 'uuid' (GPU-...), 'name', 'bus_id', 'memory_mib' and "
                             "'compute_capability'",
                             g->index);
        if (g->mig_enabled && !g->mig_capable)
                return failf(rd, m, "GPU %u: 'mig_enabled' needs 'mig_capable: true'", g->index);
        /* Profiles are resolved first so MIG devices can name them whatever the key order. */
        if (mig_devices) {
                if (!g->mig_enabled)
                        return failf(rd, mig_devices, "GPU %u: 'mig_devices' needs 'mig_enabled: true'",
                                     g->index);
                FOREACH_ITEM(rd, mig_devices, item) if (!read_mig_device(rd, item, g)) return false;
        }
        g->dev = (struct nvmlDevice_st){ .kind = MOCK_GPU, .gpu = g };
        return true;
}

static bool read_node(struct reader *rd, struct mock_node *node)
{
        yaml_node_t *root = yaml_document_get_root_node(&rd->doc), *gpus = NULL;
        bool have_driver = false, have_cuda = false;

        if (!root)
                return failf(rd, NULL, "the file is empty");
        if (!want(rd, root, YAML_MAPPING_NODE, "(top level)"))
                return false;
        FOREACH_PAIR(rd, root, k, v)
        {
                bool ok;
                uint64_t x;
                if (streq(k, "driver_version"))
                        ok = have_driver =
                                get_str(rd, k, v, node->driver_version, sizeof(node->driver_version));
                else if (streq(k, "nvml_version"))
                        ok = get_str(rd, k, v, node->nvml_version, sizeof(node->nvml_version));
                else if (streq(k, "cuda_driver_version")) {
                        ok = have_cuda = get_u64(rd, k, v, 1000000, &x);
                        node->cuda_driver_version = (int)x;
                } else if (streq(k, "mig_profiles"))
                        ok = want(rd, rd->profile_sets = v, YAML_MAPPING_NODE, k);
                else if (streq(k, "gpus"))
                        ok = want(rd, gpus = v, YAML_SEQUENCE_NODE, k);
                else
                        ok = unknown_key(rd, v, k, "the top level");
                if (!ok)
                        return false;
        }
        if (!have_driver || !have_cuda || !gpus)
                return failf(rd, root,
                             "the top level needs 'driver_version', 'cuda_driver_version' and 'gpus'");

        size_t n = (size_t)(gpus->data.sequence.items.top - gpus->data.sequence.items.start);
        if (n > MOCK_MAX_GPUS)
                return failf(rd, gpus, "more than %d GPUs", MOCK_MAX_GPUS);
        node->gpus = calloc(n ? n : 1, sizeof(struct mock_gpu));
        if (!node->gpus)
                return failf(rd, gpus, "out of memory");
        FOREACH_ITEM(rd, gpus, item)
        {
                struct mock_gpu *g = &node->gpus[node->n_gpus];
                g->index = node->n_gpus;
                if (!read_gpu(rd, item, g))
                        return false;
                for (unsigned i = 0; i < node->n_gpus; i++)
                        if (streq(node->gpus[i].uuid, g->uuid) || streq(node->gpus[i].bus_id, g->bus_id))
                                return failf(rd, item, "GPU %u repeats the uuid or bus_id of GPU %u",
                                             g->index, i);
                node->n_gpus++;
        }
        return true;
}

void mock_fixture_free(struct mock_node *node)
{
        if (!node)
                return;
        free(node->gpus);
        free(node);
}

int mock_fixture_load(const char *path, struct mock_node **ret, char **ret_error)
{
        struct reader rd = { .file = path };
        yaml_parser_t parser;
        struct mock_node *node = NULL;
        FILE *f;
        int r = -EINVAL;

        f = fopen(path, "re");
        if (!f) {
                r = -errno;
                if (asprintf(ret_error, "mock-nvml: cannot open fixture %s: %s", path, strerror(errno)) < 0)
                        *ret_error = NULL;
                return r;
        }
        if (!yaml_parser_initialize(&parser)) {
                fclose(f);
                return -ENOMEM;
        }
        yaml_parser_set_input_file(&parser, f);
        if (!yaml_parser_load(&parser, &rd.doc)) {
                if (asprintf(ret_error, "mock-nvml: fixture %s line %zu: malformed YAML: %s", path,
                             parser.problem_mark.line + 1, strna(parser.problem)) < 0)
                        *ret_error = NULL;
                yaml_parser_delete(&parser);
                fclose(f);
                return -EINVAL;
        }

        node = calloc(1, sizeof(*node));
        if (node && read_node(&rd, node)) {
                *ret = node;
                node = NULL;
                r = 0;
        } else if (!rd.error && asprintf(&rd.error, "mock-nvml: fixture %s: out of memory", path) < 0)
                rd.error = NULL;

        if (r < 0)
                *ret_error = rd.error;
        mock_fixture_free(node);
        yaml_document_delete(&rd.doc);
        yaml_parser_delete(&parser);
        fclose(f);
        return r;
}
