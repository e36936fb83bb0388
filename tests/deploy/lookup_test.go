// The RuntimeClass template asks the cluster (helm `lookup`, one LIST) whether a RuntimeClass of that
// name exists. helm template --dry-run=server runs lookup against an API server; this file plays a
// small one (discovery plus the RuntimeClass list), so the cases can be shown without a cluster.
package deploy

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

type fakeAPI struct {
	mu            sync.Mutex
	runtimeClass  map[string]map[string]string // name -> annotations; absent = 404
	lookedUp      []string
	unknownPaths  []string
	serverVersion string
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	write := func(code int, v any) {
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(v)
	}
	resources := func(gv string, list ...[3]string) map[string]any {
		var rs []map[string]any
		for _, r := range list {
			rs = append(rs, map[string]any{"name": r[0], "kind": r[1], "namespaced": r[2] == "ns",
				"singularName": "", "verbs": []string{"get", "list", "create", "update", "patch", "delete"}})
		}
		return map[string]any{"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": rs}
	}
	group := func(name string) map[string]any {
		gv := map[string]string{"groupVersion": name + "/v1", "version": "v1"}
		return map[string]any{"name": name, "versions": []any{gv}, "preferredVersion": gv}
	}
	notFound := map[string]any{"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404}
	p := r.URL.Path
	switch {
	case p == "/version":
		write(200, map[string]string{"major": "1", "minor": "33", "gitVersion": f.serverVersion, "platform": "linux/amd64"})
	case p == "/api":
		write(200, map[string]any{"kind": "APIVersions", "versions": []string{"v1"}})
	case p == "/apis":
		write(200, map[string]any{"kind": "APIGroupList", "apiVersion": "v1", "groups": []any{
			group("apps"), group("rbac.authorization.k8s.io"), group("node.k8s.io")}})
	case p == "/api/v1":
		write(200, resources("v1", [3]string{"configmaps", "ConfigMap", "ns"}, [3]string{"secrets", "Secret", "ns"},
			[3]string{"serviceaccounts", "ServiceAccount", "ns"}, [3]string{"services", "Service", "ns"},
			[3]string{"namespaces", "Namespace", ""}, [3]string{"nodes", "Node", ""}))
	case p == "/apis/apps/v1":
		write(200, resources("apps/v1", [3]string{"daemonsets", "DaemonSet", "ns"}))
	case p == "/apis/rbac.authorization.k8s.io/v1":
		write(200, resources("rbac.authorization.k8s.io/v1", [3]string{"clusterroles", "ClusterRole", ""},
			[3]string{"clusterrolebindings", "ClusterRoleBinding", ""}, [3]string{"roles", "Role", "ns"},
			[3]string{"rolebindings", "RoleBinding", "ns"}))
	case p == "/apis/node.k8s.io/v1":
		write(200, resources("node.k8s.io/v1", [3]string{"runtimeclasses", "RuntimeClass", ""}))
	case p == "/apis/node.k8s.io/v1/runtimeclasses":
		f.lookedUp = append(f.lookedUp, "list")
		var items []any
		for name, ann := range f.runtimeClass {
			meta := map[string]any{"name": name, "annotations": ann}
			if _, helmOwned := ann["meta.helm.sh/release-name"]; helmOwned {
				meta["labels"] = map[string]string{"app.kubernetes.io/managed-by": "Helm"}
			}
			items = append(items, map[string]any{"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass", "metadata": meta, "handler": name})
		}
		if items == nil {
			items = []any{}
		}
		write(200, map[string]any{"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClassList", "metadata": map[string]any{}, "items": items})
	case r.Method == http.MethodGet && strings.HasSuffix(p, "/secrets"):
		// helm's release storage: no releases yet
		write(200, map[string]any{"kind": "SecretList", "apiVersion": "v1", "items": []any{}})
	case r.Method == http.MethodGet && strings.HasPrefix(p, "/api"):
		// any other object: does not exist
		write(404, notFound)
	default:
		f.unknownPaths = append(f.unknownPaths, r.Method+" "+p)
		write(404, notFound)
	}
}

func TestRuntimeClassLookup(t *testing.T) {
	cases := []struct {
		name     string
		existing map[string]map[string]string
		args     []string
		want     []string // RuntimeClasses rendered
	}{
		{"none exists", nil, nil, []string{"RuntimeClass/nvidia"}},
		{"k3s's exists (no helm annotations)", map[string]map[string]string{"nvidia": {}}, nil, nil},
		{"someone else's exists", map[string]map[string]string{"nvidia": {"owner": "gpu-operator"}}, nil, nil},
		{"ours from an earlier install (upgrade keeps it)", map[string]map[string]string{"nvidia": {
			"meta.helm.sh/release-name": "nvdp", "meta.helm.sh/release-namespace": namespace}}, nil,
			[]string{"RuntimeClass/nvidia"}},
		{"another release's", map[string]map[string]string{"nvidia": {
			"meta.helm.sh/release-name": "other", "meta.helm.sh/release-namespace": namespace}}, nil, nil},
		{"CDI: nvidia exists, nvidia-cdi does not", map[string]map[string]string{"nvidia": {}},
			[]string{"--set", "deviceListStrategy=cdi-cri"}, []string{"RuntimeClass/nvidia-cdi"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			api := &fakeAPI{runtimeClass: tc.existing, serverVersion: "v1.33.0"}
			srv := httptest.NewServer(api)
			defer srv.Close()
			args := append([]string{"template", "nvdp", chartSrc, "--namespace", namespace,
				"--dry-run=server", "--kube-apiserver", srv.URL, "--disable-openapi-validation"}, tc.args...)
			out, err := helm(t, args...)
			if err != nil {
				t.Fatalf("helm %v: %v\n%s\nunhandled requests: %v", tc.args, err, out, api.unknownPaths)
			}
			r := decodeAll(t, out)
			var got []string
			for _, k := range r.kinds {
				if strings.HasPrefix(k, "RuntimeClass/") {
					got = append(got, k)
				}
			}
			if strings.Join(got, " ") != strings.Join(tc.want, " ") {
				t.Errorf("RuntimeClasses rendered = %v, want %v", got, tc.want)
			}
			api.mu.Lock()
			looked := strings.Join(api.lookedUp, " ")
			api.mu.Unlock()
			if looked != "list" {
				t.Errorf("the chart did not list the RuntimeClasses once (requests: %q)", looked)
			}
			if !r.has("DaemonSet/nvdp-nvidia-device-plugin") {
				t.Errorf("DaemonSet missing: %v", r.kinds)
			}
		})
	}
}
