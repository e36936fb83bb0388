/* SPDX-License-Identifier: Apache-2.0 */
#include "daemon/healthz.h"

#include "base/log.h"
#include "base/strv.h"

struct healthz_server {
        struct http_route route;
        http_server *server;
};

/* 200 "ok", or 503 "<what>: <the list, comma-separated>", one line: `nvdp healthz` prints the first line
 * of the answer, and a reason may hold a child's multi-line output. */
static int reply_list(char **missing, const char *what, struct http_reply *reply)
{
        if (!missing[0]) {
                reply->body = strdup("ok\n");
                if (!reply->body)
                        return -ENOMEM;
        } else {
                _cleanup_free_ char *list = strv_join(missing, ", ");
                if (!list || asprintf(&reply->body, "%s: %s\n", what, list) < 0) {
                        reply->body = NULL;
                        return -ENOMEM;
                }
                for (char *c = reply->body; c[0] && c[1]; c++)
                        if (*c == '\n')
                                *c = ' ';
                reply->status = 503;
        }
        reply->size = strlen(reply->body);
        return 0;
}

int healthz_plugin_reply(const plugin *p, struct http_reply *reply)
{
        const plan *pl = plugin_plan(p);
        _cleanup_strv_free_ char **missing = new0(char *, 1);
        if (!missing)
                return -ENOMEM;
        for (size_t i = 0; plugin_registers(p) && pl && i < pl->n_resources; i++)
                if (!plugin_resource_registered(p, i) && !plugin_resource_held(p, i) &&
                    strv_extend(&missing, pl->resources[i].name) < 0)
                        return -ENOMEM;
        return reply_list(missing, "not registered with the kubelet", reply);
}

int healthz_mps_reply(const mps_supervisor *s, struct http_reply *reply)
{
        _cleanup_strv_free_ char **missing = NULL;
        int r = mps_supervisor_not_ready(s, &missing);
        if (r < 0)
                return r;
        return reply_list(missing, "MPS control daemons not ready", reply);
}

int healthz_server_new(loop *l, const char *address, http_handler answer, void *userdata,
                       healthz_server **ret)
{
        if (isempty(address)) {
                *ret = NULL;
                return 0;
        }
        _cleanup_(healthz_server_freep) healthz_server *h = new0(healthz_server, 1);
        _cleanup_free_ char *error = NULL;
        int r = -ENOMEM;
        if (h) {
                h->route = (struct http_route){ "/healthz", answer, userdata };
                r = http_server_new(l, &h->route, 1, &h->server);
        }
        if (r >= 0)
                r = http_server_listen(h->server, address, &error);
        if (r < 0)
                return log_error_errno(r, "--health-address: %s", error ? error : strerror(-r));
        log_info("Serving /healthz on %s (port %d) for probes", address, http_server_port(h->server));
        *ret = TAKE_PTR(h);
        return 0;
}

healthz_server *healthz_server_free(healthz_server *h)
{
        if (!h)
                return NULL;
        http_server_free(h->server);
        free(h);
        return NULL;
}
