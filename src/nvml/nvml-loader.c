/* SPDX-License-Identifier: Apache-2.0 */
#include <dlfcn.h>
#include <stdarg.h>

#include "base/error.h"
#include "base/fileio.h"
#include "nvml/nvml.h"

#define NVML_SONAME "libnvidia-ml.so.1"

/* Library directories under a driver root, in upstream's order. */
static const char *const driver_lib_dirs[] = {
        "/usr/lib64", "/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu",
        "/lib64",     "/lib/x86_64-linux-gnu",     "/lib/aarch64-linux-gnu",
};

static const struct nvml_symbol {
        const char *name;
        size_t offset;
        bool required;
} nvml_symbols[] = {
#define NVML_SYM_REQ_(name, ret, args) { "nvml" #name, offsetof(struct nvml, name), true },
#define NVML_SYM_OPT_(name, ret, args) { "nvml" #name, offsetof(struct nvml, name), false },
        NVML_FUNCTIONS(NVML_SYM_REQ_, NVML_SYM_OPT_)
};

const char *nvml_strerror(const nvml *n, nvmlReturn_t r)
{
        const char *s = n && n->ErrorString ? n->ErrorString(r) : NULL;
        return s ? s : "unknown NVML error";
}

static bool use_driver_root(const char *driver_root)
{
        return !isempty(driver_root) && !streq(driver_root, "/");
}

/* dlopen()s the first candidate that exists. Returns -EOPNOTSUPP when none does, -ELIBBAD when one
 * exists but cannot be loaded (wrong architecture, broken file). */
static int open_library(const char *driver_root, const char *library, void **ret_dl, char **ret_error)
{
        void *dl;

        if (strchr(library, '/')) {
                if (access(library, F_OK) < 0) {
                        (void)error_set(ret_error, 0, "NVML library %s not found.", library);
                        return -EOPNOTSUPP;
                }
                dl = dlopen(library, RTLD_NOW | RTLD_LOCAL);
                if (!dl) {
                        (void)error_set(ret_error, 0, "Failed to load NVML library %s: %s.", library,
                                        dlerror());
                        return -ELIBBAD;
                }
                *ret_dl = dl;
                return 0;
        }

        _cleanup_free_ char *looked = NULL;
        if (use_driver_root(driver_root)) {
                for (size_t i = 0; i < ELEMENTSOF(driver_lib_dirs); i++) {
                        _cleanup_free_ char *dir = path_join_root(driver_root, driver_lib_dirs[i]);
                        _cleanup_free_ char *path = NULL;
                        if (!dir || asprintf(&path, "%s/%s", dir, library) < 0)
                                return -ENOMEM;
                        if (access(path, F_OK) == 0) {
                                dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
                                if (!dl) {
                                        (void)error_set(ret_error, 0, "Failed to load NVML library %s: %s.",
                                                        path, dlerror());
                                        return -ELIBBAD;
                                }
                                *ret_dl = dl;
                                return 0;
                        }
                        char *l = NULL;
                        if (asprintf(&l, "%s%s%s", strempty(looked), looked ? ", " : "", dir) < 0)
                                return -ENOMEM;
                        free(looked);
                        looked = l;
                }
        }

        /* The normal loader path: LD_LIBRARY_PATH, ld.so.cache, default directories. */
        dl = dlopen(library, RTLD_NOW | RTLD_LOCAL);
        if (dl) {
                *ret_dl = dl;
                return 0;
        }
        const char *why = dlerror();
        /* "<library>: cannot open shared object file" means absent. Any other message (also that one
         * about a library it needs, e.g. librt.so.1 missing from an image) is a library that exists
         * but cannot load, and the message names what is wrong. */
        if (why && !(startswith(why, library) && why[strlen(library)] == ':' &&
                     strstr(why, "cannot open shared object file"))) {
                (void)error_set(ret_error, 0, "Failed to load NVML library %s: %s.", library, why);
                return -ELIBBAD;
        }
        const char *ld_path = getenv("LD_LIBRARY_PATH");
        (void)error_set(
                ret_error, 0,
                "NVML library %s not found (is the NVIDIA driver installed?): looked in %s%sthe dynamic "
                "loader's path (LD_LIBRARY_PATH=%s, ld.so.cache, system library directories).",
                library, strempty(looked), looked ? " and " : "", isempty(ld_path) ? "unset" : ld_path);
        return -EOPNOTSUPP;
}

int nvml_load_library(const char *driver_root, const char *library, nvml **ret, char **ret_error)
{
        void *dl = NULL;
        int r;

        r = open_library(driver_root, library, &dl, ret_error);
        if (r < 0)
                return r;

        _cleanup_free_ nvml *n = new0(nvml, 1);
        if (!n) {
                dlclose(dl);
                return -ENOMEM;
        }
        for (size_t i = 0; i < ELEMENTSOF(nvml_symbols); i++) {
                void *f = dlsym(dl, nvml_symbols[i].name);
                if (!f && nvml_symbols[i].required) {
                        (void)error_set(ret_error, 0,
                                        "NVML library %s lacks the required symbol %s (driver too old?).",
                                        library, nvml_symbols[i].name);
                        dlclose(dl);
                        return -ELIBBAD;
                }
                memcpy((char *)n + nvml_symbols[i].offset, &f, sizeof(f));
        }
        n->dl = dl;

        nvmlReturn_t nr = n->Init_v2();
        if (nr != NVML_SUCCESS) {
                (void)error_set(ret_error, 0, "nvmlInit_v2 failed: %s.", nvml_strerror(n, nr));
                dlclose(dl);
                return -ENODEV;
        }
        *ret = TAKE_PTR(n);
        return 0;
}

int nvml_load(const char *driver_root, nvml **ret, char **ret_error)
{
        return nvml_load_library(driver_root, NVML_SONAME, ret, ret_error);
}

nvml *nvml_unload(nvml *n)
{
        if (!n)
                return NULL;
        if (n->Shutdown)
                (void)n->Shutdown();
        if (n->dl)
                dlclose(n->dl);
        free(n);
        return NULL;
}
