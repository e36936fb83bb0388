/* SPDX-License-Identifier: Apache-2.0 */
/* The user-space files of the running driver, found on the driver root: the libraries of its version
 * (through the root's ld.so.cache and the usual library directories), the utilities, the GSP firmware,
 * the daemons' sockets and the graphics ICD files. Each is mounted at the same path inside the
 * container as it has inside the driver root, as nvidia-ctk does. */
#include <fcntl.h>
#include <fnmatch.h>
#include <sys/stat.h>
#include <sys/utsname.h>

#include "base/error.h"
#include "base/fileio.h"
#include "base/strv.h"
#include "cdi/cdi-internal.h"
#include "cdi/elf-soname.h"
#include "cdi/ldcache.h"

/* Where distributions and the GPU operator put the driver's libraries (relative to the driver root). */
static const char *const library_dirs[] = {
        "/usr/lib64",
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib/aarch64-linux-gnu",
        "/usr/lib/x86_64-linux-gnu/nvidia/current",
        "/usr/lib/aarch64-linux-gnu/nvidia/current",
        "/lib64",
        "/lib/x86_64-linux-gnu",
        "/lib/aarch64-linux-gnu",
        "/lib/x86_64-linux-gnu/nvidia/current",
        "/lib/aarch64-linux-gnu/nvidia/current",
        "/usr/lib", /* 64-bit libraries on Arch; 32-bit ones elsewhere are told apart by their ELF class */
        "/lib",
        NULL,
};

static const char *const binary_dirs[] = {
        "/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin", NULL,
};

static const char *const binaries[] = {
        "nvidia-smi",              /* management */
        "nvidia-debugdump",        /* GPU core dumps */
        "nvidia-persistenced",     /* persistence daemon */
        "nvidia-cuda-mps-control", /* MPS */
        "nvidia-cuda-mps-server",
        "nvidia-imex", /* IMEX daemon and its control program */
        "nvidia-imex-ctl",
        NULL,
};

/* Where the configs are, and where the container gets them: a driver installed into one directory
 * (/usr/local/nvidia) keeps them in its share/, which is /usr/share's place. */
static const char *const config_dirs[][2] = {
        { "/etc", "/etc" },
        { "/usr/local/share", "/usr/local/share" },
        { "/usr/share", "/usr/share" },
        { "/share", "/usr/share" },
        { NULL, NULL },
};
static const char *const vulkan_dirs[][2] = {
        { "/etc", "/etc" },       { "/usr/local/share", "/etc" },
        { "/usr/share", "/etc" }, { "/share", "/etc" },
        { "/", "/etc" },          { NULL, NULL },
};

static const char *const config_files[] = {
        "glvnd/egl_vendor.d/10_nvidia.json",
        "egl/egl_external_platform.d/15_nvidia_gbm.json",
        "egl/egl_external_platform.d/10_nvidia_wayland.json",
        "nvidia/nvoptix.bin",
        "X11/xorg.conf.d/10-nvidia.conf",
        "X11/xorg.conf.d/nvidia-drm-outputclass.conf",
        NULL,
};

/* Vulkan ICD files go to /etc/vulkan in the container wherever the driver keeps them (GKE keeps them
 * at the top of its driver root). */
static const char *const vulkan_files[] = {
        "vulkan/icd.d/nvidia_icd.json",
        "vulkan/icd.d/nvidia_layers.json",
        "vulkan/implicit_layer.d/nvidia_layers.json",
#if defined(__x86_64__)
        "vulkan/icd.d/nvidia_icd.x86_64.json",
#elif defined(__aarch64__)
        "vulkan/icd.d/nvidia_icd.aarch64.json",
#endif
        NULL,
};

/* Each entry: the alternatives for one socket, first found wins. */
static const char *const sockets[][3] = {
        { "/run/nvidia-persistenced/socket", "/var/run/nvidia-persistenced/socket", NULL },
        { "/run/nvidia-fabricmanager/socket", "/var/run/nvidia-fabricmanager/socket", NULL },
        { "/tmp/nvidia-mps", NULL, NULL }, /* MPS pipe directory */
};

static const char *const xorg_dirs[] = {
        "nvidia/xorg",
        "xorg/modules/drivers",
        "xorg/modules/extensions",
        "xorg/modules/updates/drivers",
        "xorg/modules/updates/extensions",
        NULL,
};

static char *const options_file[] = { (char *)"ro",    (char *)"nosuid",   (char *)"nodev",
                                      (char *)"rbind", (char *)"rprivate", NULL };

#define DIR_ENTRIES_MAX 65536

void driver_files_done(struct driver_files *d)
{
        for (size_t i = 0; i < d->n_files; i++) {
                free(d->files[i].host_path);
                free(d->files[i].container_path);
        }
        free(d->files);
        strv_free(d->links);
        strv_free(d->folders);
        *d = (struct driver_files){};
}

struct finder {
        const struct cdi_where *w;
        const char *version;
        struct driver_files *out;
        char **real_paths; /* canonical in-root paths of the files added (no file twice) */
};

static char *join(const char *dir, const char *name)
{
        char *r;
        if (asprintf(&r, "%s%s%s", streq(dir, "/") ? "" : dir, name[0] == '/' ? "" : "/", name) < 0)
                return NULL;
        return r;
}

/* Adds a file: real is its canonical path inside root (the host path is root + real); container is
 * where the container gets it. Returns 1 when added, 0 when that file or container path is there. */
static int add_file(struct finder *f, enum driver_file_kind kind, const char *root, const char *real,
                    const char *container)
{
        if (strv_contains(f->real_paths, real))
                return 0;
        for (size_t i = 0; i < f->out->n_files; i++)
                if (streq(f->out->files[i].container_path, container))
                        return 0;
        struct driver_file *n = realloc(f->out->files, sizeof(*n) * (f->out->n_files + 1));
        if (!n)
                return -ENOMEM;
        f->out->files = n;
        n = &f->out->files[f->out->n_files];
        *n = (struct driver_file){ kind, path_join_root(root, real), strdup(container) };
        f->out->n_files++;
        if (!n->host_path || !n->container_path)
                return -ENOMEM;
        int r = strv_extend(&f->real_paths, real);
        return r < 0 ? r : 1;
}

/* Whether the file at path (inside the driver root) is a library of this machine; its SONAME too. */
static bool native_library(const struct finder *f, const char *real, char **ret_soname)
{
        _cleanup_free_ char *local = path_join_root(f->w->driver_ctr, real);
        if (!local)
                return false;
        _cleanup_close_ int fd = open(local, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return false;
        char *soname = NULL;
        if (elf_read_soname(fd, &soname) < 0)
                return false;
        if (ret_soname)
                *ret_soname = soname;
        else
                free(soname);
        return true;
}

static bool has_version_suffix(const char *name, const char *version)
{
        size_t n = strlen(name), v = strlen(version);
        return n > v + 4 && memcmp(name + n - v - 4, ".so.", 4) == 0 && streq(name + n - v, version);
}

/* Names in a directory of the driver root, sorted; none when it cannot be read. */
static int list_dir(const char *root_ctr, const char *dir, char ***ret)
{
        _cleanup_free_ char *local = path_join_root(root_ctr, dir);
        if (!local)
                return -ENOMEM;
        int r = dir_list(local, NULL, DIR_ENTRIES_MAX, ret);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                *ret = NULL;
        return 0;
}

/* A library found at dir/name (dir canonical): added when it resolves to a native library whose file
 * name matches. */
static int add_library(struct finder *f, const char *dir, const char *name, const char *pattern)
{
        _cleanup_free_ char *path = join(dir, name), *real = NULL;
        if (!path)
                return -ENOMEM;
        if (root_realpath(f->w->driver_ctr, path, &real) < 0)
                return 0;
        if (pattern ? fnmatch(pattern, path_base_name(real), 0) != 0
                    : !has_version_suffix(path_base_name(real), f->version))
                return 0;
        if (!native_library(f, real, NULL))
                return 0;
        return add_file(f, DRIVER_FILE_LIBRARY, f->w->driver, real, path);
}

static int scan_library_dir(struct finder *f, const char *dir)
{
        _cleanup_strv_free_ char **names = NULL;
        int r = list_dir(f->w->driver_ctr, dir, &names);
        if (r < 0)
                return r;
        STRV_FOREACH (n, names)
                if (startswith(*n, "lib") && has_version_suffix(*n, f->version) &&
                    (r = add_library(f, dir, *n, NULL)) < 0)
                        return r;
        return 0;
}

/* The directories to scan: those of the cache's libraries of this version first, then the usual ones.
 * Each canonical, each once. */
static int library_dirs_find(struct finder *f, char ***ret, char **ret_searched)
{
        _cleanup_strv_free_ char **dirs = NULL;
        _cleanup_(ldcache_freep) ldcache *cache = NULL;
        _cleanup_free_ char *cache_path = path_join_root(f->w->driver_ctr, "/etc/ld.so.cache");
        int r;
        if (!cache_path)
                return -ENOMEM;
        if (ldcache_read(cache_path, &cache) >= 0)
                for (size_t i = 0; i < cache->n_entries; i++) {
                        const struct ldcache_entry *e = &cache->entries[i];
                        _cleanup_free_ char *real = NULL, *dir = NULL;
                        if (e->flags != ldcache_native_flags() || e->hwcap != 0 ||
                            root_realpath(f->w->driver_ctr, e->path, &real) < 0 ||
                            !has_version_suffix(path_base_name(real), f->version))
                                continue;
                        if (!(dir = path_dir_name(real)))
                                return -ENOMEM;
                        if (!strv_contains(dirs, dir) && (r = strv_extend(&dirs, dir)) < 0)
                                return r;
                }
        for (size_t i = 0; library_dirs[i]; i++) {
                _cleanup_free_ char *real = NULL;
                if (root_realpath(f->w->driver_ctr, library_dirs[i], &real) < 0)
                        continue;
                if (!strv_contains(dirs, real) && (r = strv_extend(&dirs, real)) < 0)
                        return r;
        }
        _cleanup_free_ char *list = strv_join((char **)library_dirs, ", ");
        if (!list || asprintf(ret_searched, "%s and %s", cache_path, list) < 0)
                return -ENOMEM;
        *ret = TAKE_PTR(dirs);
        return 0;
}

static const char *find_library_dir(const struct driver_files *d, const char *prefix)
{
        for (size_t i = 0; i < d->n_files; i++)
                if (d->files[i].kind == DRIVER_FILE_LIBRARY &&
                    startswith(path_base_name(d->files[i].container_path), prefix))
                        return d->files[i].container_path;
        return NULL;
}

static int find_libraries(struct finder *f, char **ret_error)
{
        _cleanup_strv_free_ char **dirs = NULL;
        _cleanup_free_ char *searched = NULL;
        int r = library_dirs_find(f, &dirs, &searched);
        if (r < 0)
                return r;
        STRV_FOREACH (d, dirs) {
                _cleanup_free_ char *vdpau = join(*d, "vdpau");
                if (!vdpau)
                        return -ENOMEM;
                if ((r = scan_library_dir(f, *d)) < 0 || (r = scan_library_dir(f, vdpau)) < 0)
                        return r;
        }
        const char *core = find_library_dir(f->out, "libcuda.so.");
        if (!core)
                core = find_library_dir(f->out, "libnvidia-ml.so.");
        if (!core)
                return error_set(
                        ret_error, -ENOENT,
                        "no libraries of NVIDIA driver %s (libcuda.so.%s, libnvidia-ml.so.%s) under "
                        "the driver root %s (seen at %s): looked in %s",
                        f->version, f->version, f->version, f->w->driver, f->w->driver_ctr, searched);

        /* Graphics libraries without the driver's version in their name, and the X driver, next to
         * the core libraries. */
        _cleanup_free_ char *core_dir = path_dir_name(core);
        if (!core_dir)
                return -ENOMEM;
        static const char *const graphics[] = { "libnvidia-egl-gbm.so.*.*", "libnvidia-egl-wayland.so.*.*",
                                                NULL };
        _cleanup_strv_free_ char **names = NULL;
        if ((r = list_dir(f->w->driver_ctr, core_dir, &names)) < 0)
                return r;
        for (size_t g = 0; graphics[g]; g++)
                STRV_FOREACH (n, names)
                        if (fnmatch(graphics[g], *n, 0) == 0) {
                                if ((r = add_library(f, core_dir, *n, graphics[g])) < 0)
                                        return r;
                                if (r > 0)
                                        break;
                        }
        _cleanup_free_ char *glx = NULL;
        if (asprintf(&glx, "libglxserver_nvidia.so.%s", f->version) < 0)
                return -ENOMEM;
        const char *xorg_names[] = { "nvidia_drv.so", glx, NULL };
        for (size_t x = 0; xorg_names[x]; x++)
                for (size_t i = 0; xorg_dirs[i]; i++) {
                        _cleanup_free_ char *dir = join(core_dir, xorg_dirs[i]);
                        if (!dir)
                                return -ENOMEM;
                        if ((r = add_library(f, dir, xorg_names[x], xorg_names[x])) < 0)
                                return r;
                        if (r > 0)
                                break;
                }
        return 0;
}

/* Whether path inside root (seen at root_ctr) is of this type (S_IFREG, S_IFDIR, S_IFSOCK), following
 * links inside the root; its canonical path in *ret_real. */
static bool file_in(const char *root_ctr, const char *path, mode_t type, char **ret_real)
{
        _cleanup_free_ char *real = NULL, *local = NULL;
        struct stat st;
        if (root_realpath(root_ctr, path, &real) < 0 || !(local = path_join_root(root_ctr, real)) ||
            stat(local, &st) < 0 || (st.st_mode & S_IFMT) != type)
                return false;
        *ret_real = TAKE_PTR(real);
        return true;
}

static int find_binaries(struct finder *f)
{
        for (size_t b = 0; binaries[b]; b++)
                for (size_t d = 0; binary_dirs[d]; d++) {
                        _cleanup_free_ char *dir = NULL, *path = NULL, *real = NULL;
                        if (root_realpath(f->w->driver_ctr, binary_dirs[d], &dir) < 0)
                                continue;
                        if (!(path = join(dir, binaries[b])))
                                return -ENOMEM;
                        if (!file_in(f->w->driver_ctr, path, S_IFREG, &real))
                                continue;
                        _cleanup_free_ char *local = path_join_root(f->w->driver_ctr, real);
                        struct stat st;
                        if (!local || stat(local, &st) < 0 || !(st.st_mode & 0111))
                                continue;
                        int r = add_file(f, DRIVER_FILE_BINARY, f->w->driver, real, path);
                        if (r < 0)
                                return r;
                        break;
                }
        return 0;
}

/* The GSP firmware of the driver's version in dir (a path inside root, seen at root_ctr). */
static int firmware_in(struct finder *f, const char *root, const char *root_ctr, const char *dir)
{
        _cleanup_free_ char *sub = NULL, *real_dir = NULL;
        if (asprintf(&sub, "%s/nvidia/%s", dir, f->version) < 0)
                return -ENOMEM;
        if (root_realpath(root_ctr, sub, &real_dir) < 0)
                return 0;
        _cleanup_strv_free_ char **names = NULL;
        int r = list_dir(root_ctr, real_dir, &names);
        if (r < 0)
                return r;
        STRV_FOREACH (name, names) {
                if (fnmatch("gsp*.bin", *name, 0) != 0)
                        continue;
                _cleanup_free_ char *path = join(real_dir, *name), *real = NULL, *container = NULL;
                if (!path)
                        return -ENOMEM;
                if (!file_in(root_ctr, path, S_IFREG, &real))
                        continue;
                if (asprintf(&container, "/lib/firmware/nvidia/%s/%s", f->version, *name) < 0)
                        return -ENOMEM;
                if ((r = add_file(f, DRIVER_FILE_FIRMWARE, root, real, container)) < 0)
                        return r;
        }
        return 0;
}

static int find_firmware(struct finder *f, const char *kernel_release)
{
        struct utsname u;
        if (!kernel_release)
                kernel_release = uname(&u) == 0 ? u.release : "";
        /* The kernel's own extra search path (firmware_class.path: a path of the host, where the GPU
         * test host keeps /usr/local/nvidia/firmware), then its defaults in the driver root, then the
         * firmware/ folder of a driver installed into one directory. */
        _cleanup_free_ char *param =
                path_join_root(f->w->host_ctr, "/sys/module/firmware_class/parameters/path");
        _cleanup_free_ char *custom = NULL, *updates_release = NULL, *release = NULL;
        if (!param || asprintf(&updates_release, "/lib/firmware/updates/%s", kernel_release) < 0 ||
            asprintf(&release, "/lib/firmware/%s", kernel_release) < 0)
                return -ENOMEM;
        (void)read_one_line_file(param, &custom);
        int r;
        if (!isempty(custom) && custom[0] == '/' && (r = firmware_in(f, "/", f->w->host_ctr, custom)) < 0)
                return r;
        const char *dirs[] = { updates_release, "/lib/firmware/updates", release,
                               "/lib/firmware", "/usr/lib/firmware",     "/firmware" };
        for (size_t d = 0; d < ELEMENTSOF(dirs); d++)
                if ((r = firmware_in(f, f->w->driver, f->w->driver_ctr, dirs[d])) < 0)
                        return r;
        return 0;
}

/* Looks for path in the driver root, then (when that is not the host's root) in the host's root:
 * sockets are the running system's, not the driver package's. */
static int find_in_roots(struct finder *f, enum driver_file_kind kind, const char *path, mode_t type)
{
        const char *roots[2][2] = { { f->w->driver, f->w->driver_ctr }, { "/", f->w->host_ctr } };
        size_t n = streq(f->w->driver, "/") ? 1 : 2;
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *real = NULL;
                if (file_in(roots[i][1], path, type, &real))
                        return add_file(f, kind, roots[i][0], real, real);
        }
        return 0;
}

static int find_sockets(struct finder *f)
{
        for (size_t s = 0; s < ELEMENTSOF(sockets); s++)
                for (size_t a = 0; a < ELEMENTSOF(sockets[s]) && sockets[s][a]; a++) {
                        int r = find_in_roots(f, DRIVER_FILE_SOCKET, sockets[s][a],
                                              endswith(sockets[s][a], "socket") ? S_IFSOCK : S_IFDIR);
                        if (r < 0)
                                return r;
                        if (r > 0)
                                break;
                }
        return 0;
}

/* The first of dirs (inside the driver root) holding file, mounted under that dir's container dir. */
static int find_config(struct finder *f, const char *file, const char *const (*dirs)[2])
{
        for (size_t d = 0; dirs[d][0]; d++) {
                _cleanup_free_ char *path = join(dirs[d][0], file), *real = NULL, *container = NULL;
                if (!path)
                        return -ENOMEM;
                if (!file_in(f->w->driver_ctr, path, S_IFREG, &real))
                        continue;
                if (!(container = join(dirs[d][1], file)))
                        return -ENOMEM;
                return add_file(f, DRIVER_FILE_CONFIG, f->w->driver, real, container);
        }
        return 0;
}

static int find_configs(struct finder *f)
{
        int r;
        for (size_t i = 0; config_files[i]; i++)
                if ((r = find_config(f, config_files[i], config_dirs)) < 0)
                        return r;
        for (size_t i = 0; vulkan_files[i]; i++)
                if ((r = find_config(f, vulkan_files[i], vulkan_dirs)) < 0)
                        return r;
        return 0;
}

/* ---- links and folders for the hooks ---- */

static bool host_has_symlink(const struct finder *f, const char *real_dir, const char *name)
{
        _cleanup_free_ char *p = join(real_dir, name), *local = NULL;
        struct stat st;
        return p && (local = path_join_root(f->w->driver_ctr, p)) && lstat(local, &st) == 0 &&
               S_ISLNK(st.st_mode);
}

static int add_link(struct driver_files *d, const char *target, const char *dir, const char *link)
{
        _cleanup_free_ char *l = NULL, *path = join(dir, link);
        if (!path || asprintf(&l, "%s::%s", target, path) < 0)
                return -ENOMEM;
        if (strv_contains(d->links, l))
                return 0;
        return strv_extend(&d->links, l);
}

/* "libfoo.so.1.2" -> "libfoo.so"; "" when the name has no ".so". */
static char *so_link_name(const char *name)
{
        const char *p = strstr(name, ".so");
        while (p && p[3] != '\0' && p[3] != '.')
                p = strstr(p + 1, ".so");
        return p ? strndup(name, (size_t)(p - name) + 3) : strdup("");
}

/* Fixed links some programs need that ldconfig does not make (as nvidia-ctk adds them). */
static int add_special_links(struct finder *f, const char *dir, const char *name)
{
        struct {
                const char *prefix, *target, *link;
        } special[] = {
                { "libcuda.so.", "libcuda.so.1", "libcuda.so" }, /* dlopen("libcuda.so") */
                { "libGLX_nvidia.so.", NULL, "libGLX_indirect.so.0" },
                { "libnvidia-opticalflow.so.", "libnvidia-opticalflow.so.1", "libnvidia-opticalflow.so" },
                { "libnvidia-allocator.so.", "../libnvidia-allocator.so.1", "gbm/nvidia-drm_gbm.so" },
                { "libnvidia-vulkan-producer.so.", NULL, "libnvidia-vulkan-producer.so" },
                { "libglxserver_nvidia.so.", NULL, "libglxserver_nvidia.so" },
        };
        for (size_t i = 0; i < ELEMENTSOF(special); i++)
                if (startswith(name, special[i].prefix) && has_version_suffix(name, f->version)) {
                        int r = add_link(f->out, special[i].target ? special[i].target : name, dir,
                                         special[i].link);
                        if (r < 0)
                                return r;
                }
        return 0;
}

/* For each library: the SONAME link and the .so link, when the driver root has them too. */
static int find_links(struct finder *f)
{
        int r;
        for (size_t i = 0; i < f->out->n_files; i++) {
                const struct driver_file *file = &f->out->files[i];
                if (file->kind != DRIVER_FILE_LIBRARY)
                        continue;
                _cleanup_free_ char *dir = path_dir_name(file->container_path), *soname = NULL, *so = NULL,
                                    *real = NULL;
                const char *name = path_base_name(file->container_path);
                if (!dir)
                        return -ENOMEM;
                if ((r = add_special_links(f, dir, name)) < 0)
                        return r;
                /* The links are looked for next to the file's own name in the root (dir is canonical). */
                if (root_realpath(f->w->driver_ctr, file->container_path, &real) < 0 ||
                    !native_library(f, real, &soname))
                        continue;
                if (soname && !streq(soname, name) && host_has_symlink(f, dir, soname) &&
                    (r = add_link(f->out, name, dir, soname)) < 0)
                        return r;
                const char *so_target = soname ? soname : name;
                if (!(so = so_link_name(so_target)))
                        return -ENOMEM;
                if (*so && !streq(so, so_target) && host_has_symlink(f, dir, so) &&
                    (r = add_link(f->out, so_target, dir, so)) < 0)
                        return r;
        }
        return 0;
}

/* The folders of the libraries, for update-ldcache: names like "lib*.so" or "lib*.so.*". */
static int find_folders(struct driver_files *d)
{
        for (size_t i = 0; i < d->n_files; i++) {
                const char *name = path_base_name(d->files[i].container_path);
                if (d->files[i].kind != DRIVER_FILE_LIBRARY || !startswith(name, "lib") || strlen(name) < 7)
                        continue;
                const char *so = strstr(name + 4, ".so");
                if (!so || (so[3] != '\0' && so[3] != '.'))
                        continue;
                _cleanup_free_ char *dir = path_dir_name(d->files[i].container_path);
                if (!dir)
                        return -ENOMEM;
                if (!strv_contains(d->folders, dir)) {
                        int r = strv_extend(&d->folders, dir);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

static int file_cmp(const void *x, const void *y)
{
        const struct driver_file *a = x, *b = y;
        if (a->kind != b->kind)
                return a->kind < b->kind ? -1 : 1;
        return strcmp(a->container_path, b->container_path);
}

int driver_files_find(const struct cdi_where *w, const char *version, const char *kernel_release,
                      struct driver_files *ret, char **ret_error)
{
        struct driver_files out = {};
        struct finder f = { .w = w, .version = version, .out = &out };
        int r;
        if ((r = find_libraries(&f, ret_error)) < 0 || (r = find_binaries(&f)) < 0 ||
            (r = find_firmware(&f, kernel_release)) < 0 || (r = find_sockets(&f)) < 0 ||
            (r = find_configs(&f)) < 0)
                goto fail;
        if (out.n_files > 1)
                qsort(out.files, out.n_files, sizeof *out.files, file_cmp);
        if ((r = find_links(&f)) < 0 || (r = find_folders(&out)) < 0)
                goto fail;
        strv_free(f.real_paths);
        *ret = out;
        return 0;
fail:
        strv_free(f.real_paths);
        driver_files_done(&out);
        return r;
}

char *const *driver_file_mount_options(enum driver_file_kind kind)
{
        static char *const options_socket[] = { (char *)"nosuid",   (char *)"nodev",  (char *)"rbind",
                                                (char *)"rprivate", (char *)"noexec", NULL };
        return kind == DRIVER_FILE_SOCKET ? options_socket : options_file;
}
