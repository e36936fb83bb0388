/* SPDX-License-Identifier: Apache-2.0 */
/* A small Kubernetes API client: HTTP/2 over TLS (src/rpc h2-client + transport-tls), JSON with json-c.
 * Everything is asynchronous in the one event loop; nothing blocks it after kube_client_new (which reads
 * the configuration files and resolves the server's name once).
 *
 * One connection is shared by every request (HTTP/2 streams) and re-opened on demand after it is lost.
 * TLS is always verified: the CA from the configuration, the server's name or IP against the certificate.
 * Requests are rate limited as client-go's defaults (5 per second, bursts of 10).
 *
 * Errors for a person name the request and server, the HTTP status and the API's own message, e.g.
 * "GET https://10.0.0.1:443/api/v1/nodes/gpu-1: 404 Not Found: nodes \"gpu-1\" not found". */
#pragma once

#include <stdint.h>
#include <time.h>

#include "base/loop.h"
#include "kubeconfig.h"

/* Response bodies (and each line of a watch) larger than this fail the request. */
#define KUBE_MAX_RESPONSE (4u * 1024 * 1024)
/* JSON nesting accepted when parsing responses. */
#define KUBE_MAX_JSON_DEPTH 64
/* Response header list per stream (RFC 7541 size). */
#define KUBE_MAX_HEADER_LIST 65536u
/* Connect plus TLS handshake must finish within this. */
#define KUBE_CONNECT_TIMEOUT (10ULL * 1000 * 1000 * 1000)
/* The component events are reported as. */
#define KUBE_EVENT_COMPONENT "nvidia-device-plugin"

typedef struct kube_client kube_client;
typedef struct kube_call kube_call;

struct kube_client_options {
        const char *service_account_dir; /* NULL: KUBE_SERVICE_ACCOUNT_DIR (tests point it elsewhere) */
        unsigned qps, burst;             /* 0: KUBE_DEFAULT_QPS / KUBE_DEFAULT_BURST */
};

/* From a kubeconfig file when kubeconfig is given; else in-cluster when KUBERNETES_SERVICE_HOST is set;
 * else $KUBECONFIG. On failure *ret_error (when not NULL) gets a sentence naming the file, key or variable.
 */
int kube_client_new_from_env(loop *l, const char *kubeconfig, kube_client **ret, char **ret_error);
int kube_client_new_from_env_with(loop *l, const char *kubeconfig, const struct kube_client_options *o,
                                  kube_client **ret, char **ret_error);
/* From a parsed configuration (copied what is needed; c may be freed afterwards). */
int kube_client_new(loop *l, const struct kube_config *c, const struct kube_client_options *o,
                    kube_client **ret, char **ret_error);
/* Cancels every request and watch (no callbacks), closes the connection. Accepts NULL. */
kube_client *kube_client_free(kube_client *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(kube_client *, kube_client_free);
loop *kube_client_loop(const kube_client *c);

/* status: the HTTP status (2xx success; error set otherwise), or a -errno when no response came
 * (-ETIMEDOUT, -ECONNREFUSED, -EKEYREJECTED for a certificate that failed verification, -ECONNRESET,
 * -EMSGSIZE for a body over KUBE_MAX_RESPONSE), with error always set then. body is NUL-terminated (size
 * excludes the NUL), also for error statuses. The call is freed when this returns. */
typedef void (*kube_response_fn)(int status, const char *body, size_t size, const char *error,
                                 void *userdata);

/* method "GET", "POST", "PATCH", ...; path starts with "/"; content_type and body may be NULL. timeout_nsec
 * 0: none. The callback never runs inside kube_request. *ret (may be NULL) is for kube_call_cancel. */
int kube_request(kube_client *c, const char *method, const char *path, const char *content_type,
                 const char *body, uint64_t timeout_nsec, kube_response_fn cb, void *userdata,
                 kube_call **ret);
/* No callback after this. Accepts NULL. Safe from inside the call's own on_line (and a no-op inside its
 * final callback, after which it is freed anyway). */
void kube_call_cancel(kube_call *call);

/* Streaming GET (watches): each complete line of a 2xx body goes to on_line (without the newline; a line
 * over KUBE_MAX_RESPONSE ends the call with -EMSGSIZE), then done runs once as for kube_request (body then
 * holds a non-2xx response, or is empty). on_line returning <0 ends the call with that status. */
typedef int (*kube_line_fn)(const char *line, size_t size, void *userdata);
int kube_request_stream(kube_client *c, const char *path, kube_line_fn on_line, kube_response_fn done,
                        void *userdata, kube_call **ret);

/* ---- helpers ---------------------------------------------------------------------------------------- */

/* Kubernetes object names we put in paths: DNS subdomains (RFC 1123, at most 253 characters). */
bool kube_name_valid(const char *name);

/* GET /api/v1/nodes/<name>. */
int kube_get_node(kube_client *c, const char *name, uint64_t timeout_nsec, kube_response_fn cb,
                  void *userdata);

/* The one Node merge patch: sets labels_set ("key=value" each), removes labels_remove (keys) and, when
 * annotations_set is not NULL, sets those annotations:
 * {"metadata":{"labels":{"key":"value","gone":null},"annotations":{"a":"b"}}}. -EINVAL for an entry
 * without '=' or an empty key. */
int kube_node_patch_body(char *const *labels_set, char *const *labels_remove, char *const *annotations_set,
                         char **ret);
/* PATCH /api/v1/nodes/<name> with application/merge-patch+json and the body above. */
int kube_patch_node(kube_client *c, const char *name, char *const *labels_set, char *const *labels_remove,
                    char *const *annotations_set, uint64_t timeout_nsec, kube_response_fn cb,
                    void *userdata);

struct kube_event {
        const char *namespace; /* NULL: "default", where the API server wants events about a Node */
        const char *node;      /* the involved Node */
        const char *type;      /* "Normal" or "Warning" */
        const char *reason;    /* CamelCase, e.g. "DeviceUnhealthy" */
        const char *message;
        const char *component; /* NULL: KUBE_EVENT_COMPONENT */
        struct timespec time;  /* CLOCK_REALTIME: names the event and sets first/lastTimestamp */
        unsigned count;        /* 0 counts as 1 */
};
/* The core/v1 Event as JSON; the name is "<node>.<time in ns, hex>" as client-go's recorder makes it. */
int kube_event_body(const struct kube_event *e, const char *default_namespace, char **ret);
/* POST /api/v1/namespaces/<ns>/events. *ret (may be NULL) is for kube_call_cancel. */
int kube_create_event(kube_client *c, const struct kube_event *e, uint64_t timeout_nsec, kube_response_fn cb,
                      void *userdata, kube_call **ret);

/* The "message" of a Kubernetes Status object, NULL when body is not one. */
char *kube_status_message(const char *body, size_t size);
/* metadata.labels of an object as a sorted strv of "key=value" (empty, not NULL, for no labels). */
struct json_object;
int kube_object_labels(struct json_object *obj, char ***ret);
/* Parses JSON with the depth and size limits above. -EINVAL for bad JSON. */
int kube_json_parse(const char *text, size_t size, struct json_object **ret);

/* ---- what a list and a watch of one Node say (pure; kube-json.c) ------------------------------------- */

/* A NodeList body: its resourceVersion (NULL when absent, or not made of what resourceVersions are made
 * of: it goes into a URL) and the labels of the node called name (sorted "key=value"; NULL when the list
 * does not hold it). -EPROTO with a sentence for a body that is not a NodeList. */
int kube_node_list_parse(const char *body, size_t size, const char *name, char **ret_rv, char ***ret_labels,
                         char **ret_error);

enum kube_watch_type {
        KUBE_WATCH_ADDED,
        KUBE_WATCH_MODIFIED,
        KUBE_WATCH_DELETED,
        KUBE_WATCH_BOOKMARK,
        KUBE_WATCH_ERROR
};
struct kube_watch_event {
        enum kube_watch_type type;
        char *resource_version; /* of the object; NULL as for kube_node_list_parse */
        char **labels;          /* ADDED and MODIFIED: the object's labels, sorted "key=value" */
        char *message;          /* ERROR: the Status message, NULL when it has none */
};
/* One line of a watch stream, {"type":"ADDED|MODIFIED|DELETED|BOOKMARK|ERROR","object":{...}}. -EPROTO
 * with a sentence when it is not one (an unknown type included). */
int kube_watch_event_parse(const char *line, size_t size, struct kube_watch_event *ret, char **ret_error);
void kube_watch_event_done(struct kube_watch_event *e);

/* The line splitting of a streamed body: every complete line of buf[0, *len) goes to on_line (in place,
 * NUL-terminated, without its newline; empty lines skipped), and what follows the last newline moves to
 * the front (*len becomes its length). Stops at the first on_line that returns < 0, which it returns. */
typedef int (*kube_split_fn)(char *line, size_t size, void *userdata);
int kube_lines_split(char *buf, size_t *len, kube_split_fn on_line, void *userdata);

/* ---- NodeFeature (Node Feature Discovery's nfd.k8s-sigs.io/v1alpha1) ------------------------------------
 */

#define KUBE_NODEFEATURE_API_VERSION "nfd.k8s-sigs.io/v1alpha1"
/* The label NFD's master reads to know which Node a NodeFeature is about. */
#define KUBE_NODEFEATURE_NODE_LABEL "nfd.node.kubernetes.io/node-name"

/* One node's NodeFeature as NVIDIA's GFD keeps it: metadata.labels holds only the node label, the one
 * owner is the Node (so the object goes with its Node), spec.features is empty, spec.labels the labels. */
struct kube_nodefeature {
        const char *namespace, *name;
        const char *node, *node_uid;
        char *const *labels; /* "key=value" */
};
/* The object as JSON: a new one (base NULL) or base (an object as read: resourceVersion, annotations and
 * whatever else it holds are kept) with metadata.labels, metadata.ownerReferences and spec replaced.
 * -EINVAL when a field of nf is missing. */
int kube_nodefeature_body(const struct kube_nodefeature *nf, struct json_object *base, char **ret);
/* Whether obj (as read) already says what nf says: an update would change nothing. The owner is matched
 * by its name (node_uid may be NULL). */
bool kube_nodefeature_up_to_date(struct json_object *obj, const struct kube_nodefeature *nf);
/* GET, POST (create; base NULL) and PUT (update of base) of
 * /apis/nfd.k8s-sigs.io/v1alpha1/namespaces/<namespace>/nodefeatures[/<name>]. */
int kube_get_nodefeature(kube_client *c, const char *namespace, const char *name, uint64_t timeout_nsec,
                         kube_response_fn cb, void *userdata);
int kube_put_nodefeature(kube_client *c, const struct kube_nodefeature *nf, struct json_object *base,
                         uint64_t timeout_nsec, kube_response_fn cb, void *userdata);

/* ---- node watch ------------------------------------------------------------------------------------- */

typedef struct kube_node_watch kube_node_watch;
struct kube_node_watch_handler {
        /* The node's labels ("key=value", sorted) when first listed and whenever they change; NULL when the
         * node does not exist (or was deleted). */
        void (*on_labels)(char *const *labels, void *userdata);
        /* Something went wrong and will be retried (for the log). May be NULL. */
        void (*on_error)(const char *error, void *userdata);
};

/* List, then watch (fieldSelector=metadata.name=<name>) from the list's resourceVersion: re-watch from the
 * last resourceVersion seen when the stream ends, re-list on 410 Gone, back off (0.5 s doubling to 30 s)
 * on errors. h is copied. */
int kube_node_watch_new(kube_client *c, const char *name, const struct kube_node_watch_handler *h,
                        void *userdata, kube_node_watch **ret);
/* Stops the watch; no callback after this. Safe from inside the watch's own callbacks. */
kube_node_watch *kube_node_watch_free(kube_node_watch *w);
DEFINE_TRIVIAL_CLEANUP_FUNC(kube_node_watch *, kube_node_watch_free);
/* For tests: the backoff's first step (default 500 ms) and the watch's timeoutSeconds (default 300). */
void kube_node_watch_set_timing(kube_node_watch *w, uint64_t backoff_initial_nsec, unsigned timeout_seconds);
