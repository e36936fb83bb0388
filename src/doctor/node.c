/* SPDX-License-Identifier: Apache-2.0 */
#include "node.h"

#include "doctor/rootfs.h"

const char *const node_runtime_search_path[] = {
        "/usr/local/nvidia/toolkit",
        "/usr/local/sbin",
        "/usr/local/bin",
        "/usr/sbin",
        "/usr/bin",
        "/sbin",
        "/bin",
        NULL,
};

const char node_runtime_search_path_string[] =
        "/usr/local/nvidia/toolkit:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

const char *node_k3s_service(const char *root)
{
        if (rootfs_exists(root, "/etc/systemd/system/k3s-agent.service") ||
            rootfs_exists(root, "/etc/init.d/k3s-agent"))
                return "k3s-agent";
        return "k3s";
}

char *node_name(const char *root, const char *given)
{
        if (!isempty(given))
                return strdup(given);
        const char *env = getenv("NODE_NAME");
        if (!isempty(env))
                return strdup(env);
        _cleanup_free_ char *h = NULL;
        if (rootfs_read(root, "/etc/hostname", 4096, &h, NULL) >= 0) {
                h[strcspn(h, " \t\r\n")] = '\0';
                if (h[0] != '\0')
                        return TAKE_PTR(h);
        }
        if (isempty(root) || streq(root, "/")) {
                char buf[256] = {};
                if (gethostname(buf, sizeof(buf) - 1) >= 0 && buf[0])
                        return strdup(buf);
        }
        return NULL;
}
