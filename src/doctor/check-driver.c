/* SPDX-License-Identifier: Apache-2.0 */
/* Driver: kernel module, NVML (probed by the caller), device nodes. */
#include <ctype.h>

#include "base/strv.h"
#include "doctor/doctor.h"
#include "doctor/rootfs.h"

/* The first line, blanks runs collapsed to one space (the file pads with double spaces). */
static char *first_line_collapsed(const char *s)
{
        size_t n = strcspn(s, "\n");
        char *o = new0(char, n + 1);
        if (!o)
                return NULL;
        size_t k = 0;
        bool blank = false;
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char)s[i];
                if (isspace(c) || c < 0x20) {
                        blank = k > 0;
                        continue;
                }
                if (blank)
                        o[k++] = ' ';
                blank = false;
                o[k++] = (char)c;
        }
        o[k] = '\0';
        return o;
}

static int check_module(const struct doctor_options *o, doctor_report *r)
{
        _cleanup_free_ char *v = NULL;
        int k = rootfs_read(o->root, "/proc/driver/nvidia/version", 64 * 1024, &v, NULL);
        if (k < 0)
                return doctor_report_add(
                        r, "driver.module", DOCTOR_FAIL,
                        "/proc/driver/nvidia/version is missing: the nvidia kernel module is not loaded",
                        "modprobe nvidia   # no such module? install the NVIDIA driver for this kernel "
                        "first");
        _cleanup_free_ char *line = first_line_collapsed(v);
        if (!line)
                return -ENOMEM;
        return doctor_report_addf(r, "driver.module", DOCTOR_OK, NULL, "/proc/driver/nvidia/version: %s",
                                  line[0] ? line : "(empty)");
}

static int check_nvml(const struct doctor_options *o, doctor_report *r)
{
        const struct doctor_nvml_probe *p = o->nvml;
        if (!p || !p->attempted)
                return doctor_report_add(r, "driver.nvml", DOCTOR_SKIP, "NVML was not probed", NULL);
        if (!p->loaded)
                return doctor_report_addf(r, "driver.nvml", DOCTOR_FAIL,
                                          "ldconfig -p | grep libnvidia-ml   # the driver's libraries must "
                                          "be installed and match "
                                          "the loaded module",
                                          "NVML did not load: %s",
                                          p->error[0] ? p->error : "no reason given");
        if (p->gpu_count == 0)
                return doctor_report_addf(r, "driver.nvml", DOCTOR_FAIL,
                                          "dmesg | grep -i -e NVRM -e Xid   # why the driver sees no GPU",
                                          "NVML loaded (driver %s) but reports no GPUs",
                                          p->driver_version[0] ? p->driver_version : "unknown");
        char cuda[32] = "unknown";
        if (p->cuda_driver_version > 0)
                snprintf(cuda, sizeof(cuda), "%d.%d", p->cuda_driver_version / 1000,
                         p->cuda_driver_version % 1000 / 10);
        return doctor_report_addf(
                r, "driver.nvml", DOCTOR_OK, NULL, "NVML loaded: %u GPU%s, driver %s, CUDA %s", p->gpu_count,
                p->gpu_count == 1 ? "" : "s", p->driver_version[0] ? p->driver_version : "unknown", cuda);
}

static bool is_gpu_node_name(const char *n)
{
        if (!startswith(n, "nvidia") || !n[6])
                return false;
        for (const char *c = n + 6; *c; c++)
                if (!isdigit((unsigned char)*c))
                        return false;
        return true;
}

static int check_device_nodes(const struct doctor_options *o, doctor_report *r)
{
        _cleanup_strv_free_ char **want = NULL, **present = NULL, **missing = NULL;
        int k;

        if ((k = strv_extend(&want, "/dev/nvidiactl")) < 0 ||
            (k = strv_extend(&want, "/dev/nvidia-uvm")) < 0)
                return k;
        if (o->nvml && o->nvml->loaded && o->nvml->gpu_count > 0) {
                /* One node per GPU. NVML minors are not always 0..N-1, but on a node where the doctor
                 * matters they are; the inventory's minors can refine this later. */
                for (unsigned i = 0; i < o->nvml->gpu_count && i < 256; i++) {
                        char p[32];
                        snprintf(p, sizeof(p), "/dev/nvidia%u", i);
                        if ((k = strv_extend(&want, p)) < 0)
                                return k;
                }
        } else {
                /* GPU count unknown: whatever /dev/nvidiaN exist, and at least /dev/nvidia0. */
                _cleanup_strv_free_ char **dev = NULL;
                bool any = false;
                if (rootfs_list(o->root, "/dev", 65536, &dev) >= 0)
                        STRV_FOREACH (d, dev)
                                if (is_gpu_node_name(*d)) {
                                        _cleanup_free_ char *p = NULL;
                                        if (asprintf(&p, "/dev/%s", *d) < 0)
                                                return -ENOMEM;
                                        if ((k = strv_extend(&want, p)) < 0)
                                                return k;
                                        any = true;
                                }
                if (!any && (k = strv_extend(&want, "/dev/nvidia0")) < 0)
                        return k;
        }

        STRV_FOREACH (w, want) {
                /* Existence only: tests stand regular files in for device nodes, and a node that
                 * exists with the wrong type is a problem no admin has reported. */
                k = strv_extend(rootfs_exists(o->root, *w) ? &present : &missing, *w);
                if (k < 0)
                        return k;
        }
        _cleanup_free_ char *p = strv_join(present, ", "), *m = strv_join(missing, ", ");
        if (!p || !m)
                return -ENOMEM;
        if (missing)
                return doctor_report_addf(r, "driver.devices", DOCTOR_FAIL,
                                          "nvidia-modprobe -u -c=0 && nvidia-smi   # loads nvidia-uvm and "
                                          "creates the missing /dev/nvidia* nodes",
                                          "missing: %s; present: %s", m, present ? p : "none");
        return doctor_report_addf(r, "driver.devices", DOCTOR_OK, NULL, "present: %s", p);
}

int doctor_check_driver(const struct doctor_options *o, doctor_report *r)
{
        int k;
        if ((k = check_module(o, r)) < 0 || (k = check_nvml(o, r)) < 0 || (k = check_device_nodes(o, r)) < 0)
                return k;
        return 0;
}
