/* SPDX-License-Identifier: Apache-2.0 */
/* nvdp info: what this node has and what the plugin would advertise with the same flags, as a table
 * or as JSON (fields documented in docs/info.md). */
#include <getopt.h>
#include <stdio.h>

#include "base/fileio.h"
#include "base/json.h"
#include "base/strv.h"
#include "cmd/cmd.h"
#include "config/config.h"
#include "gpu/node.h"
#include "labels/labels.h"
#include "resource/plan.h"

static void help(FILE *f)
{
        fprintf(f,
                "Usage: nvdp info [--json] [PLUGIN FLAGS]\n\n"
                "Show the node's GPUs, MIG devices, GPU links and driver versions, and the resources the\n"
                "device plugin would advertise with the same flags, env vars and config file.\n\n"
                "  --json             print JSON instead of a table\n"
                "  -h, --help         show this help\n\n"
                "Every flag of 'nvdp plugin' is accepted, e.g. --mig-strategy, --config-file,\n"
                "--device-id-strategy, --driver-root (env NVIDIA_DRIVER_ROOT), --root (env NVDP_ROOT:\n"
                "the host root whose sys/ and proc/ are read). See 'nvdp plugin --help'.\n");
}

static const char *pcie_level_name(enum pcie_level l)
{
        switch (l) {
        case PCIE_LEVEL_INTERNAL: return "BRD";
        case PCIE_LEVEL_SINGLE: return "PIX";
        case PCIE_LEVEL_MULTIPLE: return "PXB";
        case PCIE_LEVEL_HOSTBRIDGE: return "PHB";
        case PCIE_LEVEL_NODE: return "NODE";
        case PCIE_LEVEL_SYSTEM: return "SYS";
        default: return "?";
        }
}

static const char *fabric_state_name(unsigned state)
{
        static const char *const names[] = { "not-supported", "not-started", "in-progress", "completed" };
        return state < ELEMENTSOF(names) ? names[state] : "unknown";
}

/* null when the GPU is in no NVLink fabric (NOT_SUPPORTED). */
static void print_json_fabric(FILE *f, const struct gpu_fabric *fb)
{
        if (!fb->supported) {
                fprintf(f, "null");
                return;
        }
        if (fb->error[0]) {
                fprintf(f, "{\"error\": ");
                json_write_string(f, fb->error);
                fprintf(f, "}");
                return;
        }
        fprintf(f, "{\"state\": \"%s\", \"status\": %d, \"cluster_uuid\": ", fabric_state_name(fb->state),
                fb->status);
        json_write_string(f, fb->cluster_uuid);
        fprintf(f, ", \"clique_id\": %u, \"attached\": %s}", fb->clique_id,
                gpu_fabric_attached(fb) ? "true" : "false");
}

static void print_json(FILE *f, const inventory *inv, const plan *pl)
{
        fprintf(f, "{\n  \"driver_version\": ");
        json_write_string(f, inv->driver_version);
        fprintf(f, ",\n  \"cuda_driver_version\": %d,\n  \"cuda_version\": \"%d.%d\",\n  \"nvml_version\": ",
                inv->cuda_driver_version, inv->cuda_driver_version / 1000,
                inv->cuda_driver_version % 1000 / 10);
        json_write_string(f, inv->nvml_version);
        fprintf(f, ",\n  \"gpus\": [");
        for (size_t i = 0; i < inv->n_gpus; i++) {
                const struct gpu *g = &inv->gpus[i];
                fprintf(f, "%s\n    {\"index\": %u, \"minor\": %u, \"uuid\": ", i ? "," : "", g->index,
                        g->minor);
                json_write_string(f, g->uuid);
                fprintf(f, ", \"name\": ");
                json_write_string(f, g->name);
                fprintf(f, ", \"brand\": ");
                json_write_string(f, g->brand);
                fprintf(f, ", \"architecture\": ");
                json_write_string(f, g->architecture);
                fprintf(f, ",\n     \"memory_mib\": %llu, \"bus_id\": ", (unsigned long long)g->memory_mib);
                json_write_string(f, g->bus_id);
                fprintf(f, ", \"pci_class\": \"0x%06x\", \"numa_node\": ", g->pci_class);
                if (g->numa_node >= 0)
                        fprintf(f, "%d", g->numa_node);
                else
                        fprintf(f, "null");
                fprintf(f,
                        ", \"compute_capability\": \"%u.%u\",\n     \"mig_capable\": %s, \"mig_enabled\": "
                        "%s, "
                        "\"mig_devices\": [",
                        g->cc_major, g->cc_minor, g->mig_capable ? "true" : "false",
                        g->mig_enabled ? "true" : "false");
                for (size_t j = 0; j < g->n_mig; j++) {
                        const struct mig_device *m = &g->mig[j];
                        fprintf(f, "%s\n       {\"index\": %u, \"uuid\": ", j ? "," : "", m->index);
                        json_write_string(f, m->uuid);
                        fprintf(f, ", \"gi\": %u, \"ci\": %u, \"profile\": ", m->gi_id, m->ci_id);
                        json_write_string(f, m->profile);
                        fprintf(f,
                                ", \"memory_mib\": %llu, \"multiprocessors\": %u,\n"
                                "        \"slices\": {\"gi\": %u, \"ci\": %u}, \"engines\": {\"copy\": %u, "
                                "\"decoder\": %u, \"encoder\": %u, \"jpeg\": %u, \"ofa\": %u}}",
                                (unsigned long long)m->memory_mib, m->multiprocessors, m->slices_gi,
                                m->slices_ci, m->engines_copy, m->engines_decoder, m->engines_encoder,
                                m->engines_jpeg, m->engines_ofa);
                }
                fprintf(f, "%s],\n     \"fabric\": ", g->n_mig ? "\n     " : "");
                print_json_fabric(f, &g->fabric);
                fprintf(f, "}");
        }
        fprintf(f, "%s],\n  \"links\": [", inv->n_gpus ? "\n  " : "");
        bool first = true;
        for (size_t a = 0; a < inv->n_gpus; a++)
                for (size_t b = a + 1; b < inv->n_gpus; b++) {
                        const struct gpu_link *l = inventory_link(inv, a, b);
                        fprintf(f,
                                "%s\n    {\"a\": %zu, \"b\": %zu, \"nvlinks\": %u, \"pcie\": \"%s\", "
                                "\"score\": %u}",
                                first ? "" : ",", a, b, l->nvlinks, pcie_level_name(l->pcie_level),
                                gpu_link_score(l));
                        first = false;
                }
        fprintf(f, "%s],\n  \"resources\": [", first ? "" : "\n  ");
        for (size_t i = 0; i < pl->n_resources; i++) {
                const struct plan_resource *r = &pl->resources[i];
                fprintf(f,
                        "%s\n    {\"name\": \"%s\", \"devices\": %zu, \"replicas\": %u, \"sharing\": "
                        "\"%s\", "
                        "\"socket\": \"%s\"}",
                        i ? "," : "", r->name, r->n_devices, r->replicas,
                        sharing_strategy_to_string(r->sharing), r->socket_name);
        }
        fprintf(f, "%s]\n}\n", pl->n_resources ? "\n  " : "");
}

static void print_resources(FILE *f, const plan *pl)
{
        fprintf(f, "\nResources the device plugin would advertise (%zu):\n", pl->n_resources);
        if (pl->n_resources == 0) {
                fprintf(f, "  none\n");
                return;
        }
        fprintf(f, "  %-32s %7s %8s  %-12s %s\n", "RESOURCE", "DEVICES", "REPLICAS", "SHARING", "SOCKET");
        for (size_t i = 0; i < pl->n_resources; i++) {
                const struct plan_resource *r = &pl->resources[i];
                fprintf(f, "  %-32s %7zu %8u  %-12s %s\n", r->name, r->n_devices, r->replicas,
                        sharing_strategy_to_string(r->sharing), r->socket_name);
        }
}

/* Only on a node whose GPUs are in an NVLink fabric (GB200 NVL72 and the like). */
static void print_fabric(FILE *f, const inventory *inv)
{
        bool any = false;
        for (size_t i = 0; i < inv->n_gpus; i++)
                any = any || inv->gpus[i].fabric.supported;
        if (!any)
                return;
        _cleanup_free_ char *clique = NULL, *why = NULL, *error = NULL;
        int r = labels_gpu_clique(inv, &clique, &why, &error);
        fprintf(f, "\nNVLink fabric (nvidia.com/gpu.clique: %s):\n",
                r > 0    ? clique
                : r == 0 ? "none"
                         : "unreadable");
        for (size_t i = 0; i < inv->n_gpus; i++) {
                const struct gpu_fabric *fb = &inv->gpus[i].fabric;
                if (!fb->supported)
                        fprintf(f, "  GPU%-2zu not in a fabric\n", i);
                else if (fb->error[0])
                        fprintf(f, "  GPU%-2zu %s\n", i, fb->error);
                else
                        fprintf(f, "  GPU%-2zu %-13s status %-3d cluster %-36s clique %u\n", i,
                                fabric_state_name(fb->state), fb->status,
                                fb->cluster_uuid[0] ? fb->cluster_uuid : "-", fb->clique_id);
        }
        if (why)
                fprintf(f, "  %s\n", why);
}

static void print_table(FILE *f, const inventory *inv, const plan *pl)
{
        fprintf(f, "Driver %s, CUDA %d.%d, NVML %s\n\n", inv->driver_version,
                inv->cuda_driver_version / 1000, inv->cuda_driver_version % 1000 / 10,
                isempty(inv->nvml_version) ? "?" : inv->nvml_version);
        if (inv->n_gpus == 0) {
                fprintf(f, "No GPUs.\n");
                print_resources(f, pl);
                return;
        }

        fprintf(f, "GPUs (%zu):\n", inv->n_gpus);
        fprintf(f, "  %-3s %-5s %-40s %-28s %10s  %-12s %-4s %-3s %-8s %-7s %s\n", "IDX", "MINOR", "UUID",
                "NAME", "MEMORY", "BUS ID", "NUMA", "CC", "CLASS", "ARCH", "MIG");
        for (size_t i = 0; i < inv->n_gpus; i++) {
                const struct gpu *g = &inv->gpus[i];
                char numa[16], cc[16], mem[32];
                snprintf(numa, sizeof(numa), g->numa_node >= 0 ? "%d" : "-", g->numa_node);
                snprintf(cc, sizeof(cc), "%u.%u", g->cc_major, g->cc_minor);
                snprintf(mem, sizeof(mem), "%llu MiB", (unsigned long long)g->memory_mib);
                fprintf(f, "  %-3u %-5u %-40s %-28s %10s  %-12s %-4s %-3s 0x%06x %-7s %s\n", g->index,
                        g->minor, g->uuid, g->name, mem, g->bus_id, numa, cc, g->pci_class,
                        isempty(g->architecture) ? "-" : g->architecture,
                        g->mig_enabled   ? "enabled"
                        : g->mig_capable ? "capable"
                                         : "-");
        }

        size_t n_mig = 0;
        for (size_t i = 0; i < inv->n_gpus; i++)
                n_mig += inv->gpus[i].n_mig;
        if (n_mig > 0) {
                fprintf(f, "\nMIG devices (%zu):\n", n_mig);
                fprintf(f, "  %-5s %-42s %-10s %-3s %-3s %10s  %-4s %s\n", "ID", "UUID", "PROFILE", "GI",
                        "CI", "MEMORY", "SMS", "ENGINES (copy/dec/enc/jpeg/ofa)");
                for (size_t i = 0; i < inv->n_gpus; i++)
                        for (size_t j = 0; j < inv->gpus[i].n_mig; j++) {
                                const struct mig_device *m = &inv->gpus[i].mig[j];
                                char id[24], mem[32];
                                snprintf(id, sizeof(id), "%u:%u", m->parent, m->index);
                                snprintf(mem, sizeof(mem), "%llu MiB", (unsigned long long)m->memory_mib);
                                fprintf(f, "  %-5s %-42s %-10s %-3u %-3u %10s  %-4u %u/%u/%u/%u/%u\n", id,
                                        m->uuid, m->profile, m->gi_id, m->ci_id, mem, m->multiprocessors,
                                        m->engines_copy, m->engines_decoder, m->engines_encoder,
                                        m->engines_jpeg, m->engines_ofa);
                        }
        }

        if (inv->n_gpus > 1) {
                fprintf(f, "\nLinks (NV<n>: n NVLinks; else PCIe: PIX one switch, PXB several, PHB host "
                           "bridge, "
                           "NODE same CPU, SYS across CPUs):\n     ");
                for (size_t b = 0; b < inv->n_gpus; b++)
                        fprintf(f, " %5s%zu", "GPU", b);
                fputc('\n', f);
                for (size_t a = 0; a < inv->n_gpus; a++) {
                        fprintf(f, "  GPU%-2zu", a);
                        for (size_t b = 0; b < inv->n_gpus; b++) {
                                const struct gpu_link *l = inventory_link(inv, a, b);
                                char cell[16];
                                if (a == b)
                                        snprintf(cell, sizeof(cell), "X");
                                else if (l->nvlinks > 0)
                                        snprintf(cell, sizeof(cell), "NV%u", l->nvlinks);
                                else
                                        snprintf(cell, sizeof(cell), "%s", pcie_level_name(l->pcie_level));
                                fprintf(f, " %6s", cell);
                        }
                        fputc('\n', f);
                }
        }
        print_fabric(f, inv);
        print_resources(f, pl);
}

int cmd_info(int argc, char **argv)
{
        _cleanup_strv_free_ char **args = NULL;
        bool json = false, show_labels = false;
        int r;

        /* Our own flags are taken out; everything else is the plugin's flag set. */
        for (int i = 0; i < argc; i++) {
                if (i > 0 && streq(argv[i], "--json")) {
                        json = true;
                        continue;
                }
                if (i > 0 && streq(argv[i], "--labels")) {
                        show_labels = true;
                        continue;
                }
                if (i > 0 && (streq(argv[i], "--help") || streq(argv[i], "-h"))) {
                        help(stdout);
                        return 0;
                }
                if (strv_extend(&args, argv[i]) < 0)
                        return 1;
        }

        _cleanup_(config_freep) config *c = NULL;
        _cleanup_free_ char *error = NULL;
        r = config_from_args(PROGRAM_PLUGIN, (int)strv_length(args), args, &c, &error);
        if (r > 0)
                return 0;
        if (r < 0) {
                fprintf(stderr, "nvdp info: %s\n", error ? error : strerror(-r));
                return 2;
        }
        STRV_FOREACH (w, c->warnings)
                fprintf(stderr, "nvdp info: warning: %s\n", *w);

        _cleanup_(node_closep) struct node *n = NULL;
        struct node_roots roots = config_node_roots(c);
        r = node_open(&roots, &n, &error);
        if (r < 0 && node_error_is_nvml_load(r)) {
                fprintf(stderr, "nvdp info: %s\n", error ? error : strerror(-r));
                return 2;
        }
        if (r < 0) {
                fprintf(stderr, "nvdp info: reading the GPU inventory failed: %s\n",
                        error ? error : strerror(-r));
                return 1;
        }
        const inventory *inv = n->inventory;

        _cleanup_(plan_freep) plan *pl = NULL;
        r = plan_build(inv, c, &pl, &error);
        if (r < 0) {
                fprintf(stderr, "nvdp info: the device plugin would not start: %s\n",
                        error ? error : strerror(-r));
                return 1;
        }

        if (json)
                print_json(stdout, inv, pl);
        else
                print_table(stdout, inv, pl);
        if (show_labels) {
                /* The DMI product name under --root, as the GFD pod reads the host's. */
                _cleanup_free_ char *dmi = path_join_root(c->flags.root, "/sys/class/dmi/id/product_name");
                _cleanup_free_ char *machine = NULL;
                if (dmi)
                        (void)read_one_line_file(dmi, &machine);
                _cleanup_(labels_freep) labels *l = NULL;
                r = labels_build(inv, c, machine, LABELS_NO_TIMESTAMP, &l, &error);
                if (r < 0) {
                        fprintf(stderr, "nvdp info: building the labels failed: %s\n",
                                error ? error : strerror(-r));
                        return 1;
                }
                printf("\nNode labels (nvdp gfd):\n");
                labels_print(l, stdout, "  ");
        }
        return fflush(stdout) == 0 ? 0 : 1;
}
