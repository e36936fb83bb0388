/* SPDX-License-Identifier: Apache-2.0 */
/* Fixture node filesystems for the CDI tests, built in a directory: the driver layouts nvdp must
 * handle (a distribution's FHS layout, a driver installed under /usr/local/nvidia with its device
 * nodes in the host's /dev, the GPU operator's /run/nvidia/driver, a MIG node). Libraries are tiny but
 * real ELF shared objects with a SONAME (what the spec generator and the ld.so.cache hook read);
 * device nodes are regular files, or real character devices with FX_MKNOD (needs root; the CDI
 * library's injection stats them). Used by tests/unit/test-cdi.c and tests/helpers/cdi-fixture-root.c
 * (for the Go test). Functions return 0 or -errno. */
#pragma once

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

#include "cdi/ldcache.h"

#define FX_VERSION "580.105.08" /* the fixture inventories' driver version, when version is "" */

enum { FX_MKNOD = 1 << 0 };

struct fx {
        char root[1024];
        unsigned flags;
        char version[64];
};

/* prefix + the fixture's driver version + suffix, in one of a few rotating buffers. */
static inline const char *fxv(const struct fx *f, const char *prefix, const char *suffix)
{
        static char ring[8][4096];
        static unsigned next;
        char *b = ring[next++ % 8];
        snprintf(b, 4096, "%s%s%s", prefix, f->version[0] ? f->version : FX_VERSION, suffix);
        return b;
}

static inline int fx_path(const struct fx *f, const char *path, char out[static 4096])
{
        int n = snprintf(out, 4096, "%s%s", f->root, path);
        return n < 0 || n >= 4096 ? -ENAMETOOLONG : 0;
}

static inline int fx_mkdirs(const struct fx *f, const char *path)
{
        char p[4096];
        int r = fx_path(f, path, p);
        if (r < 0)
                return r;
        for (char *s = p + 1;; s++) {
                char c = *s;
                if (c != '/' && c != '\0')
                        continue;
                *s = '\0';
                if (mkdir(p, 0755) < 0 && errno != EEXIST)
                        return -errno;
                *s = c;
                if (!c)
                        return 0;
        }
}

static inline int fx_parent(const struct fx *f, const char *path)
{
        char dir[4096];
        snprintf(dir, sizeof dir, "%s", path);
        char *slash = strrchr(dir, '/');
        if (!slash)
                return 0;
        *slash = '\0';
        return fx_mkdirs(f, dir);
}

static inline int fx_write(const struct fx *f, const char *path, const void *data, size_t size, mode_t mode)
{
        char p[4096];
        int r = fx_parent(f, path);
        if (r < 0 || (r = fx_path(f, path, p)) < 0)
                return r;
        int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
        if (fd < 0)
                return -errno;
        bool ok = write(fd, data, size) == (ssize_t)size && fchmod(fd, mode) == 0;
        close(fd);
        return ok ? 0 : -EIO;
}

static inline int fx_text(const struct fx *f, const char *path, const char *text, mode_t mode)
{
        return fx_write(f, path, text, strlen(text), mode);
}

static inline int fx_link(const struct fx *f, const char *path, const char *target)
{
        char p[4096];
        int r = fx_parent(f, path);
        if (r < 0 || (r = fx_path(f, path, p)) < 0)
                return r;
        return symlink(target, p) < 0 ? -errno : 0;
}

/* A minimal 64-bit (or 32-bit) shared object of this machine: one PT_LOAD over the file, a PT_DYNAMIC
 * with DT_STRTAB, DT_STRSZ and DT_SONAME (when soname is given). */
static inline int fx_elf(const struct fx *f, const char *path, const char *soname, bool elf32)
{
        uint8_t buf[512] = {};
        Elf64_Ehdr *eh = (Elf64_Ehdr *)buf;
        Elf64_Phdr *ph = (Elf64_Phdr *)(buf + sizeof *eh);
        Elf64_Dyn *dyn = (Elf64_Dyn *)(buf + sizeof *eh + 2 * sizeof *ph);
        size_t strtab = sizeof *eh + 2 * sizeof *ph + 4 * sizeof *dyn;
        size_t n = soname ? strlen(soname) : 0;
        if (strtab + n + 2 > sizeof buf)
                return -E2BIG;
        if (soname)
                memcpy(buf + strtab + 1, soname, n);
        size_t size = strtab + n + 2;
        memcpy(eh->e_ident, ELFMAG, SELFMAG);
        eh->e_ident[EI_CLASS] = elf32 ? ELFCLASS32 : ELFCLASS64;
        eh->e_ident[EI_DATA] = ELFDATA2LSB;
        eh->e_ident[EI_VERSION] = EV_CURRENT;
        eh->e_type = ET_DYN;
#if defined(__x86_64__)
        eh->e_machine = elf32 ? EM_386 : EM_X86_64;
#else
        eh->e_machine = elf32 ? EM_ARM : EM_AARCH64;
#endif
        eh->e_version = EV_CURRENT;
        eh->e_phoff = sizeof *eh;
        eh->e_ehsize = sizeof *eh;
        eh->e_phentsize = sizeof *ph;
        eh->e_phnum = 2;
        ph[0] = (Elf64_Phdr){
                .p_type = PT_LOAD, .p_flags = PF_R, .p_filesz = size, .p_memsz = size, .p_align = 4096
        };
        ph[1] = (Elf64_Phdr){ .p_type = PT_DYNAMIC,
                              .p_flags = PF_R,
                              .p_offset = sizeof *eh + 2 * sizeof *ph,
                              .p_vaddr = sizeof *eh + 2 * sizeof *ph,
                              .p_filesz = 4 * sizeof *dyn,
                              .p_memsz = 4 * sizeof *dyn,
                              .p_align = 8 };
        size_t k = 0;
        dyn[k++] = (Elf64_Dyn){ .d_tag = DT_STRTAB, .d_un.d_ptr = strtab };
        dyn[k++] = (Elf64_Dyn){ .d_tag = DT_STRSZ, .d_un.d_val = n + 2 };
        if (soname)
                dyn[k++] = (Elf64_Dyn){ .d_tag = DT_SONAME, .d_un.d_val = 1 };
        dyn[k] = (Elf64_Dyn){ .d_tag = DT_NULL };
        return fx_write(f, path, buf, size, 0755);
}

/* A driver library libname.so.<version> in dir with SONAME soname, plus the links the host has. */
static inline int fx_lib(const struct fx *f, const char *dir, const char *file, const char *soname,
                         bool soname_link, const char *dev_link)
{
        char p[4096], l[4096];
        snprintf(p, sizeof p, "%s/%s", dir, file);
        int r = fx_elf(f, p, soname, false);
        if (r < 0)
                return r;
        if (soname && soname_link) {
                snprintf(l, sizeof l, "%s/%s", dir, soname);
                if ((r = fx_link(f, l, file)) < 0)
                        return r;
        }
        if (dev_link) {
                snprintf(l, sizeof l, "%s/%s", dir, dev_link);
                if ((r = fx_link(f, l, soname ? soname : file)) < 0)
                        return r;
        }
        return 0;
}

static inline int fx_node(const struct fx *f, const char *path, unsigned major, unsigned minor)
{
        char p[4096];
        int r = fx_parent(f, path);
        if (r < 0 || (r = fx_path(f, path, p)) < 0)
                return r;
        if (f->flags & FX_MKNOD)
                return mknod(p, S_IFCHR | 0666, makedev(major, minor)) < 0 ? -errno : 0;
        return fx_text(f, path, "", 0666);
}

static inline int fx_socket(const struct fx *f, const char *path)
{
        char p[4096];
        int r = fx_parent(f, path);
        if (r < 0 || (r = fx_path(f, path, p)) < 0)
                return r;
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        if (strlen(p) >= sizeof sa.sun_path)
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, p);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        r = bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 ? -errno : 0;
        close(fd); /* the socket file stays */
        return r;
}

/* An ld.so.cache at path listing (name, path) pairs of this machine (i386 entries when name starts
 * with '!'). */
static inline int fx_ldcache(const struct fx *f, const char *path, const char *const *pairs)
{
        struct ldcache_entry e[32] = {};
        size_t n = 0;
        for (; pairs[2 * n] && n < 32; n++) {
                bool i386 = pairs[2 * n][0] == '!';
                e[n] = (struct ldcache_entry){ .flags = i386 ? 0x0003 : ldcache_native_flags(),
                                               .name = (char *)pairs[2 * n] + i386,
                                               .path = (char *)pairs[2 * n + 1] };
        }
        void *data;
        size_t size;
        int r = ldcache_format(e, n, &data, &size);
        if (r < 0)
                return r;
        r = fx_write(f, path, data, size, 0644);
        free(data);
        return r;
}

#define FX_TRY(x)                                                                                           \
        do {                                                                                                \
                int _r = (x);                                                                               \
                if (_r < 0)                                                                                 \
                        return _r;                                                                          \
        } while (0)

/* The driver libraries of a typical install in dir (a path inside the fixture). */
static inline int fx_driver_libs(const struct fx *f, const char *dir, bool graphics)
{
        FX_TRY(fx_lib(f, dir, fxv(f, "libcuda.so.", ""), "libcuda.so.1", true, "libcuda.so"));
        FX_TRY(fx_lib(f, dir, fxv(f, "libnvidia-ml.so.", ""), "libnvidia-ml.so.1", true, "libnvidia-ml.so"));
        FX_TRY(fx_lib(f, dir, fxv(f, "libnvidia-ptxjitcompiler.so.", ""), "libnvidia-ptxjitcompiler.so.1",
                      true, NULL));
        FX_TRY(fx_lib(f, dir, fxv(f, "libnvidia-nvvm.so.", ""), "libnvidia-nvvm.so.4", true, NULL));
        /* A library whose SONAME link the host lacks: the spec does not invent it. */
        FX_TRY(fx_lib(f, dir, fxv(f, "libnvidia-cfg.so.", ""), "libnvidia-cfg.so.1", false, NULL));
        /* Another driver version left behind by an upgrade: not this driver's. */
        char old[4096];
        snprintf(old, sizeof old, "%s/libcuda.so.570.86.10", dir);
        FX_TRY(fx_elf(f, old, "libcuda.so.1", false));
        if (!graphics)
                return 0;
        FX_TRY(fx_lib(f, dir, fxv(f, "libGLX_nvidia.so.", ""), "libGLX_nvidia.so.0", true, NULL));
        FX_TRY(fx_lib(f, dir, fxv(f, "libnvidia-allocator.so.", ""), "libnvidia-allocator.so.1", true,
                      NULL));
        FX_TRY(fx_lib(f, dir, "libnvidia-egl-gbm.so.1.1.2", "libnvidia-egl-gbm.so.1", true, NULL));
        char vdpau[4096];
        snprintf(vdpau, sizeof vdpau, "%s/vdpau", dir);
        FX_TRY(fx_lib(f, vdpau, fxv(f, "libvdpau_nvidia.so.", ""), "libvdpau_nvidia.so.1", true, NULL));
        return 0;
}

static inline int fx_binaries(const struct fx *f, const char *dir)
{
        static const char *const names[] = { "nvidia-smi", "nvidia-debugdump", "nvidia-persistenced",
                                             "nvidia-cuda-mps-control", "nvidia-cuda-mps-server" };
        char p[4096];
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
                snprintf(p, sizeof p, "%s/%s", dir, names[i]);
                FX_TRY(fx_text(f, p, "#!/bin/sh\n", 0755));
        }
        /* Not executable: not a binary to mount. */
        snprintf(p, sizeof p, "%s/nvidia-imex", dir);
        return fx_text(f, p, "", 0644);
}

static inline int fx_control_nodes(const struct fx *f, const char *dev)
{
        char p[4096];
        static const struct {
                const char *name;
                unsigned major, minor;
        } nodes[] = { { "nvidiactl", 195, 255 }, { "nvidia-uvm", 238, 0 }, { "nvidia-uvm-tools", 238, 1 } };
        for (size_t i = 0; i < sizeof nodes / sizeof nodes[0]; i++) {
                snprintf(p, sizeof p, "%s/%s", dev, nodes[i].name);
                FX_TRY(fx_node(f, p, nodes[i].major, nodes[i].minor));
        }
        return 0;
}

static inline int fx_gpu_nodes(const struct fx *f, const char *dev, unsigned n)
{
        char p[4096];
        for (unsigned i = 0; i < n; i++) {
                snprintf(p, sizeof p, "%s/nvidia%u", dev, i);
                FX_TRY(fx_node(f, p, 195, i));
        }
        return 0;
}

/* Debian/Ubuntu packages: driver root "/", one consumer GPU (bus 0000:01:00.0) with DRM nodes. */
static inline int fx_layout_fhs(const struct fx *f)
{
        const char *lib = "/usr/lib/x86_64-linux-gnu";
        FX_TRY(fx_driver_libs(f, lib, true));
        FX_TRY(fx_elf(f, fxv(f, "/usr/lib/libcuda.so.", ""), "libcuda.so.1", true)); /* 32-bit */
        static const char *const cache[] = {
                "libnvidia-ml.so.1",
                "/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1",
                "libcuda.so.1",
                "/usr/lib/x86_64-linux-gnu/libcuda.so.1",
                "!libcuda.so.1",
                "/usr/lib/libcuda.so.1",
                "libvdpau_nvidia.so.1",
                "/usr/lib/x86_64-linux-gnu/vdpau/libvdpau_nvidia.so.1",
                NULL,
        };
        FX_TRY(fx_ldcache(f, "/etc/ld.so.cache", cache));
        FX_TRY(fx_binaries(f, "/usr/bin"));
        FX_TRY(fx_text(f, fxv(f, "/lib/firmware/nvidia/", "/gsp_ga10x.bin"), "gsp", 0644));
        FX_TRY(fx_text(f, fxv(f, "/lib/firmware/nvidia/", "/gsp_tu10x.bin"), "gsp", 0644));
        FX_TRY(fx_text(f, "/lib/firmware/nvidia/570.86.10/gsp_ga10x.bin", "old", 0644));
        FX_TRY(fx_socket(f, "/run/nvidia-persistenced/socket"));
        FX_TRY(fx_text(f, "/usr/share/vulkan/icd.d/nvidia_icd.json", "{}", 0644));
        FX_TRY(fx_text(f, "/usr/share/glvnd/egl_vendor.d/10_nvidia.json", "{}", 0644));
        FX_TRY(fx_control_nodes(f, "/dev"));
        FX_TRY(fx_node(f, "/dev/nvidia-modeset", 195, 254));
        FX_TRY(fx_gpu_nodes(f, "/dev", 1));
        FX_TRY(fx_text(f, "/sys/bus/pci/devices/0000:01:00.0/drm/card1/dev", "226:1", 0644));
        FX_TRY(fx_text(f, "/sys/bus/pci/devices/0000:01:00.0/drm/renderD128/dev", "226:128", 0644));
        FX_TRY(fx_node(f, "/dev/dri/card1", 226, 1));
        FX_TRY(fx_node(f, "/dev/dri/renderD128", 226, 128));
        FX_TRY(fx_link(f, "/dev/dri/by-path/pci-0000:01:00.0-card", "../card1"));
        FX_TRY(fx_link(f, "/dev/dri/by-path/pci-0000:01:00.0-render", "../renderD128"));
        return 0;
}

/* The GPU test host's layout: the driver in /usr/local/nvidia (bin/, lib64/, lib/ with 32-bit
 * libraries, firmware/, share/, an empty dev/), device nodes and sockets in the host's /dev and /run. */
static inline int fx_layout_usr_local_nvidia(const struct fx *f)
{
        const char *lib = "/usr/local/nvidia/lib64";
        FX_TRY(fx_lib(f, lib, fxv(f, "libcuda.so.", ""), "libcuda.so.1", true, "libcuda.so"));
        FX_TRY(fx_lib(f, lib, fxv(f, "libnvidia-ml.so.", ""), "libnvidia-ml.so.1", true, NULL));
        FX_TRY(fx_lib(f, lib, fxv(f, "libnvidia-ptxjitcompiler.so.", ""), "libnvidia-ptxjitcompiler.so.1",
                      true, NULL));
        FX_TRY(fx_elf(f, fxv(f, "/usr/local/nvidia/lib/libcuda.so.", ""), "libcuda.so.1", true));
        FX_TRY(fx_binaries(f, "/usr/local/nvidia/bin"));
        FX_TRY(fx_text(f, fxv(f, "/usr/local/nvidia/firmware/nvidia/", "/gsp_ga10x.bin"), "gsp", 0644));
        FX_TRY(fx_text(f, "/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json", "{}", 0644));
        FX_TRY(fx_text(f, "/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json", "{}", 0644));
        FX_TRY(fx_mkdirs(f, "/usr/local/nvidia/dev"));
        FX_TRY(fx_control_nodes(f, "/dev"));
        FX_TRY(fx_gpu_nodes(f, "/dev", 1));
        FX_TRY(fx_socket(f, "/run/nvidia-persistenced/socket"));
        return 0;
}

/* The GPU operator: the driver container's root at /run/nvidia/driver (merged /usr: lib -> usr/lib),
 * its /dev holding the device nodes, nvidia-smi an absolute symlink inside that root. */
static inline int fx_layout_operator(const struct fx *f)
{
        FX_TRY(fx_driver_libs(f, "/run/nvidia/driver/usr/lib/x86_64-linux-gnu", false));
        FX_TRY(fx_link(f, "/run/nvidia/driver/lib", "usr/lib"));
        static const char *const cache[] = {
                "libnvidia-ml.so.1",
                "/lib/x86_64-linux-gnu/libnvidia-ml.so.1",
                "libcuda.so.1",
                "/lib/x86_64-linux-gnu/libcuda.so.1",
                NULL,
        };
        FX_TRY(fx_ldcache(f, "/run/nvidia/driver/etc/ld.so.cache", cache));
        FX_TRY(fx_binaries(f, "/run/nvidia/driver/usr/lib/nvidia"));
        FX_TRY(fx_link(f, "/run/nvidia/driver/usr/bin/nvidia-smi", "/usr/lib/nvidia/nvidia-smi"));
        FX_TRY(fx_text(f, fxv(f, "/run/nvidia/driver/usr/lib/firmware/nvidia/", "/gsp_ga10x.bin"), "gsp",
                       0644));
        FX_TRY(fx_socket(f, "/run/nvidia/driver/run/nvidia-fabricmanager/socket"));
        FX_TRY(fx_control_nodes(f, "/run/nvidia/driver/dev"));
        FX_TRY(fx_gpu_nodes(f, "/run/nvidia/driver/dev", 2));
        return 0;
}

/* mig-minors as the driver writes it for 2 GPUs: 15 GPU instances of 8 compute instances each. */
static inline int fx_mig_minors(const struct fx *f)
{
        char buf[16384];
        size_t n = (size_t)snprintf(buf, sizeof buf, "config 1\nmonitor 2\n");
        for (unsigned g = 0; g < 2; g++)
                for (unsigned gi = 0; gi < 15; gi++) {
                        unsigned base = 3 + g * 135 + gi * 9;
                        n += (size_t)snprintf(buf + n, sizeof buf - n, "gpu%u/gi%u/access %u\n", g, gi,
                                              base);
                        for (unsigned ci = 0; ci < 8; ci++)
                                n += (size_t)snprintf(buf + n, sizeof buf - n, "gpu%u/gi%u/ci%u/access %u\n",
                                                      g, gi, ci, base + 1 + ci);
                }
        return fx_write(f, "/proc/driver/nvidia-caps/mig-minors", buf, n, 0444);
}

/* The 2x A100 MIG node of test-plan-inventories.h on an FHS driver, with a capability node for every
 * GPU and compute instance mig-minors lists (as the driver creates them), and IMEX channel 0. */
static inline int fx_layout_mig(const struct fx *f)
{
        FX_TRY(fx_driver_libs(f, "/usr/lib/x86_64-linux-gnu", false));
        FX_TRY(fx_binaries(f, "/usr/bin"));
        FX_TRY(fx_control_nodes(f, "/dev"));
        FX_TRY(fx_gpu_nodes(f, "/dev", 2));
        FX_TRY(fx_mig_minors(f));
        for (unsigned minor = 1; minor <= 2 + 2 * 135; minor++) {
                char p[128];
                snprintf(p, sizeof p, "/dev/nvidia-caps/nvidia-cap%u", minor);
                FX_TRY(fx_node(f, p, 511, minor));
        }
        FX_TRY(fx_node(f, "/dev/nvidia-caps-imex-channels/channel0", 510, 0));
        return 0;
}
