/* SPDX-License-Identifier: Apache-2.0 */
/* Cluster: asked through kubectl (a function the caller gives, so tests feed canned JSON). */
#include <ctype.h>
#include <json-c/json.h>

#include "base/json.h"
#include "base/strv.h"
#include "doctor/doctor.h"
#include "doctor/node.h"

#define LOG_TAIL_LINES "200"
#define MAX_LISTED     10
/* kubectl output accepted as JSON: the size doctor_kubectl_exec captures, and a generous nesting. */
#define KUBECTL_MAX_OUTPUT (32U * 1024 * 1024)
#define KUBECTL_MAX_DEPTH  128

struct ctx {
        const struct doctor_options *o;
        doctor_report *r;
        char *node;
};

/* Runs kubectl and parses its JSON. On failure appends nothing and returns the reason in *ret_why
 * (a sentence), with <0. */
static int kubectl_json(struct ctx *x, char *const *args, json_object **ret, char **ret_why)
{
        _cleanup_free_ char *out = NULL, *err = NULL;
        int status = 0;
        int k = x->o->kubectl(x->o->kubectl_userdata, args, &status, &out, &err);
        _cleanup_free_ char *cmd = strv_join(args, " ");
        if (!cmd)
                return -ENOMEM;
        if (k < 0) {
                if (asprintf(ret_why, "kubectl %s could not be run: %s", cmd,
                             k == -ETIMEDOUT ? "timed out" : strerror(-k)) < 0)
                        return -ENOMEM;
                return k;
        }
        if (status != 0) {
                const char *e = strempty(err);
                while (isspace((unsigned char)*e))
                        e++;
                int n = (int)MIN(strcspn(e, "\n"), (size_t)200);
                if (asprintf(ret_why, "kubectl %s exited with status %d%s%.*s", cmd, status, n ? ": " : "",
                             n, e) < 0)
                        return -ENOMEM;
                return -EIO;
        }
        k = json_parse(strempty(out), strlen(strempty(out)), KUBECTL_MAX_OUTPUT, KUBECTL_MAX_DEPTH, ret);
        if (k < 0) {
                if (asprintf(ret_why, "kubectl %s did not print JSON", cmd) < 0)
                        return -ENOMEM;
                return k;
        }
        return 0;
}

static const char *name_of(json_object *obj)
{
        static const char *const p[] = { "metadata", "name", NULL };
        return json_text(json_get_path(obj, p));
}

static const char *namespace_of(json_object *obj)
{
        static const char *const p[] = { "metadata", "namespace", NULL };
        const char *s = json_text(json_get_path(obj, p));
        return s ? s : "default";
}

static const char *const runtimeclass_fix =
        "printf 'apiVersion: node.k8s.io/v1\\nkind: RuntimeClass\\nmetadata:\\n  name: nvidia\\nhandler: "
        "nvidia\\n' "
        "| kubectl apply -f -";

static int check_runtimeclass(struct ctx *x, json_object *d)
{
        json_object *items = json_get(d, "items");
        _cleanup_strv_free_ char **names = NULL;
        for (size_t i = 0; i < json_array_size(items); i++) {
                json_object *rc = json_array_at(items, i);
                const char *name = name_of(rc);
                if (!name)
                        continue;
                if (streq(name, "nvidia")) {
                        const char *handler = json_text(json_get(rc, "handler"));
                        if (handler && (streq(handler, "nvidia") || streq(handler, "nvidia-cdi")))
                                return doctor_report_addf(x->r, "cluster.runtimeclass", DOCTOR_OK, NULL,
                                                          "RuntimeClass nvidia, handler %s", handler);
                        _cleanup_free_ char *fix = NULL;
                        if (asprintf(&fix, "kubectl delete runtimeclass nvidia && %s", runtimeclass_fix) < 0)
                                return -ENOMEM;
                        return doctor_report_addf(
                                x->r, "cluster.runtimeclass", DOCTOR_WARN, fix,
                                "RuntimeClass nvidia has handler %s, not the containerd runtime "
                                "nvidia",
                                strna(handler));
                }
                int k = strv_extend(&names, name);
                if (k < 0)
                        return k;
        }
        _cleanup_free_ char *j = names ? strv_join(names, ", ") : strdup("none");
        if (!j)
                return -ENOMEM;
        return doctor_report_addf(
                x->r, "cluster.runtimeclass", DOCTOR_FAIL, runtimeclass_fix,
                "no RuntimeClass nvidia (RuntimeClasses: %s): pods cannot ask for the nvidia "
                "runtime",
                j);
}

static int check_allocatable(struct ctx *x)
{
        if (!x->node)
                return doctor_report_add(x->r, "cluster.allocatable", DOCTOR_SKIP,
                                         "node name unknown (give --node NAME or set NODE_NAME)", NULL);
        char *args[] = { "get", "node", x->node, "-o", "json", NULL };
        _cleanup_json_ json_object *d = NULL;
        _cleanup_free_ char *why = NULL;
        int k = kubectl_json(x, args, &d, &why);
        if (k == -ENOMEM)
                return k;
        if (k < 0)
                return doctor_report_addf(x->r, "cluster.allocatable", DOCTOR_SKIP, NULL,
                                          "%s (is the node name right? give --node NAME)", why);

        static const char *const alloc_path[] = { "status", "allocatable", NULL };
        json_object *alloc = json_get_path(d, alloc_path);
        _cleanup_strv_free_ char **seen = NULL;
        unsigned long long total = 0;
        if (!json_object_is_type(alloc, json_type_object))
                alloc = NULL;
        json_object_object_foreach(alloc, key, value)
        {
                const char *val = json_text(value);
                if (!val || !startswith(key, "nvidia.com/"))
                        continue;
                total += strtoull(val, NULL, 10);
                _cleanup_free_ char *s = NULL;
                if (asprintf(&s, "%s=%s", key, val) < 0)
                        return -ENOMEM;
                if ((k = strv_push(&seen, s)) < 0)
                        return k;
                s = NULL;
        }
        _cleanup_free_ char *j = seen ? strv_join(seen, ", ") : NULL;
        if (seen && !j)
                return -ENOMEM;
        if (total == 0)
                return doctor_report_addf(
                        x->r, "cluster.allocatable", DOCTOR_FAIL,
                        "kubectl get pods -A -o wide | grep -e nvdp -e nvidia-device-plugin   # "
                        "the plugin must run and register on this node",
                        "node %s allocatable has %s: the scheduler sees no GPU here", x->node,
                        j ? j : "no nvidia.com/* resource");
        return doctor_report_addf(x->r, "cluster.allocatable", DOCTOR_OK, NULL, "node %s allocatable: %s",
                                  x->node, j);
}

static bool is_plugin_pod(json_object *pod)
{
        static const char *const label_path[] = { "metadata", "labels", "app.kubernetes.io/name", NULL };
        const char *name = name_of(pod);
        const char *label = json_text(json_get_path(pod, label_path));
        if (!name)
                return false;
        if (strstr(name, "feature-discovery") || strstr(name, "mps-control"))
                return false;
        if (label && (streq(label, "nvidia-device-plugin") || streq(label, "nvdp")))
                return true;
        return startswith(name, "nvidia-device-plugin") || startswith(name, "nvdp-");
}

static const char *pod_node(json_object *pod)
{
        static const char *const p[] = { "spec", "nodeName", NULL };
        return json_text(json_get_path(pod, p));
}

/* Why a pod is not running well: a waiting/terminated reason of a container, or NULL. */
static const char *pod_trouble(json_object *pod)
{
        static const char *const phase_path[] = { "status", "phase", NULL };
        static const char *const statuses_path[] = { "status", "containerStatuses", NULL };
        static const char *const waiting[] = { "state", "waiting", "reason", NULL };
        static const char *const terminated[] = { "state", "terminated", "reason", NULL };
        json_object *st = json_get_path(pod, statuses_path);
        for (size_t i = 0; i < json_array_size(st); i++) {
                json_object *c = json_array_at(st, i);
                const char *w = json_text(json_get_path(c, waiting));
                if (w)
                        return w;
                const char *t = json_text(json_get_path(c, terminated));
                if (t)
                        return t;
                const char *ready = json_text(json_get(c, "ready"));
                if (ready && streq(ready, "false"))
                        return "not ready";
        }
        const char *phase = json_text(json_get_path(pod, phase_path));
        if (!phase || !streq(phase, "Running"))
                return phase ? phase : "no phase";
        return NULL;
}

struct known_error {
        const char *needle;
        const char *meaning;
        const char *fix;
};

static const char *const fix_runtimeclass = "kubectl -n NAMESPACE patch daemonset DAEMONSET -p "
                                            "'{\"spec\":{\"template\":{\"spec\":{\"runtimeClassName\":"
                                            "\"nvidia\"}}}}'   # Helm: --set runtimeClassName=nvidia; or "
                                            "start k3s with --default-runtime nvidia";

static const struct known_error known_errors[] = {
        { "could not load NVML",
          "the plugin cannot load libnvidia-ml.so.1: its pod does not run under the nvidia runtime", NULL },
        { "invalid device discovery strategy",
          "the plugin found neither NVML nor a Tegra system: its pod does not run under the nvidia runtime",
          NULL },
        { "Incompatible strategy detected",
          "the plugin found no NVML inside its container: its pod does not run under the nvidia runtime",
          NULL },
        { "failed to create containerd task",
          "the nvidia runtime could not start the container: its hook failed (driver libraries, device "
          "nodes or "
          "BinaryName; see the driver.* and toolkit.* checks)",
          "journalctl -u k3s --since -1h | grep -i -e nvidia-container -e 'failed to create containerd "
          "task'" },
        { "Failed to initialize NVML: Unknown Error",
          "the container lost its /dev/nvidia* access (systemd cgroups after a daemon-reload, "
          "NVIDIA/nvidia-container-toolkit#48)",
          "kubectl -n NAMESPACE delete pod POD   # and prefer a CDI device-list strategy, which avoids it" },
};

/* The pod's DaemonSet: its owner reference, else the pod name without the hash suffix
 * ("nvdp-abcde" -> "nvdp"). */
static char *daemonset_of(json_object *pod)
{
        static const char *const owners_path[] = { "metadata", "ownerReferences", NULL };
        json_object *owners = json_get_path(pod, owners_path);
        for (size_t i = 0; i < json_array_size(owners); i++) {
                json_object *o = json_array_at(owners, i);
                const char *kind = json_text(json_get(o, "kind"));
                const char *name = json_text(json_get(o, "name"));
                if (kind && name && streq(kind, "DaemonSet"))
                        return strdup(name);
        }
        char *ds = strdup(strempty(name_of(pod)));
        if (!ds)
                return NULL;
        char *dash = strrchr(ds, '-');
        if (dash && dash != ds)
                *dash = '\0';
        return ds;
}

/* Replaces NAMESPACE / DAEMONSET / POD in a fix with the pod's. */
static char *fill_fix(const char *tmpl, const char *ns, const char *ds, const char *pod)
{
        struct {
                const char *key, *val;
        } subst[] = { { "NAMESPACE", ns }, { "DAEMONSET", ds }, { "POD", pod } };
        char *s = strdup(tmpl);
        for (size_t i = 0; s && i < ELEMENTSOF(subst); i++) {
                char *p = strstr(s, subst[i].key);
                if (!p)
                        continue;
                char *n = NULL;
                if (asprintf(&n, "%.*s%s%s", (int)(p - s), s, subst[i].val, p + strlen(subst[i].key)) < 0)
                        n = NULL;
                free(s);
                s = n;
        }
        return s;
}

static int scan_text(struct ctx *x, const char *text, const char *ns, const char *ds, const char *pod,
                     bool *found)
{
        for (size_t i = 0; i < ELEMENTSOF(known_errors); i++) {
                const char *hit = strstr(text, known_errors[i].needle);
                if (!hit)
                        continue;
                /* Show the whole line the error is on, trimmed. */
                const char *b = hit;
                while (b > text && b[-1] != '\n')
                        b--;
                int len = (int)MIN(strcspn(b, "\n"), (size_t)240);
                _cleanup_free_ char *fix =
                        fill_fix(known_errors[i].fix ? known_errors[i].fix : fix_runtimeclass, ns, ds, pod);
                if (!fix)
                        return -ENOMEM;
                *found = true;
                return doctor_report_addf(x->r, "cluster.plugin-logs", DOCTOR_FAIL, fix,
                                          "%s/%s: \"%.*s\": %s", ns, pod, len, b, known_errors[i].meaning);
        }
        return 0;
}

static int scan_pod(struct ctx *x, json_object *pod)
{
        const char *ns = namespace_of(pod), *name = name_of(pod);
        _cleanup_free_ char *ds = daemonset_of(pod);
        bool found = false;
        int k;

        if (!ds)
                return -ENOMEM;
        /* Start failures show in the container status, not the log. */
        static const char *const statuses_path[] = { "status", "containerStatuses", NULL };
        static const char *const msgs[][4] = {
                { "state", "waiting", "message", NULL },
                { "state", "terminated", "message", NULL },
                { "lastState", "terminated", "message", NULL },
        };
        json_object *st = json_get_path(pod, statuses_path);
        for (size_t i = 0; i < json_array_size(st) && !found; i++)
                for (size_t m = 0; m < ELEMENTSOF(msgs) && !found; m++) {
                        const char *msg = json_text(json_get_path(json_array_at(st, i), msgs[m]));
                        if (msg && (k = scan_text(x, msg, ns, ds, name, &found)) < 0)
                                return k;
                }
        if (found)
                return 0;

        char *args[] = {
                "logs", "-n", (char *)ns, (char *)name, "--all-containers", "--tail=" LOG_TAIL_LINES, NULL
        };
        _cleanup_free_ char *out = NULL, *err = NULL;
        int status = 0;
        k = x->o->kubectl(x->o->kubectl_userdata, args, &status, &out, &err);
        if (k < 0 || status != 0)
                return doctor_report_addf(x->r, "cluster.plugin-logs", DOCTOR_SKIP, NULL,
                                          "the log of %s/%s could not be read", ns, name);
        if ((k = scan_text(x, strempty(out), ns, ds, name, &found)) < 0)
                return k;
        if (found)
                return 0;
        return doctor_report_addf(x->r, "cluster.plugin-logs", DOCTOR_OK, NULL,
                                  "no known error in the last " LOG_TAIL_LINES " log lines of %s/%s", ns,
                                  name);
}

static bool requests_gpu(json_object *pod)
{
        static const char *const lists[] = { "containers", "initContainers" };
        static const char *const kinds[] = { "limits", "requests" };
        json_object *spec = json_get(pod, "spec");
        for (size_t l = 0; l < ELEMENTSOF(lists); l++) {
                json_object *cs = json_get(spec, lists[l]);
                for (size_t i = 0; i < json_array_size(cs); i++) {
                        json_object *res = json_get(json_array_at(cs, i), "resources");
                        for (size_t k = 0; k < ELEMENTSOF(kinds); k++) {
                                json_object *m = json_get(res, kinds[k]);
                                if (!json_object_is_type(m, json_type_object))
                                        continue;
                                json_object_object_foreach(m, key, value)
                                {
                                        (void)value;
                                        if (startswith(key, "nvidia.com/"))
                                                return true;
                                }
                        }
                }
        }
        return false;
}

/* Plugin pods on this node (all of them when the node is unknown): up to ELEMENTSOF(mine) in *mine. */
static int check_plugin_pods(struct ctx *x, json_object *items, json_object **mine, size_t max,
                             size_t *ret_n)
{
        size_t n_elsewhere = 0, n_mine = 0;
        json_object *bad = NULL;
        const char *bad_why = NULL;
        for (size_t i = 0; i < json_array_size(items); i++) {
                json_object *pod = json_array_at(items, i);
                if (!is_plugin_pod(pod))
                        continue;
                const char *on = pod_node(pod);
                if (x->node && (!on || !streq(on, x->node))) {
                        n_elsewhere++;
                        continue;
                }
                if (n_mine < max)
                        mine[n_mine++] = pod;
                const char *t = pod_trouble(pod);
                if (t && !bad) {
                        bad = pod;
                        bad_why = t;
                }
        }
        *ret_n = n_mine;
        if (n_mine == 0)
                return doctor_report_addf(
                        x->r, "cluster.plugin-pods", DOCTOR_FAIL,
                        "kubectl get daemonsets -A | grep -e nvdp -e nvidia-device-plugin   # installed? "
                        "does its node selector match this node?",
                        "no device plugin pod %s%s (%zu elsewhere)", x->node ? "on node " : "found",
                        strempty(x->node), n_elsewhere);
        if (bad) {
                _cleanup_free_ char *fix = NULL;
                if (asprintf(&fix, "kubectl -n %s describe pod %s", namespace_of(bad), name_of(bad)) < 0)
                        return -ENOMEM;
                return doctor_report_addf(x->r, "cluster.plugin-pods", DOCTOR_FAIL, fix,
                                          "%s/%s is not running: %s", namespace_of(bad), name_of(bad),
                                          bad_why);
        }
        _cleanup_strv_free_ char **l = NULL;
        for (size_t i = 0; i < n_mine; i++)
                if (strv_extendf(&l, "%s/%s", namespace_of(mine[i]), name_of(mine[i])) < 0)
                        return -ENOMEM;
        _cleanup_free_ char *j = strv_join(l, ", ");
        if (!j)
                return -ENOMEM;
        return doctor_report_addf(x->r, "cluster.plugin-pods", DOCTOR_OK, NULL, "running%s%s: %s",
                                  x->node ? " on node " : "", strempty(x->node), j);
}

/* Pods asking for GPUs without the nvidia runtime get no GPU libraries or devices. */
static int check_gpu_pods(struct ctx *x, json_object *items)
{
        _cleanup_strv_free_ char **without = NULL;
        size_t n_gpu = 0, n_without = 0;
        static const char *const rc_path[] = { "spec", "runtimeClassName", NULL };
        static const char *const phase_path[] = { "status", "phase", NULL };
        for (size_t i = 0; i < json_array_size(items); i++) {
                json_object *pod = json_array_at(items, i);
                const char *phase = json_text(json_get_path(pod, phase_path));
                if (phase && (streq(phase, "Succeeded") || streq(phase, "Failed")))
                        continue;
                if (!requests_gpu(pod))
                        continue;
                n_gpu++;
                if (!isempty(json_text(json_get_path(pod, rc_path))))
                        continue;
                if (n_without++ < MAX_LISTED &&
                    strv_extendf(&without, "%s/%s", namespace_of(pod), name_of(pod)) < 0)
                        return -ENOMEM;
        }
        if (n_without == 0)
                return doctor_report_addf(
                        x->r, "cluster.gpu-pods", DOCTOR_OK, NULL,
                        "%zu pod%s request%s nvidia.com/*, none without a runtimeClassName", n_gpu,
                        n_gpu == 1 ? "" : "s", n_gpu == 1 ? "s" : "");
        _cleanup_free_ char *j = strv_join(without, ", ");
        if (!j)
                return -ENOMEM;
        char more[64] = "";
        if (n_without > MAX_LISTED)
                snprintf(more, sizeof(more), " and %zu more", n_without - MAX_LISTED);
        return doctor_report_addf(x->r, "cluster.gpu-pods", DOCTOR_WARN,
                                  "add 'runtimeClassName: nvidia' to their pod spec (or start k3s with "
                                  "--default-runtime nvidia)",
                                  "%zu pod%s request%s nvidia.com/* without a runtimeClassName, so they get "
                                  "no GPU libraries unless nvidia is the default runtime: %s%s",
                                  n_without, n_without == 1 ? "" : "s", n_without == 1 ? "s" : "", j, more);
}

static int check_pods(struct ctx *x)
{
        char *args[] = { "get", "pods", "-A", "-o", "json", NULL };
        _cleanup_json_ json_object *d = NULL;
        _cleanup_free_ char *why = NULL;
        int k = kubectl_json(x, args, &d, &why);
        if (k == -ENOMEM)
                return k;
        if (k < 0) {
                if ((k = doctor_report_add(x->r, "cluster.plugin-pods", DOCTOR_SKIP, why, NULL)) < 0)
                        return k;
                return doctor_report_add(x->r, "cluster.gpu-pods", DOCTOR_SKIP, why, NULL);
        }
        json_object *items = json_get(d, "items");
        json_object *mine[4];
        size_t n_mine = 0;
        if ((k = check_plugin_pods(x, items, mine, ELEMENTSOF(mine), &n_mine)) < 0)
                return k;
        /* Their logs. */
        if (n_mine == 0)
                k = doctor_report_add(x->r, "cluster.plugin-logs", DOCTOR_SKIP, "no plugin pod to read",
                                      NULL);
        for (size_t i = 0; i < n_mine && k >= 0; i++)
                k = scan_pod(x, mine[i]);
        if (k < 0)
                return k;
        return check_gpu_pods(x, items);
}

int doctor_check_cluster(const struct doctor_options *o, doctor_report *r)
{
        if (!o->kubectl)
                return doctor_report_add(r, "cluster.kubectl", DOCTOR_SKIP,
                                         "cluster checks not run (--no-cluster)", NULL);
        struct ctx x = { .o = o, .r = r, .node = node_name(o->root, o->node_name) };
        char *args[] = { "get", "runtimeclasses", "-o", "json", NULL };
        _cleanup_json_ json_object *d = NULL;
        _cleanup_free_ char *why = NULL;
        int k = kubectl_json(&x, args, &d, &why);
        if (k == -ENOMEM)
                goto out;
        if (k < 0) {
                k = doctor_report_addf(r, "cluster.kubectl", DOCTOR_SKIP, NULL, "%s: cluster checks skipped",
                                       why);
                goto out;
        }
        if ((k = doctor_report_add(r, "cluster.kubectl", DOCTOR_OK, "kubectl reached the API server",
                                   NULL)) < 0 ||
            (k = check_runtimeclass(&x, d)) < 0 || (k = check_allocatable(&x)) < 0 ||
            (k = check_pods(&x)) < 0)
                goto out;
        k = 0;
out:
        free(x.node);
        return k;
}
