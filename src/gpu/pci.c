/* SPDX-License-Identifier: Apache-2.0 */
#include <ctype.h>
#include <inttypes.h>

#include "base/fileio.h"
#include "gpu/inventory.h"

/* Parses exactly `digits` hex digits (or 1..digits when !exact) at *p. */
static int parse_hex(const char **p, unsigned min_digits, unsigned max_digits, unsigned long *ret)
{
        unsigned long v = 0;
        unsigned k = 0;
        while (k < max_digits && isxdigit((unsigned char)(*p)[k])) {
                char c = (char)tolower((unsigned char)(*p)[k]);
                v = v * 16 + (unsigned long)(isdigit((unsigned char)c) ? c - '0' : c - 'a' + 10);
                k++;
        }
        if (k < min_digits)
                return -EINVAL;
        *p += k;
        *ret = v;
        return 0;
}

int pci_bus_id_normalize(const char *in, char *out, size_t size)
{
        unsigned long domain, bus, dev, fn;
        const char *p = in;

        if (!in)
                return -EINVAL;
        if (parse_hex(&p, 1, 8, &domain) < 0 || *p++ != ':')
                return -EINVAL;
        if (parse_hex(&p, 2, 2, &bus) < 0 || *p++ != ':')
                return -EINVAL;
        if (parse_hex(&p, 2, 2, &dev) < 0 || *p++ != '.')
                return -EINVAL;
        if (parse_hex(&p, 1, 1, &fn) < 0 || *p != '\0' || dev > 0x1f || fn > 7)
                return -EINVAL;

        /* Upstream lower-cases NVML's 8-digit domain and trims a leading "0000": domains beyond 16 bits
         * keep all 8 digits. */
        int k = domain > 0xffff ? snprintf(out, size, "%08lx:%02lx:%02lx.%lx", domain, bus, dev, fn)
                                : snprintf(out, size, "%04lx:%02lx:%02lx.%lx", domain, bus, dev, fn);
        if (k < 0 || (size_t)k >= size)
                return -ENOBUFS;
        return 0;
}

static int read_device_attr(const char *root, const char *bus_id, const char *attr, char **ret)
{
        _cleanup_free_ char *rel = NULL;
        if (asprintf(&rel, "/sys/bus/pci/devices/%s/%s", bus_id, attr) < 0)
                return -ENOMEM;
        _cleanup_free_ char *path = path_join_root(root, rel);
        if (!path)
                return -ENOMEM;
        return read_one_line_file(path, ret);
}

int pci_read_numa_node(const char *root, const char *bus_id)
{
        _cleanup_free_ char *s = NULL;
        if (read_device_attr(root, bus_id, "numa_node", &s) < 0)
                return -1;
        char *end;
        errno = 0;
        long v = strtol(s, &end, 10);
        if (errno != 0 || end == s || *end != '\0' || v < 0 || v > 65535)
                return -1;
        return (int)v;
}

uint32_t pci_read_class(const char *root, const char *bus_id)
{
        _cleanup_free_ char *s = NULL;
        if (read_device_attr(root, bus_id, "class", &s) < 0)
                return 0;
        char *end;
        errno = 0;
        unsigned long v = strtoul(s, &end, 16);
        if (errno != 0 || end == s || *end != '\0' || v > 0xffffff)
                return 0;
        return (uint32_t)v;
}

int mig_profile_name(unsigned gi_slices, unsigned ci_slices, unsigned gi_profile_id, uint64_t memory_mib,
                     uint64_t parent_memory_bytes, char *out, size_t size)
{
        const uint64_t mib = 1024ULL * 1024, gib = mib * 1024;
        const char *suffix = "";
        int k;

        if (gi_slices == 0 || ci_slices == 0 || parent_memory_bytes == 0)
                return -EINVAL;

        /* In integers: eighths = ceil(8 * mem / total), GB = round(eighths / 8 * ceil(total / GiB)). */
        uint64_t eighths = (memory_mib * mib * 8 + parent_memory_bytes - 1) / parent_memory_bytes;
        uint64_t total_gb = (parent_memory_bytes + gib - 1) / gib;
        uint64_t gb = (eighths * total_gb * 2 + 8) / 16;

        switch (gi_profile_id) {
        case 7: /* NVML_GPU_INSTANCE_PROFILE_1_SLICE_REV1 */
        case 8: /* 2_SLICE_REV1 */ suffix = "+me"; break;
        case 10: /* 1_SLICE_GFX */
        case 11:
        case 12: suffix = "+gfx"; break;
        case 13: /* 1_SLICE_NO_ME */
        case 14: suffix = "-me"; break;
        case 15: /* 1_SLICE_ALL_ME */
        case 16: suffix = "+me.all"; break;
        }

        if (ci_slices == gi_slices)
                k = snprintf(out, size, "%ug.%" PRIu64 "gb%s", gi_slices, gb, suffix);
        else
                k = snprintf(out, size, "%uc.%ug.%" PRIu64 "gb%s", ci_slices, gi_slices, gb, suffix);
        if (k < 0 || (size_t)k >= size)
                return -ENOBUFS;
        return 0;
}
