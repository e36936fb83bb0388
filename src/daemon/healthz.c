/* SPDX-License-Identifier: Apache-2.0 */
#include "daemon/healthz.h"

#include "base/strv.h"

struct healthz_server {
        const plugin *plugin;
        struct http_route route;
        http_server *server;
};

int healthz_reply(const plugin *p, struct http_reply *reply)
{
        const plan *pl = plugin_plan(p);
        _cleanup_strv_free_ char **missing = new0(char *, 1);
        if (!missing)
                return -ENOMEM;
        for (size_t i = 0; plugin_registers(p) && pl && i < pl->n_resources; i++)
                if (!plugin_resource_registered(p, i) && !plugin_resource_held(p, i) &&
                    strv_extend(&missing, pl->resources[i].name) < 0)
                        return -ENOMEM;
        if (!missing[0]) {
                reply->body = strdup("ok\n");
                if (!reply->body)
                        return -ENOMEM;
        } else {
                _cleanup_free_ char *list = strv_join(missing, ", ");
                if (!list || asprintf(&reply->body, "not registered with the kubelet: %s\n", list) < 0) {
                        reply->body = NULL;
                        return -ENOMEM;
                }
                reply->status = 503;
        }
        reply->size = strlen(reply->body);
        return 0;
}

static int serve(struct http_reply *reply, void *userdata)
{
        const healthz_server *h = userdata;
        return healthz_reply(h->plugin, reply);
}

int healthz_server_new(loop *l, const plugin *p, const char *address, healthz_server **ret, char **ret_error)
{
        _cleanup_(healthz_server_freep) healthz_server *h = new0(healthz_server, 1);
        if (!h)
                return -ENOMEM;
        h->plugin = p;
        h->route = (struct http_route){ "/healthz", serve, h };
        int r = http_server_new(l, &h->route, 1, &h->server);
        if (r < 0)
                return r;
        r = http_server_listen(h->server, address, ret_error);
        if (r < 0)
                return r;
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

int healthz_server_port(const healthz_server *h)
{
        return h ? http_server_port(h->server) : 0;
}
