/* SPDX-License-Identifier: Apache-2.0 */
/* The OCI hooks of nvdp's CDI spec. NVIDIA's update-ldcache mounts the host's ldconfig into the
 * container and runs it there; that needs a host ldconfig matching the image's conventions and a
 * private mount namespace. We write the cache instead: glibc's format is stable since 2.2, the
 * library's SONAME is in its ELF header, and the order the loader's binary search needs is known
 * (ldcache.c), so nothing from the host runs inside the container. */
#include "cdi/hook.h"

#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>

#include "base/error.h"
#include "base/fileio.h"
#include "base/json.h"
#include "base/strv.h"
#include "cdi/cdi-internal.h"
#include "cdi/elf-soname.h"
#include "cdi/ldcache.h"

#define CONFIG_JSON_MAX (16u * 1024 * 1024)
#define FOLDER_MAX      65536 /* entries read from one library folder */
#define DROP_IN         "/etc/ld.so.conf.d/00-nvdp-cdi.conf"

/* The OCI state and config.json are small; nesting deeper than this is no OCI document. */
#define JSON_DEPTH_MAX 64

int cdi_hook_container_root(const char *state, size_t size, char **ret, char **ret_error)
{
        _cleanup_json_ json_object *s = NULL, *c = NULL;
        _cleanup_free_ char *config_path = NULL, *spec_text = NULL;
        size_t config_size;
        if (json_parse(state, size, CONFIG_JSON_MAX, JSON_DEPTH_MAX, &s) < 0)
                return error_set(ret_error, -EINVAL, "the container state on stdin is not JSON");
        const char *bundle = json_text(json_get(s, "bundle"));
        if (isempty(bundle) || bundle[0] != '/')
                return error_set(ret_error, -EINVAL, "the container state has no absolute \"bundle\" path");
        if (asprintf(&config_path, "%s/config.json", bundle) < 0)
                return -ENOMEM;
        int r = read_full_file(config_path, CONFIG_JSON_MAX, &spec_text, &config_size);
        if (r < 0)
                return error_set(ret_error, r, "cannot read the OCI spec %s: %s", config_path, strerror(-r));
        if (json_parse(spec_text, config_size, CONFIG_JSON_MAX, JSON_DEPTH_MAX, &c) < 0)
                return error_set(ret_error, -EINVAL, "the OCI spec %s is not JSON", config_path);
        const char *root = json_text(json_get_path(c, (const char *const[]){ "root", "path", NULL }));
        if (isempty(root))
                return error_set(ret_error, -EINVAL, "the OCI spec %s has no root.path", config_path);
        char *p;
        if (root[0] == '/')
                p = strdup(root);
        else if (asprintf(&p, "%s/%s", bundle, root) < 0)
                p = NULL;
        if (!p)
                return -ENOMEM;
        if (streq(p, "/")) {
                free(p);
                return error_set(ret_error, -EINVAL,
                                 "the container's root is the host's /: refusing to edit it");
        }
        *ret = p;
        return 0;
}

/* Makes dir (a container path) exist as a directory, following symlinks inside root; its canonical
 * path in *ret. */
static int root_mkdir_p(const char *root, const char *dir, char **ret)
{
        _cleanup_free_ char *resolved = strdup("/"), *copy = strdup(dir);
        if (!resolved || !copy)
                return -ENOMEM;
        char *save = NULL;
        for (char *c = strtok_r(copy, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
                _cleanup_free_ char *candidate = NULL, *real = NULL;
                if (asprintf(&candidate, "%s/%s", streq(resolved, "/") ? "" : resolved, c) < 0)
                        return -ENOMEM;
                int r = root_realpath(root, candidate, &real);
                if (r == -ENOENT) {
                        _cleanup_free_ char *local = path_join_root(root, candidate);
                        struct stat st;
                        if (!local)
                                return -ENOMEM;
                        if (lstat(local, &st) == 0)
                                return -ENOENT; /* a dangling symlink: not ours to repair */
                        if (mkdir(local, 0755) < 0 && errno != EEXIST)
                                return negative_errno();
                        real = TAKE_PTR(candidate);
                } else if (r < 0)
                        return r;
                _cleanup_free_ char *local = path_join_root(root, real);
                struct stat st;
                if (!local)
                        return -ENOMEM;
                if (stat(local, &st) < 0)
                        return negative_errno();
                if (!S_ISDIR(st.st_mode))
                        return -ENOTDIR;
                free(resolved);
                resolved = TAKE_PTR(real);
        }
        *ret = TAKE_PTR(resolved);
        return 0;
}

/* The container path path made ready for a new entry: its parent made to exist (following symlinks
 * inside root), the entry itself not followed. *ret_local is where it is seen here. */
static int root_prepare(const char *root, const char *path, char **ret_local)
{
        _cleanup_free_ char *parent = path_dir_name(path), *real_parent = NULL, *full = NULL;
        if (!parent)
                return -ENOMEM;
        int r = root_mkdir_p(root, parent, &real_parent);
        if (r < 0)
                return r;
        if (asprintf(&full, "%s/%s", streq(real_parent, "/") ? "" : real_parent, path_base_name(path)) < 0 ||
            !(*ret_local = path_join_root(root, full)))
                return -ENOMEM;
        return 0;
}

/* Creates (or replaces) link in the container as a symlink to target. */
static int make_link(const char *root, const char *target, const char *link)
{
        _cleanup_free_ char *local = NULL;
        int r = root_prepare(root, link, &local);
        if (r < 0)
                return r;
        char current[PATH_MAX];
        ssize_t k = readlink(local, current, sizeof current - 1);
        if (k >= 0) {
                current[k] = '\0';
                if (streq(current, target))
                        return 0;
        }
        if (unlink(local) < 0 && errno != ENOENT)
                return negative_errno();
        if (symlink(target, local) < 0)
                return negative_errno();
        return 0;
}

int cdi_hook_create_symlinks(const char *root, char *const *links, char **ret_error)
{
        STRV_FOREACH (l, links) {
                const char *sep = strstr(*l, "::");
                if (!sep || sep == *l || !sep[2] || sep[2] != '/' || strstr(sep + 2, "::"))
                        return error_set(ret_error, -EINVAL,
                                         "invalid link \"%s\": expected TARGET::/ABSOLUTE/LINK", *l);
                _cleanup_free_ char *target = strndup(*l, (size_t)(sep - *l));
                if (!target)
                        return -ENOMEM;
                int r = make_link(root, target, sep + 2);
                if (r < 0)
                        return error_set(ret_error, r, "cannot create the link %s -> %s in %s: %s", sep + 2,
                                         target, root, strerror(-r));
        }
        return 0;
}

/* ---- update-ldcache ---- */

struct cache_builder {
        const char *root;
        struct ldcache_entry *e;
        size_t n;
};

static void cache_builder_done(struct cache_builder *b)
{
        for (size_t i = 0; i < b->n; i++) {
                free(b->e[i].name);
                free(b->e[i].path);
        }
        free(b->e);
}

static int cache_add(struct cache_builder *b, int32_t flags, const char *name, const char *path)
{
        for (size_t i = 0; i < b->n; i++)
                if (streq(b->e[i].name, name) && streq(b->e[i].path, path))
                        return 0;
        struct ldcache_entry *n = realloc(b->e, sizeof(*n) * (b->n + 1));
        if (!n)
                return -ENOMEM;
        b->e = n;
        n = &b->e[b->n];
        *n = (struct ldcache_entry){ .flags = flags, .name = strdup(name), .path = strdup(path) };
        b->n++;
        if (!n->name || !n->path)
                return -ENOMEM;
        return 0;
}

/* ldconfig's idea of a library file name: "lib<x>.so" or "lib<x>.so.<anything>". */
static bool library_name(const char *n)
{
        if (!startswith(n, "lib") || strlen(n) < 7)
                return false;
        const char *so = strstr(n + 4, ".so");
        while (so && so[3] != '\0' && so[3] != '.')
                so = strstr(so + 1, ".so");
        return so != NULL;
}

static bool exists_no_follow(const char *root, const char *path)
{
        _cleanup_free_ char *local = path_join_root(root, path);
        struct stat st;
        return local && lstat(local, &st) == 0;
}

/* The libraries of one folder: each under its SONAME (creating the SONAME link when missing, as
 * ldconfig does), and "lib<x>.so" development links under their own name. */
static int folder_add(struct cache_builder *b, const char *folder)
{
        _cleanup_free_ char *dir = NULL, *local = NULL;
        if (folder[0] != '/')
                return -EINVAL;
        if (root_realpath(b->root, folder, &dir) < 0)
                return 0; /* a folder the spec names but the container lacks: nothing to add */
        if (!(local = path_join_root(b->root, dir)))
                return -ENOMEM;
        _cleanup_strv_free_ char **names = NULL;
        int r = dir_list(local, library_name, FOLDER_MAX, &names);
        if (r == -ENOENT || r == -ENOTDIR)
                return 0;
        if (r < 0)
                return r;

        const char *sep = streq(dir, "/") ? "" : "/";
        const char *fsep = streq(folder, "/") ? "" : "/";
        STRV_FOREACH (n, names) {
                _cleanup_free_ char *path = NULL, *path_local = NULL, *file = NULL, *file_local = NULL,
                                    *soname = NULL, *entry = NULL, *key_path = NULL;
                struct stat st;
                if (asprintf(&path, "%s%s%s", dir, sep, *n) < 0 ||
                    !(path_local = path_join_root(b->root, path)))
                        return -ENOMEM;
                if (lstat(path_local, &st) < 0 || root_realpath(b->root, path, &file) < 0 ||
                    !(file_local = path_join_root(b->root, file)))
                        continue;
                bool is_link = S_ISLNK(st.st_mode);
                _cleanup_close_ int fd = open(file_local, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
                if (fd < 0 || elf_read_soname(fd, &soname) < 0)
                        continue; /* not a library of this machine (32-bit, a linker script, ...) */
                const char *key = soname && !strchr(soname, '/') ? soname : *n;
                if (asprintf(&key_path, "%s%s%s", dir, sep, key) < 0)
                        return -ENOMEM;
                if (!streq(key, *n) && !exists_no_follow(b->root, key_path)) {
                        _cleanup_free_ char *key_local = path_join_root(b->root, key_path);
                        if (!key_local)
                                return -ENOMEM;
                        if (symlink(*n, key_local) < 0)
                                return negative_errno();
                }
                if (asprintf(&entry, "%s%s%s", folder, fsep, key) < 0)
                        return -ENOMEM;
                if ((r = cache_add(b, ldcache_native_flags(), key, entry)) < 0)
                        return r;
                if (is_link && !streq(key, *n) && endswith(*n, ".so")) {
                        _cleanup_free_ char *dev = NULL;
                        if (asprintf(&dev, "%s%s%s", folder, fsep, *n) < 0)
                                return -ENOMEM;
                        if ((r = cache_add(b, ldcache_native_flags(), *n, dev)) < 0)
                                return r;
                }
        }
        return 0;
}

/* Writes data to path (a container path whose parent is made to exist) atomically. */
static int root_write(const char *root, const char *path, const void *data, size_t size)
{
        _cleanup_free_ char *local = NULL;
        int r = root_prepare(root, path, &local);
        if (r < 0)
                return r;
        r = write_file_atomic(local, data, size, 0644);
        return r < 0 ? r : 0;
}

/* An image without /etc/ld.so.conf (distroless) gets one that includes the drop-in directory, so an
 * ldconfig run later keeps our folders; an existing one is left alone. */
static int ensure_ld_so_conf(const char *root)
{
        _cleanup_free_ char *local = NULL;
        int r = root_prepare(root, "/etc/ld.so.conf", &local);
        if (r < 0)
                return r;
        _cleanup_close_ int fd = open(local, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd < 0)
                return errno == EEXIST ? 0 : negative_errno();
        static const char line[] = "include /etc/ld.so.conf.d/*.conf\n";
        if (write(fd, line, strlen(line)) != (ssize_t)strlen(line))
                return -EIO;
        return 0;
}

int cdi_hook_update_ldcache(const char *root, char *const *folders, char **ret_error)
{
        _cleanup_(cache_builder_done) struct cache_builder b = { .root = root };
        _cleanup_(ldcache_freep) ldcache *old = NULL;
        _cleanup_free_ char *old_path = NULL, *old_local = NULL, *data = NULL, *conf = NULL;
        size_t size;
        int r;

        STRV_FOREACH (f, folders) {
                if ((*f)[0] != '/')
                        return error_set(ret_error, -EINVAL, "folder \"%s\" is not an absolute path", *f);
                if ((r = folder_add(&b, *f)) < 0)
                        return error_set(ret_error, r, "cannot read the libraries of %s in %s: %s", *f, root,
                                         strerror(-r));
        }
        /* The image's own entries after ours: for a name in both, ours is found first. Entries of
         * glibc-hwcaps subdirectories need the cache's extension section, which is not carried over;
         * their plain counterparts stay. */
        if (root_realpath(root, "/etc/ld.so.cache", &old_path) >= 0 &&
            (old_local = path_join_root(root, old_path)) && ldcache_read(old_local, &old) >= 0)
                for (size_t i = 0; i < old->n_entries; i++)
                        if (old->entries[i].hwcap == 0 &&
                            (r = cache_add(&b, old->entries[i].flags, old->entries[i].name,
                                           old->entries[i].path)) < 0)
                                return r;
        if (b.n == 0)
                return 0;

        void *cache;
        if ((r = ldcache_format(b.e, b.n, &cache, &size)) < 0)
                return r;
        data = cache;
        if ((r = root_write(root, "/etc/ld.so.cache", data, size)) < 0)
                return error_set(ret_error, r, "cannot write /etc/ld.so.cache in %s: %s", root,
                                 strerror(-r));

        _cleanup_free_ char *list = strv_join((char **)folders, "\n");
        if (!list || asprintf(&conf, "# the folders of the NVIDIA driver's libraries (nvdp cdi-hook)\n%s\n",
                              list) < 0)
                return -ENOMEM;
        if ((r = root_write(root, DROP_IN, conf, strlen(conf))) < 0 || (r = ensure_ld_so_conf(root)) < 0)
                return error_set(ret_error, r, "cannot write the loader configuration in %s: %s", root,
                                 strerror(-r));
        return 0;
}

int cdi_hook_chmod(const char *root, char *const *paths, mode_t mode, char **ret_error)
{
        STRV_FOREACH (p, paths) {
                _cleanup_free_ char *real = NULL, *local = NULL;
                struct stat st;
                if ((*p)[0] != '/')
                        return error_set(ret_error, -EINVAL, "path \"%s\" is not an absolute path", *p);
                if (root_realpath(root, *p, &real) < 0)
                        continue; /* missing: nothing to change */
                if (!(local = path_join_root(root, real)))
                        return -ENOMEM;
                if (stat(local, &st) < 0 || (st.st_mode & 07777) == mode)
                        continue;
                if (chmod(local, mode) < 0 && errno != EPERM && errno != EACCES)
                        return error_set(ret_error, negative_errno(),
                                         "cannot change the mode of %s in %s: %m", *p, root);
        }
        return 0;
}
