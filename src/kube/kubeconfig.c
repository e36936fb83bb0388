/* SPDX-License-Identifier: Apache-2.0 */
#include "kubeconfig.h"
#include "base/error.h"

#include <arpa/inet.h>
#include <libgen.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <yaml.h>

#include "base/fileio.h"
#include "base/parse.h"

struct kube_config *kube_config_free(struct kube_config *c)
{
        if (!c)
                return NULL;
        free(c->source);
        free(c->server);
        free(c->host);
        free(c->tls_server_name);
        free(c->ca_pem);
        free(c->client_cert_pem);
        if (c->client_key_pem) {
                explicit_bzero(c->client_key_pem, strlen(c->client_key_pem));
                free(c->client_key_pem);
        }
        if (c->token) {
                explicit_bzero(c->token, strlen(c->token));
                free(c->token);
        }
        free(c->token_file);
        free(c->namespace);
        free(c);
        return NULL;
}

int kube_parse_server_url(const char *url, char **ret_host, uint16_t *ret_port)
{
        if (!url || !startswith(url, "https://"))
                return -EINVAL;
        const char *h = url + strlen("https://");
        const char *end = h + strcspn(h, "/?#");
        if (*end == '?' || *end == '#' || (*end == '/' && end[1] != '\0'))
                return -EINVAL; /* a path prefix (a proxy) is not supported */
        _cleanup_free_ char *hostport = strndup(h, (size_t)(end - h));
        if (!hostport)
                return -ENOMEM;
        if (strchr(hostport, '@'))
                return -EINVAL;
        char *host = hostport, *port = NULL;
        if (host[0] == '[') {
                char *close = strchr(host, ']');
                if (!close || (close[1] != '\0' && close[1] != ':'))
                        return -EINVAL;
                *close = '\0';
                host++;
                unsigned char buf[sizeof(struct in6_addr)];
                if (inet_pton(AF_INET6, host, buf) != 1)
                        return -EINVAL;
                if (close[1] == ':')
                        port = close + 2;
        } else {
                char *colon = strchr(host, ':');
                if (colon) {
                        *colon = '\0';
                        port = colon + 1;
                }
        }
        if (isempty(host) ||
            strspn(host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:") !=
                    strlen(host))
                return -EINVAL;
        uint64_t p = 443;
        if (port && (parse_uint64(port, &p) < 0 || p == 0 || p > 65535))
                return -EINVAL;
        char *hc = strdup(host);
        if (!hc)
                return -ENOMEM;
        *ret_host = hc;
        *ret_port = (uint16_t)p;
        return 0;
}

/* "host:port" joined for a URL ([v6]:port). */
static char *server_url(const char *host, uint16_t port)
{
        char *s = NULL;
        bool v6 = strchr(host, ':') != NULL;
        if (asprintf(&s, "https://%s%s%s:%u", v6 ? "[" : "", host, v6 ? "]" : "", port) < 0)
                return NULL;
        return s;
}

static int read_text_file(const char *path, char **ret)
{
        return read_full_file(path, KUBE_MAX_CONFIG_FILE, ret, NULL);
}

/* ---- in-cluster ------------------------------------------------------------------------------------- */

int kube_config_in_cluster(const char *sa_dir, struct kube_config **ret, char **ret_error)
{
        const char *host = getenv("KUBERNETES_SERVICE_HOST"), *port = getenv("KUBERNETES_SERVICE_PORT");
        if (isempty(host) || isempty(port))
                return error_set(
                        ret_error, -ENOENT,
                        "KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set (not running in a "
                        "pod); give a kubeconfig");
        if (!sa_dir)
                sa_dir = KUBE_SERVICE_ACCOUNT_DIR;
        uint64_t p;
        if (parse_uint64(port, &p) < 0 || p == 0 || p > 65535)
                return error_set(ret_error, -EINVAL, "KUBERNETES_SERVICE_PORT=%s is not a port number",
                                 port);
        unsigned char buf[sizeof(struct in6_addr)];
        if (strspn(host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") !=
                    strlen(host) &&
            inet_pton(AF_INET6, host, buf) != 1)
                return error_set(ret_error, -EINVAL,
                                 "KUBERNETES_SERVICE_HOST=%s is not a host name or address", host);
        _cleanup_(kube_config_freep) struct kube_config *c = new0(struct kube_config, 1);
        if (!c)
                return -ENOMEM;
        c->port = (uint16_t)p;
        c->source = strdup("in-cluster service account");
        c->host = strdup(host);
        c->server = server_url(host, c->port);
        _cleanup_free_ char *ca = NULL, *ns = NULL;
        c->token_file = path_join_root(sa_dir, "/token");
        ca = path_join_root(sa_dir, "/ca.crt");
        ns = path_join_root(sa_dir, "/namespace");
        if (!c->source || !c->host || !c->server || !c->token_file || !ca || !ns)
                return -ENOMEM; /* cppcheck-suppress memleak ; c is freed by its cleanup attribute */
        int r = read_text_file(ca, &c->ca_pem);
        if (r < 0)
                return error_set(ret_error, r, "Failed to read the service account CA %s: %s", ca,
                                 strerror(-r));
        if (access(c->token_file, R_OK) < 0)
                return error_set(ret_error, negative_errno(),
                                 "Failed to read the service account token %s: %m", c->token_file);
        r = read_one_line_file(ns, &c->namespace);
        if (r < 0 && r != -ENOENT)
                return error_set(ret_error, r, "Failed to read the service account namespace %s: %s", ns,
                                 strerror(-r));
        if (isempty(c->namespace)) {
                free(c->namespace);
                c->namespace = strdup("default");
                if (!c->namespace)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(c);
        return 0;
}

/* ---- kubeconfig ------------------------------------------------------------------------------------- */

struct doc {
        yaml_document_t doc;
        const char *path;
        char *dir;
        char **ret_error;
};

static yaml_node_t *map_get(struct doc *d, yaml_node_t *n, const char *key)
{
        if (!n || n->type != YAML_MAPPING_NODE)
                return NULL;
        for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
                yaml_node_t *k = yaml_document_get_node(&d->doc, p->key);
                if (k && k->type == YAML_SCALAR_NODE && streq((const char *)k->data.scalar.value, key))
                        return yaml_document_get_node(&d->doc, p->value);
        }
        return NULL;
}

/* The string at key, NULL when absent or null; -EINVAL (with the error set) when not a scalar. */
static int get_str(struct doc *d, yaml_node_t *n, const char *where, const char *key, const char **ret)
{
        yaml_node_t *v = map_get(d, n, key);
        *ret = NULL;
        if (!v)
                return 0;
        if (v->type != YAML_SCALAR_NODE)
                return error_set(d->ret_error, -EINVAL, "%s: %s.%s is not a string", d->path, where, key);
        const char *s = (const char *)v->data.scalar.value;
        if (v->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && (streq(s, "null") || streq(s, "~") || !*s))
                return 0;
        *ret = s;
        return 0;
}

/* The entry of a named list (clusters, contexts, users) called name; its inner mapping (cluster, ...). */
static int find_named(struct doc *d, yaml_node_t *root, const char *list, const char *inner,
                      const char *name, yaml_node_t **ret)
{
        yaml_node_t *l = map_get(d, root, list);
        if (l && l->type == YAML_SEQUENCE_NODE)
                for (yaml_node_item_t *i = l->data.sequence.items.start; i < l->data.sequence.items.top;
                     i++) {
                        yaml_node_t *e = yaml_document_get_node(&d->doc, *i);
                        const char *n;
                        if (get_str(d, e, list, "name", &n) < 0)
                                return -EINVAL;
                        if (n && streq(n, name)) {
                                yaml_node_t *in = map_get(d, e, inner);
                                if (!in || in->type != YAML_MAPPING_NODE)
                                        return error_set(d->ret_error, -EINVAL,
                                                         "%s: %s entry \"%s\" has no %s mapping", d->path,
                                                         list, name, inner);
                                *ret = in;
                                return 0;
                        }
                }
        return error_set(d->ret_error, -ENOENT, "%s: %s has no entry named \"%s\"", d->path, list, name);
}

static int base64_decode(const char *in, char **ret)
{
        size_t len = strlen(in);
        _cleanup_free_ unsigned char *out = malloc(len / 4 * 3 + 4);
        if (!out)
                return -ENOMEM;
        EVP_ENCODE_CTX *ctx = EVP_ENCODE_CTX_new();
        if (!ctx)
                return -ENOMEM; /* cppcheck-suppress memleak ; out is freed by its cleanup attribute */
        int n = 0, m = 0;
        EVP_DecodeInit(ctx);
        int ok = len <= INT32_MAX &&
                 EVP_DecodeUpdate(ctx, out, &n, (const unsigned char *)in, (int)len) >= 0 &&
                 EVP_DecodeFinal(ctx, out + n, &m) == 1;
        EVP_ENCODE_CTX_free(ctx);
        if (!ok)
                return -EINVAL;
        out[n + m] = '\0';
        if (strlen((char *)out) != (size_t)(n + m))
                return -EINVAL; /* NUL bytes: not PEM text */
        *ret = (char *)TAKE_PTR(out);
        return 0;
}

/* key-data (base64 inline) or key (a file path, relative to the kubeconfig): the PEM text, or NULL. */
static int get_pem(struct doc *d, yaml_node_t *n, const char *where, const char *file_key,
                   const char *data_key, char **ret)
{
        const char *data, *file;
        if (get_str(d, n, where, data_key, &data) < 0 || get_str(d, n, where, file_key, &file) < 0)
                return -EINVAL;
        _cleanup_free_ char *pem = NULL;
        if (data) {
                if (base64_decode(data, &pem) < 0)
                        return error_set(d->ret_error, -EINVAL, "%s: %s.%s is not valid base64", d->path,
                                         where, data_key);
        } else if (file) {
                _cleanup_free_ char *p = file[0] == '/' ? strdup(file) : NULL;
                if (file[0] != '/' && asprintf(&p, "%s/%s", d->dir, file) < 0)
                        p = NULL;
                if (!p)
                        return -ENOMEM;
                int r = read_text_file(p, &pem);
                if (r < 0)
                        return error_set(d->ret_error, r, "%s: failed to read %s.%s %s: %s", d->path, where,
                                         file_key, p, strerror(-r));
        } else {
                *ret = NULL;
                return 0;
        }
        if (!strstr(pem, "-----BEGIN "))
                return error_set(d->ret_error, -EINVAL, "%s: %s.%s holds no PEM data", d->path, where,
                                 data ? data_key : file_key);
        *ret = TAKE_PTR(pem);
        return 0;
}

static int dup_or_null(const char *s, char **ret)
{
        *ret = NULL;
        if (!s)
                return 0;
        *ret = strdup(s);
        return *ret ? 0 : -ENOMEM;
}

/* The server, its CA and TLS name. */
static int parse_cluster(struct doc *d, yaml_node_t *cluster, const char *cluster_name,
                         struct kube_config *c)
{
        const char *s;
        int r;
        if (get_str(d, cluster, "cluster", "server", &s) < 0)
                return -EINVAL;
        if (!s)
                return error_set(d->ret_error, -EINVAL, "%s: cluster \"%s\" has no server", d->path,
                                 cluster_name);
        r = kube_parse_server_url(s, &c->host, &c->port);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return error_set(d->ret_error, -EINVAL,
                                 "%s: cluster \"%s\": server \"%s\" is not an https://host[:port] URL",
                                 d->path, cluster_name, s);
        c->server = server_url(c->host, c->port);
        const char *insecure;
        if (get_str(d, cluster, "cluster", "insecure-skip-tls-verify", &insecure) < 0)
                return -EINVAL;
        bool b = false;
        if (insecure && (parse_bool(insecure, &b) < 0 || b))
                return error_set(
                        d->ret_error, -EPERM,
                        "%s: cluster \"%s\" sets insecure-skip-tls-verify, which nvdp refuses: give "
                        "certificate-authority or certificate-authority-data",
                        d->path, cluster_name);
        if (get_str(d, cluster, "cluster", "tls-server-name", &s) < 0)
                return -EINVAL;
        if (dup_or_null(s, &c->tls_server_name) < 0)
                return -ENOMEM;
        r = get_pem(d, cluster, "cluster", "certificate-authority", "certificate-authority-data",
                    &c->ca_pem);
        if (r < 0)
                return r;
        if (!c->ca_pem)
                return error_set(d->ret_error, -EINVAL,
                                 "%s: cluster \"%s\" has neither certificate-authority nor "
                                 "certificate-authority-data (the server's certificate must be verified)",
                                 d->path, cluster_name);

        return 0;
}

/* Client certificate, token or token file; no exec or auth-provider plugins. */
static int parse_user(struct doc *d, yaml_node_t *user, const char *user_name, struct kube_config *c)
{
        const char *s;
        int r;
        if (map_get(d, user, "exec") || map_get(d, user, "auth-provider"))
                return error_set(d->ret_error, -EOPNOTSUPP,
                                 "%s: user \"%s\" uses an exec or auth-provider plugin, which nvdp does not "
                                 "run: give a token, tokenFile or client certificate",
                                 d->path, user_name);
        r = get_pem(d, user, "user", "client-certificate", "client-certificate-data", &c->client_cert_pem);
        if (r < 0)
                return r;
        r = get_pem(d, user, "user", "client-key", "client-key-data", &c->client_key_pem);
        if (r < 0)
                return r;
        if (!c->client_cert_pem != !c->client_key_pem)
                return error_set(d->ret_error, -EINVAL, "%s: user \"%s\" has a client %s but no client %s",
                                 d->path, user_name, c->client_cert_pem ? "certificate" : "key",
                                 c->client_cert_pem ? "key" : "certificate");
        if (get_str(d, user, "user", "token", &s) < 0)
                return -EINVAL;
        if (dup_or_null(s, &c->token) < 0)
                return -ENOMEM;
        if (get_str(d, user, "user", "tokenFile", &s) < 0)
                return -EINVAL;
        if (s && !c->token) {
                if (s[0] == '/')
                        c->token_file = strdup(s);
                else if (asprintf(&c->token_file, "%s/%s", d->dir, s) < 0)
                        c->token_file = NULL;
                if (!c->token_file)
                        return -ENOMEM;
        }
        return 0;
}

static int parse_kubeconfig(struct doc *d, struct kube_config *c)
{
        yaml_node_t *root = yaml_document_get_root_node(&d->doc);
        if (!root || root->type != YAML_MAPPING_NODE)
                return error_set(d->ret_error, -EINVAL, "%s: not a kubeconfig (no top-level mapping)",
                                 d->path);
        const char *current, *cluster_name, *user_name, *ns;
        if (get_str(d, root, "kubeconfig", "current-context", &current) < 0)
                return -EINVAL;
        if (!current)
                return error_set(d->ret_error, -EINVAL, "%s: current-context is not set", d->path);
        yaml_node_t *ctx, *cluster, *user = NULL;
        int r = find_named(d, root, "contexts", "context", current, &ctx);
        if (r < 0)
                return r;
        if (get_str(d, ctx, "context", "cluster", &cluster_name) < 0 ||
            get_str(d, ctx, "context", "user", &user_name) < 0 ||
            get_str(d, ctx, "context", "namespace", &ns) < 0)
                return -EINVAL;
        if (!cluster_name)
                return error_set(d->ret_error, -EINVAL, "%s: context \"%s\" names no cluster", d->path,
                                 current);
        r = find_named(d, root, "clusters", "cluster", cluster_name, &cluster);
        if (r < 0)
                return r;
        if (user_name) {
                r = find_named(d, root, "users", "user", user_name, &user);
                if (r < 0)
                        return r;
        }

        if ((r = parse_cluster(d, cluster, cluster_name, c)) < 0 ||
            (user && (r = parse_user(d, user, user_name, c)) < 0))
                return r;
        c->namespace = strdup(ns ? ns : "default");
        c->source = strdup(d->path);
        if (!c->namespace || !c->source || !c->server)
                return -ENOMEM;
        return 0;
}

int kube_config_from_file(const char *path, struct kube_config **ret, char **ret_error)
{
        _cleanup_free_ char *text = NULL;
        size_t size;
        int r = read_full_file(path, KUBE_MAX_CONFIG_FILE, &text, &size);
        if (r < 0)
                return error_set(ret_error, r, "Failed to read kubeconfig %s: %s", path, strerror(-r));
        _cleanup_free_ char *pathcopy = strdup(path);
        if (!pathcopy)
                return -ENOMEM;
        struct doc d = { .path = path, .ret_error = ret_error };
        d.dir = strdup(dirname(pathcopy));
        if (!d.dir)
                return -ENOMEM;
        yaml_parser_t parser;
        if (!yaml_parser_initialize(&parser)) {
                free(d.dir);
                return -ENOMEM;
        }
        yaml_parser_set_input_string(&parser, (const unsigned char *)text, size);
        if (!yaml_parser_load(&parser, &d.doc)) {
                r = error_set(ret_error, -EINVAL, "%s:%zu: %s", path, parser.problem_mark.line + 1,
                              parser.problem ? parser.problem : "YAML syntax error");
                yaml_parser_delete(&parser);
                free(d.dir);
                return r;
        }
        yaml_parser_delete(&parser);
        _cleanup_(kube_config_freep) struct kube_config *c = new0(struct kube_config, 1);
        r = c ? parse_kubeconfig(&d, c) : -ENOMEM;
        yaml_document_delete(&d.doc);
        free(d.dir);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(c);
        return 0;
}
