// Tests of the Helm chart: the real helm renders it (offline: the NFD subchart is vendored), every
// object is decoded strictly into the Kubernetes API types (an unknown or misplaced field fails), and
// the values users rely on are checked in the rendered objects.
package deploy

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	nodev1 "k8s.io/api/node/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	resourcev1 "k8s.io/api/resource/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"
)

const namespace = "nvidia-device-plugin"

var repoRoot = func() string {
	abs, err := filepath.Abs("../..")
	if err != nil {
		panic(err)
	}
	return abs
}()

// NVDP_CHART renders another copy of the chart (e.g. an older one, to see which checks it fails).
var chartSrc = func() string {
	if p := os.Getenv("NVDP_CHART"); p != "" {
		return p
	}
	return filepath.Join(repoRoot, "deploy/helm/nvidia-device-plugin")
}()

// NVIDIA's chart (v0.19.3, from the tag's sources: scripts/vendor-charts), the release the upgrade
// tests replace.
var nvidiaChart = filepath.Join(repoRoot, "tests/deploy/testdata/nvidia-device-plugin-0.19.3.tgz")

func helmPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("HELM"); p != "" {
		return p
	}
	if p := filepath.Join(repoRoot, ".tools/bin/helm"); fileExists(p) {
		return p
	}
	p, err := exec.LookPath("helm")
	if err != nil {
		t.Fatal("helm not found: run scripts/install-deps (it puts helm in .tools/bin)")
	}
	return p
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func version(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "VERSION"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

type rendered struct {
	docs    map[string][]byte // "Kind/name" -> YAML
	kinds   []string
	objects map[string]any
}

// helm runs helm with empty cache, config and data directories: no repository is configured and
// nothing is cached, as on a fresh machine; this machine has no network either.
func helm(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(helmPath(t), args...)
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+t.TempDir(), "HELM_CONFIG_HOME="+t.TempDir(),
		"HELM_DATA_HOME="+t.TempDir())
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		return stdout.String() + stderr.String(), err
	}
	return stdout.String(), nil
}

// render runs helm template on the chart as shipped with the given extra arguments and decodes
// every document strictly.
func render(t *testing.T, args ...string) *rendered {
	t.Helper()
	return renderChart(t, chartSrc, args...)
}

func renderChart(t *testing.T, chart string, args ...string) *rendered {
	t.Helper()
	all := append([]string{"template", "nvdp", chart, "--namespace", namespace}, args...)
	out, err := helm(t, all...)
	if err != nil {
		t.Fatalf("helm %s: %v\n%s", strings.Join(all, " "), err, out)
	}
	return decodeAll(t, out)
}

func decodeAll(t *testing.T, out string) *rendered {
	t.Helper()
	r := &rendered{docs: map[string][]byte{}, objects: map[string]any{}}
	for _, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(out, -1) {
		if strings.TrimSpace(stripComments(doc)) == "" {
			continue
		}
		var meta metav1.TypeMeta
		var om struct {
			Metadata metav1.ObjectMeta `json:"metadata"`
		}
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
			t.Fatalf("not YAML: %v\n%s", err, doc)
		}
		if err := yaml.Unmarshal([]byte(doc), &om); err != nil {
			t.Fatalf("bad metadata: %v\n%s", err, doc)
		}
		obj := newObject(meta)
		if obj == nil {
			t.Fatalf("unexpected object %s %s in the chart output", meta.APIVersion, meta.Kind)
		}
		if err := decodeStrict([]byte(doc), obj); err != nil {
			t.Fatalf("%s %s does not decode strictly: %v\n%s", meta.Kind, om.Metadata.Name, err, doc)
		}
		key := meta.Kind + "/" + om.Metadata.Name
		if meta.Kind == "Role" || meta.Kind == "RoleBinding" { // the events Role lives in "default"
			key = meta.Kind + "/" + om.Metadata.Namespace + "/" + om.Metadata.Name
		}
		if _, dup := r.docs[key]; dup {
			t.Fatalf("%s rendered twice", key)
		}
		r.docs[key] = []byte(doc)
		r.objects[key] = obj
		r.kinds = append(r.kinds, key)
	}
	sort.Strings(r.kinds)
	return r
}

func decodeStrict(doc []byte, obj any) error {
	return yaml.UnmarshalStrict(doc, obj)
}

// The strict decoder is what makes the render tests worth anything: a field in the wrong place
// must fail.
func TestStrictDecodingCatchesMisplacedField(t *testing.T) {
	good := "apiVersion: apps/v1\nkind: DaemonSet\nmetadata:\n  name: x\nspec:\n  template:\n    spec:\n      containers:\n      - name: c\n        securityContext:\n          readOnlyRootFilesystem: true\n"
	misplaced := strings.Replace(good, "        securityContext:\n          readOnlyRootFilesystem: true\n", "        readOnlyRootFilesystem: true\n", 1)
	if err := decodeStrict([]byte(good), &appsv1.DaemonSet{}); err != nil {
		t.Fatalf("valid DaemonSet rejected: %v", err)
	}
	if err := decodeStrict([]byte(misplaced), &appsv1.DaemonSet{}); err == nil || !strings.Contains(err.Error(), "readOnlyRootFilesystem") {
		t.Errorf("misplaced field accepted (err=%v)", err)
	}
	if err := decodeStrict([]byte(good+"        env: {}\n"), &appsv1.DaemonSet{}); err == nil {
		t.Error("env as a map accepted")
	}
}

func stripComments(doc string) string {
	var b strings.Builder
	for _, l := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

// serviceMonitor is the part of the Prometheus operator's ServiceMonitor (monitoring.coreos.com/v1)
// the chart writes; the CRD's Go types are not pulled in for this, so this mirrors its field names.
type serviceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Selector          metav1.LabelSelector `json:"selector"`
		NamespaceSelector struct {
			MatchNames []string `json:"matchNames"`
		} `json:"namespaceSelector"`
		Endpoints []struct {
			Port     string `json:"port"`
			Path     string `json:"path"`
			Interval string `json:"interval"`
		} `json:"endpoints"`
	} `json:"spec"`
}

func newObject(m metav1.TypeMeta) any {
	switch m.APIVersion + " " + m.Kind {
	case "v1 ServiceAccount":
		return &corev1.ServiceAccount{}
	case "v1 ConfigMap":
		return &corev1.ConfigMap{}
	case "v1 Service":
		return &corev1.Service{}
	case "apps/v1 DaemonSet":
		return &appsv1.DaemonSet{}
	case "apps/v1 Deployment": // NFD master and gc
		return &appsv1.Deployment{}
	case "batch/v1 Job": // NFD's post-delete hook
		return &batchv1.Job{}
	case "rbac.authorization.k8s.io/v1 ClusterRole":
		return &rbacv1.ClusterRole{}
	case "rbac.authorization.k8s.io/v1 ClusterRoleBinding":
		return &rbacv1.ClusterRoleBinding{}
	case "rbac.authorization.k8s.io/v1 Role":
		return &rbacv1.Role{}
	case "rbac.authorization.k8s.io/v1 RoleBinding":
		return &rbacv1.RoleBinding{}
	case "networking.k8s.io/v1 NetworkPolicy":
		return &networkingv1.NetworkPolicy{}
	case "node.k8s.io/v1 RuntimeClass":
		return &nodev1.RuntimeClass{}
	case "admissionregistration.k8s.io/v1 ValidatingAdmissionPolicy":
		return &admissionv1.ValidatingAdmissionPolicy{}
	case "admissionregistration.k8s.io/v1 ValidatingAdmissionPolicyBinding":
		return &admissionv1.ValidatingAdmissionPolicyBinding{}
	case "resource.k8s.io/v1 DeviceClass":
		return &resourcev1.DeviceClass{}
	case "monitoring.coreos.com/v1 ServiceMonitor":
		return &serviceMonitor{}
	}
	return nil
}

func (r *rendered) daemonSet(t *testing.T, name string) *appsv1.DaemonSet {
	t.Helper()
	o, ok := r.objects["DaemonSet/"+name]
	if !ok {
		t.Fatalf("no DaemonSet %s; rendered: %v", name, r.kinds)
	}
	return o.(*appsv1.DaemonSet)
}

// get returns the rendered object key as type T, failing the test (not panicking) when it is missing.
func get[T any](t *testing.T, r *rendered, key string) T {
	t.Helper()
	o, ok := r.objects[key].(T)
	if !ok {
		t.Fatalf("no %s of type %T; rendered %v", key, o, r.kinds)
	}
	return o
}

func (r *rendered) has(key string) bool {
	_, ok := r.objects[key]
	return ok
}

// ours lists the objects of this chart (not of the NFD subchart).
func (r *rendered) ours() []string {
	var l []string
	for _, k := range r.kinds {
		if !strings.Contains(k, "node-feature-discovery") {
			l = append(l, k)
		}
	}
	return l
}

func envMap(c corev1.Container) map[string]string {
	m := map[string]string{}
	for _, e := range c.Env {
		if e.ValueFrom != nil && e.ValueFrom.FieldRef != nil {
			m[e.Name] = "fieldRef:" + e.ValueFrom.FieldRef.FieldPath
		} else {
			m[e.Name] = e.Value
		}
	}
	return m
}

func expectEnv(t *testing.T, c corev1.Container, want map[string]string, absent ...string) {
	t.Helper()
	got := envMap(c)
	for k, v := range want {
		if got[k] != v {
			t.Errorf("container %s: env %s = %q, want %q", c.Name, k, got[k], v)
		}
	}
	for _, k := range absent {
		if v, ok := got[k]; ok {
			t.Errorf("container %s: env %s = %q, want it unset", c.Name, k, v)
		}
	}
}

func mounts(c corev1.Container) map[string]string {
	m := map[string]string{}
	for _, v := range c.VolumeMounts {
		m[v.MountPath] = v.Name
	}
	return m
}

func capsString(sc *corev1.SecurityContext) string {
	if sc == nil || sc.Capabilities == nil {
		return "drop=[] add=[]"
	}
	return fmt.Sprintf("drop=%v add=%v", sc.Capabilities.Drop, sc.Capabilities.Add)
}

func boolp(b *bool) string {
	if b == nil {
		return "nil"
	}
	return fmt.Sprint(*b)
}

func int64p(i *int64) string {
	if i == nil {
		return "nil"
	}
	return fmt.Sprint(*i)
}

// rules summarises RBAC rules as "group/resource:verb,verb" (names too when set), in order.
func rules(rs []rbacv1.PolicyRule) string {
	var l []string
	for _, r := range rs {
		s := fmt.Sprintf("%s/%s:%s", strings.Join(r.APIGroups, ","), strings.Join(r.Resources, ","), strings.Join(r.Verbs, ","))
		if len(r.ResourceNames) > 0 {
			s += "[" + strings.Join(r.ResourceNames, ",") + "]"
		}
		l = append(l, s)
	}
	return strings.Join(l, " | ")
}

func TestChartVersionIsVERSION(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(chartSrc, "Chart.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		APIVersion   string `json:"apiVersion"`
		Version      string `json:"version"`
		AppVersion   string `json:"appVersion"`
		Dependencies []struct {
			Name, Alias, Version, Repository, Condition string
		} `json:"dependencies"`
	}
	if err := yaml.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	v := version(t)
	if c.APIVersion != "v2" || c.Version != v || c.AppVersion != v {
		t.Errorf("Chart.yaml apiVersion/version/appVersion = %s/%s/%s, want v2/%s/%s", c.APIVersion, c.Version, c.AppVersion, v, v)
	}
	if len(c.Dependencies) != 1 || c.Dependencies[0].Alias != "nfd" || c.Dependencies[0].Version != "0.19.0" ||
		c.Dependencies[0].Condition != "nfd.enabled,gfd.enabled" {
		t.Errorf("dependencies = %+v, want node-feature-discovery 0.19.0 as nfd, condition nfd.enabled,gfd.enabled", c.Dependencies)
	}
}

// lockDigest is helm's digest of a chart's dependencies (Chart.lock "digest"): sha256 over the JSON
// of [Chart.yaml's dependencies, the locked ones], with the field names and order of helm's
// chart.Dependency. TestChartLock checks this function against the lock NVIDIA's chart ships.
func lockDigest(t *testing.T, chartYAML, lockYAML []byte) (computed, stored string) {
	t.Helper()
	type dep struct {
		Name       string `json:"name"`
		Version    string `json:"version,omitempty"`
		Repository string `json:"repository"`
		Condition  string `json:"condition,omitempty"`
		Alias      string `json:"alias,omitempty"`
	}
	var c struct {
		Dependencies []dep `json:"dependencies"`
	}
	var l struct {
		Dependencies []dep  `json:"dependencies"`
		Digest       string `json:"digest"`
	}
	if err := yaml.Unmarshal(chartYAML, &c); err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(lockYAML, &l); err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal([2][]dep{c.Dependencies, l.Dependencies})
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:]), l.Digest
}

func untar(t *testing.T, archive string) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("tar", "-xzf", archive, "-C", dir).CombinedOutput(); err != nil {
		t.Fatalf("tar -xzf %s: %v: %s", archive, err, out)
	}
	return dir
}

// Chart.lock is committed (as upstream does) and matches Chart.yaml; the vendored archive is the
// locked dependency.
func TestChartLock(t *testing.T) {
	// The digest function against a lock helm itself wrote: NVIDIA's.
	up := filepath.Join(untar(t, nvidiaChart), "nvidia-device-plugin")
	cy, _ := os.ReadFile(filepath.Join(up, "Chart.yaml"))
	cl, err := os.ReadFile(filepath.Join(up, "Chart.lock"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := lockDigest(t, cy, cl); got != want || want == "" {
		t.Fatalf("digest of NVIDIA's Chart.lock computed as %s, helm wrote %s", got, want)
	}
	cy, _ = os.ReadFile(filepath.Join(chartSrc, "Chart.yaml"))
	cl, err = os.ReadFile(filepath.Join(chartSrc, "Chart.lock"))
	if err != nil {
		t.Fatal("deploy/helm/nvidia-device-plugin/Chart.lock is missing")
	}
	if got, want := lockDigest(t, cy, cl); got != want {
		t.Errorf("Chart.lock is out of sync with Chart.yaml: digest %s, Chart.yaml's dependencies give %s", want, got)
	}
	out, err := helm(t, "dependency", "list", chartSrc)
	if err != nil || !regexp.MustCompile(`(?m)^node-feature-discovery\s+0\.19\.0\s+oci://registry\.k8s\.io/nfd/charts\s+ok\s*$`).MatchString(out) {
		t.Errorf("helm dependency list: want node-feature-discovery 0.19.0 ok (err %v):\n%s", err, out)
	}
}

// From a fresh clone (the files git tracks, nothing fetched), with no network and empty helm
// directories: helm renders with NFD off and on.
func TestOfflineFromFreshClone(t *testing.T) {
	files, err := exec.Command("git", "-C", repoRoot, "ls-files", "deploy/helm/nvidia-device-plugin").Output()
	if err != nil {
		t.Skipf("not a git checkout: %v", err)
	}
	clone := t.TempDir()
	for _, f := range strings.Fields(string(files)) {
		src, dst := filepath.Join(repoRoot, f), filepath.Join(clone, f)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	chart := filepath.Join(clone, "deploy/helm/nvidia-device-plugin")
	off := renderChart(t, chart, "--set", "nfd.enabled=false", "--set", "gfd.enabled=true")
	for _, k := range off.kinds {
		if strings.Contains(k, "node-feature-discovery") {
			t.Errorf("nfd.enabled=false renders %s", k)
		}
	}
	on := renderChart(t, chart, "--set", "nfd.enabled=true")
	for _, want := range []string{"Deployment/nvdp-node-feature-discovery-master", "DaemonSet/nvdp-node-feature-discovery-worker",
		"Deployment/nvdp-node-feature-discovery-gc"} {
		if !on.has(want) {
			t.Errorf("nfd.enabled=true: %s missing; rendered %v", want, on.kinds)
		}
	}
	w := on.daemonSet(t, "nvdp-node-feature-discovery-worker").Spec.Template.Spec.Containers[0]
	if w.Image != "registry.k8s.io/nfd/node-feature-discovery:v0.19.0" {
		t.Errorf("NFD worker image = %s, want registry.k8s.io/nfd/node-feature-discovery:v0.19.0", w.Image)
	}
}

func TestLint(t *testing.T) {
	out, err := helm(t, "lint", "--strict", chartSrc, "--namespace", namespace)
	if err != nil {
		t.Fatalf("helm lint --strict (shipped chart): %v\n%s", err, out)
	}
	files, _ := filepath.Glob("testdata/upstream/*.yaml")
	files = append(files, filepath.Join(repoRoot, "nvidia-device-plugin/values.yaml"))
	for _, values := range files {
		h := readHeader(t, values)
		if h.refused != "" {
			continue
		}
		args := []string{"lint", "--strict", chartSrc, "--namespace", h.namespace, "-f", values}
		if out, err := helm(t, args...); err != nil {
			t.Errorf("helm %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

func TestDefaults(t *testing.T) {
	r := render(t)
	want := []string{"DaemonSet/nvdp-nvidia-device-plugin", "Role/default/nvdp-nvidia-device-plugin-events",
		"RoleBinding/default/nvdp-nvidia-device-plugin-events", "ServiceAccount/nvdp-nvidia-device-plugin-service-account"}
	if strings.Join(r.kinds, " ") != strings.Join(want, " ") {
		t.Errorf("objects = %v, want %v", r.kinds, want)
	}
	ds := r.daemonSet(t, "nvdp-nvidia-device-plugin")
	// Upstream's selector exactly: `helm upgrade` over a release of NVIDIA's chart must not change it.
	if got := fmt.Sprint(ds.Spec.Selector.MatchLabels); got != "map[app.kubernetes.io/instance:nvdp app.kubernetes.io/name:nvidia-device-plugin]" {
		t.Errorf("selector = %s, want upstream's name+instance", got)
	}
	if got := ds.Spec.Template.Labels["app.kubernetes.io/component"]; got != "k8s-device-plugin" {
		t.Errorf("pod label app.kubernetes.io/component = %q, want k8s-device-plugin", got)
	}
	pod := ds.Spec.Template.Spec
	if pod.PriorityClassName != "system-node-critical" || pod.RuntimeClassName != nil || pod.HostNetwork {
		t.Errorf("priorityClassName %q, runtimeClassName %v, hostNetwork %v", pod.PriorityClassName, pod.RuntimeClassName, pod.HostNetwork)
	}
	if len(pod.Containers) != 1 || len(pod.InitContainers) != 0 {
		t.Fatalf("want one container and no init container (no config-manager), got %d/%d", len(pod.Containers), len(pod.InitContainers))
	}
	c := pod.Containers[0]
	if c.Image != "nvdp:"+version(t) || c.ImagePullPolicy != corev1.PullIfNotPresent {
		t.Errorf("image = %s (%s), want nvdp:%s IfNotPresent", c.Image, c.ImagePullPolicy, version(t))
	}
	sc := c.SecurityContext
	if got := fmt.Sprintf("priv=%s ape=%s ro=%s uid=%s %s", boolp(sc.Privileged), boolp(sc.AllowPrivilegeEscalation),
		boolp(sc.ReadOnlyRootFilesystem), int64p(sc.RunAsUser), capsString(sc)); got != "priv=nil ape=false ro=true uid=0 drop=[ALL] add=[]" {
		t.Errorf("securityContext: %s", got)
	}
	expectEnv(t, c, map[string]string{"METRICS_ADDRESS": ":2112", "HEALTH_ADDRESS": "127.0.0.1:2113", "NVIDIA_VISIBLE_DEVICES": "all",
		"NVIDIA_DRIVER_CAPABILITIES": "compute,utility", "NODE_NAME": "fieldRef:spec.nodeName"},
		"MIG_STRATEGY", "FAIL_ON_INIT_ERROR", "PASS_DEVICE_SPECS", "DEVICE_LIST_STRATEGY", "DEVICE_ID_STRATEGY",
		"NVIDIA_DRIVER_ROOT", "CONFIG_FILE_SRCDIR", "DEFAULT_CONFIG", "NVIDIA_MIG_MONITOR_DEVICES")
	// resources: {} as upstream: a user's `resources: {}` and ours merge into nothing.
	if len(c.Resources.Requests) != 0 || len(c.Resources.Limits) != 0 {
		t.Errorf("resources = %+v, want none (upstream's default)", c.Resources)
	}
	expectHealthzProbes(t, c)
	if m := mounts(c); len(m) != 1 || m["/var/lib/kubelet/device-plugins"] != "device-plugin" {
		t.Errorf("mounts = %v, want only /var/lib/kubelet/device-plugins (no MPS root, no CDI directory)", m)
	}
	expectEnv(t, c, nil, "MPS_ROOT", "CDI_SPEC_DIR", "NODE_EVENTS")
	if pod.AutomountServiceAccountToken == nil || !*pod.AutomountServiceAccountToken {
		t.Errorf("automountServiceAccountToken = %s, want true (the plugin posts Node events)", boolp(pod.AutomountServiceAccountToken))
	}
	// Affinity: NFD's NVIDIA PCI label or nvidia.com/gpu.present; not upstream's Tegra term.
	var terms []string
	for _, term := range pod.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms {
		for _, e := range term.MatchExpressions {
			terms = append(terms, fmt.Sprintf("%s %s %v", e.Key, e.Operator, e.Values))
		}
	}
	if got := strings.Join(terms, " | "); got != "feature.node.kubernetes.io/pci-10de.present In [true] | nvidia.com/gpu.present In [true]" {
		t.Errorf("affinity terms = %q", got)
	}
}

// ---- Least privilege (issue 20): one test per finding ------------------------------------------

// The plugin writes its CDI spec only with a CDI strategy, and write access to the node's CDI directory
// is root on the node (a spec names hooks the runtime runs): the directory is mounted, read-write, then
// only, and it is the one the plugin is told to write (--cdi-spec-dir).
func TestCDISpecDirOnlyWithACDIStrategy(t *testing.T) {
	c := render(t).daemonSet(t, "nvdp-nvidia-device-plugin").Spec.Template.Spec.Containers[0]
	expectEnv(t, c, nil, "CDI_SPEC_DIR", "NVIDIA_CDI_HOOK_PATH")
	for path := range mounts(c) {
		if strings.Contains(path, "cdi") {
			t.Errorf("%s mounted without a CDI strategy", path)
		}
	}
	r := render(t, "--set", "deviceListStrategy={cdi-annotations,cdi-cri}", "--set", "cdi.specDir=/etc/cdi")
	pod := r.daemonSet(t, "nvdp-nvidia-device-plugin").Spec.Template.Spec
	c = pod.Containers[0]
	expectEnv(t, c, map[string]string{"DEVICE_LIST_STRATEGY": "cdi-annotations,cdi-cri", "CDI_SPEC_DIR": "/etc/cdi"},
		"NVIDIA_CDI_HOOK_PATH")
	var mount *corev1.VolumeMount
	for i := range c.VolumeMounts {
		if c.VolumeMounts[i].MountPath == "/etc/cdi" {
			mount = &c.VolumeMounts[i]
		}
	}
	if mount == nil || mount.Name != "cdi-spec-dir" || mount.ReadOnly {
		t.Fatalf("spec dir mount = %+v, want cdi-spec-dir at /etc/cdi, read-write", mount)
	}
	for _, v := range pod.Volumes {
		if v.Name == "cdi-spec-dir" && (v.HostPath == nil || v.HostPath.Path != "/etc/cdi" ||
			v.HostPath.Type == nil || *v.HostPath.Type != corev1.HostPathDirectoryOrCreate) {
			t.Errorf("volume cdi-spec-dir = %+v, want hostPath /etc/cdi DirectoryOrCreate", v.VolumeSource)
		}
	}
	if len(pod.InitContainers) != 0 {
		t.Errorf("init containers %v without cdi.installHook", pod.InitContainers)
	}
	// NVIDIA's image writes its spec to /var/run/cdi whatever it is told.
	c = render(t, "--set", "deviceListStrategy=cdi-cri", "--set", "image.repository=nvcr.io/nvidia/k8s-device-plugin").
		daemonSet(t, "nvdp-nvidia-device-plugin").Spec.Template.Spec.Containers[0]
	expectEnv(t, c, nil, "CDI_SPEC_DIR")
	if mounts(c)["/var/run/cdi"] != "cdi-spec-dir" {
		t.Errorf("NVIDIA's image: mounts %v, want cdi-spec-dir at /var/run/cdi", mounts(c))
	}
}

// The toolkit-free path: an init container copies the static hook from the image to the node (with
// nothing but owner access to the directory it creates), and the spec names that copy.
func TestCDIInstallHook(t *testing.T) {
	r := render(t, "--set", "deviceListStrategy=cdi-cri", "--set", "cdi.installHook=true", "--set", "cdi.hookDir=/opt/nvdp/bin/")
	pod := r.daemonSet(t, "nvdp-nvidia-device-plugin").Spec.Template.Spec
	expectEnv(t, pod.Containers[0], map[string]string{"NVIDIA_CDI_HOOK_PATH": "/opt/nvdp/bin/nvdp-cdi-hook",
		"CDI_SPEC_DIR": "/var/run/cdi"})
	if len(pod.InitContainers) != 1 {
		t.Fatalf("init containers = %d, want install-cdi-hook", len(pod.InitContainers))
	}
	ic := pod.InitContainers[0]
	if ic.Name != "install-cdi-hook" || ic.Image != "nvdp:"+version(t) ||
		strings.Join(ic.Command, " ") != "/usr/bin/nvdp cdi install-hook /cdi-hook" {
		t.Errorf("init container %s image %s command %v", ic.Name, ic.Image, ic.Command)
	}
	sc := ic.SecurityContext
	if got := fmt.Sprintf("priv=%s ape=%s ro=%s uid=%s %s", boolp(sc.Privileged), boolp(sc.AllowPrivilegeEscalation),
		boolp(sc.ReadOnlyRootFilesystem), int64p(sc.RunAsUser), capsString(sc)); got != "priv=nil ape=false ro=true uid=0 drop=[ALL] add=[]" {
		t.Errorf("init container securityContext: %s", got)
	}
	if m := mounts(ic); len(m) != 1 || m["/cdi-hook"] != "cdi-hook" {
		t.Errorf("init container mounts %v", m)
	}
	for _, v := range pod.Volumes {
		if v.Name == "cdi-hook" && (v.HostPath == nil || v.HostPath.Path != "/opt/nvdp/bin/") {
			t.Errorf("volume cdi-hook = %+v", v.VolumeSource)
		}
	}
	if _, ok := mounts(pod.Containers[0])["/cdi-hook"]; ok {
		t.Error("the plugin container mounts the hook directory")
	}
}

// The verbs are the calls the code makes (docs/deploy.md lists each with its call site): the plugin
// LISTs and WATCHes its Node (no get), GFD with --output=node GETs and PATCHes it (no update), GFD in
// NodeFeature mode (the default) GETs, creates and updates its NodeFeature in its own namespace and
// GETs its Node (for the owner reference's uid), and in file mode calls nothing.
func TestRBACVerbsAreTheCallsTheCodeMakes(t *testing.T) {
	r := render(t, "--set-string", "config.map.default=version: v1", "--set", "gfd.enabled=true", "--set", "gfd.outputNode=true",
		"--set", "nfd.enabled=false")
	plugin := get[*rbacv1.ClusterRole](t, r, "ClusterRole/nvdp-nvidia-device-plugin-role")
	if got := rules(plugin.Rules); got != "/nodes:list,watch" {
		t.Errorf("plugin ClusterRole = %s, want /nodes:list,watch", got)
	}
	gfd := get[*rbacv1.ClusterRole](t, r, "ClusterRole/nvdp-nvidia-device-plugin-gpu-feature-discovery")
	if got := rules(gfd.Rules); got != "/nodes:list,watch | /nodes:get,patch" {
		t.Errorf("GFD ClusterRole = %s, want /nodes:list,watch (the config label) | /nodes:get,patch (--output=node)", got)
	}
	if r.has("Role/nvidia-device-plugin/nvdp-nvidia-device-plugin-gpu-feature-discovery") {
		t.Error("GFD with --output=node: the NodeFeature Role rendered")
	}
	// GFD with configs follows the node's config label too (so that nvidia.com/mps.capable is the selected
	// config's); in file mode (the features.d file) that is all it calls: LIST and WATCH only.
	r = render(t, "--set-string", "config.map.default=version: v1", "--set", "gfd.enabled=true", "--set", "nfd.enabled=false",
		"--set", "gfd.env[0].name=GFD_USE_NODE_FEATURE_API", "--set-string", "gfd.env[0].value=false")
	gfd = get[*rbacv1.ClusterRole](t, r, "ClusterRole/nvdp-nvidia-device-plugin-gpu-feature-discovery")
	if got := rules(gfd.Rules); got != "/nodes:list,watch" {
		t.Errorf("GFD with configs, file output: ClusterRole = %s, want /nodes:list,watch", got)
	}
	// NodeFeature mode (upstream's default): nodefeatures in GFD's namespace only, its Node read.
	r = render(t, "--set", "gfd.enabled=true", "--set", "nfd.enabled=false")
	gfd = get[*rbacv1.ClusterRole](t, r, "ClusterRole/nvdp-nvidia-device-plugin-gpu-feature-discovery")
	if got := rules(gfd.Rules); got != "/nodes:get" {
		t.Errorf("GFD ClusterRole in NodeFeature mode = %s, want /nodes:get", got)
	}
	role := get[*rbacv1.Role](t, r, "Role/nvidia-device-plugin/nvdp-nvidia-device-plugin-gpu-feature-discovery")
	if got := rules(role.Rules); got != "nfd.k8s-sigs.io/nodefeatures:get,create,update" {
		t.Errorf("GFD Role = %s, want nfd.k8s-sigs.io/nodefeatures:get,create,update", got)
	}
	rb := get[*rbacv1.RoleBinding](t, r, "RoleBinding/nvidia-device-plugin/nvdp-nvidia-device-plugin-gpu-feature-discovery")
	if len(rb.Subjects) != 1 || rb.Subjects[0].Name != "nvdp-nvidia-device-plugin-gpu-feature-discovery" || rb.RoleRef.Kind != "Role" {
		t.Errorf("GFD RoleBinding = %+v -> %+v", rb.Subjects, rb.RoleRef)
	}
	// NVIDIA's GFD image reads its Pod (owner references) and not its Node.
	r = render(t, "--set", "gfd.enabled=true", "--set", "nfd.enabled=false", "--set", "image.repository=nvcr.io/nvidia/k8s-device-plugin")
	role = get[*rbacv1.Role](t, r, "Role/nvidia-device-plugin/nvdp-nvidia-device-plugin-gpu-feature-discovery")
	if got := rules(role.Rules); got != "nfd.k8s-sigs.io/nodefeatures:get,create,update | /pods:get" {
		t.Errorf("GFD Role with NVIDIA's image = %s", got)
	}
	if r.has("ClusterRole/nvdp-nvidia-device-plugin-gpu-feature-discovery") {
		t.Error("NVIDIA's GFD image: a ClusterRole for nodes rendered")
	}
	// File mode (NFD's features.d; gfd.env turns the NodeFeature API off) calls nothing: no RBAC at all.
	r = render(t, "--set", "gfd.enabled=true", "--set", "nfd.enabled=false", "--set", "gfd.env[0].name=GFD_USE_NODE_FEATURE_API",
		"--set-string", "gfd.env[0].value=false")
	if r.has("ClusterRole/nvdp-nvidia-device-plugin-gpu-feature-discovery") || r.has("ClusterRole/nvdp-nvidia-device-plugin-role") ||
		r.has("Role/nvidia-device-plugin/nvdp-nvidia-device-plugin-gpu-feature-discovery") {
		t.Errorf("GFD in file mode, no configs: RBAC rendered: %v", r.ours())
	}
}

// Every GFD pod shares one service account, so RBAC alone lets each patch every Node. The node
// patching belongs to GFD's own account (not the plugin's), and a ValidatingAdmissionPolicy limits
// it to nvidia.com/ labels of the node named in the pod's token.
func TestGFDNodePatchingIsNarrowed(t *testing.T) {
	r := render(t, "--set", "gfd.enabled=true", "--set", "gfd.outputNode=true", "--set", "nfd.enabled=false")
	b := get[*rbacv1.ClusterRoleBinding](t, r, "ClusterRoleBinding/nvdp-nvidia-device-plugin-gpu-feature-discovery")
	if len(b.Subjects) != 1 || b.Subjects[0].Name != "nvdp-nvidia-device-plugin-gpu-feature-discovery" || b.Subjects[0].Namespace != namespace {
		t.Errorf("node patching bound to %+v, want GFD's service account only", b.Subjects)
	}
	gfd := r.daemonSet(t, "nvdp-nvidia-device-plugin-gpu-feature-discovery").Spec.Template.Spec
	if gfd.ServiceAccountName != "nvdp-nvidia-device-plugin-gpu-feature-discovery" {
		t.Errorf("GFD runs as %s", gfd.ServiceAccountName)
	}
	if sa := r.daemonSet(t, "nvdp-nvidia-device-plugin").Spec.Template.Spec.ServiceAccountName; sa == gfd.ServiceAccountName {
		t.Errorf("plugin and GFD share service account %s", sa)
	}
	p := get[*admissionv1.ValidatingAdmissionPolicy](t, r, "ValidatingAdmissionPolicy/nvdp-nvidia-device-plugin-gfd-node-labels")
	if len(p.Spec.MatchConditions) != 1 ||
		p.Spec.MatchConditions[0].Expression != "request.userInfo.username == 'system:serviceaccount:nvidia-device-plugin:nvdp-nvidia-device-plugin-gpu-feature-discovery'" {
		t.Errorf("policy applies to %+v, want GFD's service account", p.Spec.MatchConditions)
	}
	rr := p.Spec.MatchConstraints.ResourceRules
	if len(rr) != 1 || fmt.Sprint(rr[0].Resources, rr[0].Operations) != "[nodes] [UPDATE]" {
		t.Errorf("policy matches %+v, want nodes UPDATE (a PATCH is an UPDATE to admission)", rr)
	}
	if p.Spec.FailurePolicy == nil || *p.Spec.FailurePolicy != admissionv1.Fail {
		t.Error("failurePolicy is not Fail")
	}
	var exprs []string
	for _, v := range p.Spec.Variables {
		exprs = append(exprs, v.Expression)
	}
	for _, v := range p.Spec.Validations {
		exprs = append(exprs, v.Expression)
	}
	all := strings.Join(exprs, "\n")
	for _, want := range []string{"request.userInfo.extra['authentication.kubernetes.io/node-name']",
		"variables.tokenNode == object.metadata.name", "k.startsWith('nvidia.com/')", "object.spec == oldObject.spec",
		"k == 'nvdp.nvidia.com/gfd-labels'"} {
		if !strings.Contains(all, want) {
			t.Errorf("policy lacks %q:\n%s", want, all)
		}
	}
	pb := get[*admissionv1.ValidatingAdmissionPolicyBinding](t, r, "ValidatingAdmissionPolicyBinding/nvdp-nvidia-device-plugin-gfd-node-labels")
	if pb.Spec.PolicyName != p.Name || fmt.Sprint(pb.Spec.ValidationActions) != "[Deny]" {
		t.Errorf("binding = %+v", pb.Spec)
	}
	// Before Kubernetes 1.30 neither the API nor the node claim exists; nodeAdmissionPolicy=false opts out.
	for _, args := range [][]string{{"--kube-version", "1.29.4"}, {"--set", "gfd.nodeAdmissionPolicy=false"}} {
		r = render(t, append([]string{"--set", "gfd.enabled=true", "--set", "gfd.outputNode=true", "--set", "nfd.enabled=false"}, args...)...)
		if r.has("ValidatingAdmissionPolicy/nvdp-nvidia-device-plugin-gfd-node-labels") {
			t.Errorf("%v: policy rendered", args)
		}
	}
}

// The plugin only POSTs events into "default" (where the API server keeps Node events): a Role there
// with `create`, no cluster-wide events rule, no `patch`.
func TestEventsRoleInDefaultOnly(t *testing.T) {
	r := render(t)
	role := get[*rbacv1.Role](t, r, "Role/default/nvdp-nvidia-device-plugin-events")
	if got := rules(role.Rules); got != "/events:create" {
		t.Errorf("events Role = %s, want /events:create", got)
	}
	rb := get[*rbacv1.RoleBinding](t, r, "RoleBinding/default/nvdp-nvidia-device-plugin-events")
	if rb.Namespace != "default" || len(rb.Subjects) != 1 || rb.Subjects[0].Name != "nvdp-nvidia-device-plugin-service-account" ||
		rb.Subjects[0].Namespace != namespace || rb.RoleRef.Kind != "Role" {
		t.Errorf("events RoleBinding = %+v", rb)
	}
	for _, k := range r.kinds {
		if cr, ok := r.objects[k].(*rbacv1.ClusterRole); ok && strings.Contains(rules(cr.Rules), "events") {
			t.Errorf("%s grants events cluster-wide: %s", k, rules(cr.Rules))
		}
	}
	if r = render(t, "--set", "events.enabled=false"); r.has("Role/default/nvdp-nvidia-device-plugin-events") {
		t.Error("events.enabled=false still renders the events Role")
	}
}

// A pod gets its service account token only when one of its features calls the API server.
func TestTokenOnlyWhenAFeatureNeedsIt(t *testing.T) {
	token := func(r *rendered, ds string) string {
		return boolp(r.daemonSet(t, ds).Spec.Template.Spec.AutomountServiceAccountToken)
	}
	const plugin, gfd = "nvdp-nvidia-device-plugin", "nvdp-nvidia-device-plugin-gpu-feature-discovery"
	cases := []struct {
		args        []string
		plugin, gfd string
	}{
		// GFD in NodeFeature mode (the default) calls the API server; in file mode it does not, unless
		// configs make it follow the node's config label
		{[]string{"--set", "events.enabled=false", "--set", "gfd.enabled=true"}, "false", "true"},
		{[]string{"--set", "gfd.enabled=true", "--set", "gfd.env[0].name=GFD_USE_NODE_FEATURE_API", "--set-string", "gfd.env[0].value=false"}, "true", "false"},
		{[]string{"--set", "events.enabled=false", "--set-string", "config.map.default=version: v1", "--set", "gfd.enabled=true",
			"--set", "gfd.env[0].name=USE_NODE_FEATURE_API", "--set-string", "gfd.env[0].value=false"}, "true", "true"},
		{[]string{"--set", "events.enabled=false", "--set", "gfd.enabled=true", "--set", "gfd.outputNode=true"}, "false", "true"},
	}
	for _, tc := range cases {
		r := render(t, append(tc.args, "--set", "nfd.enabled=false")...)
		if got := token(r, plugin); got != tc.plugin {
			t.Errorf("%v: plugin automountServiceAccountToken = %s, want %s", tc.args, got, tc.plugin)
		}
		if got := token(r, gfd); got != tc.gfd {
			t.Errorf("%v: GFD automountServiceAccountToken = %s, want %s", tc.args, got, tc.gfd)
		}
	}
	r := render(t, "--set", "events.enabled=false")
	expectEnv(t, r.daemonSet(t, plugin).Spec.Template.Spec.Containers[0], map[string]string{"NODE_EVENTS": "false"}, "NODE_NAME")
	// With configs NODE_NAME is there (the config label) and the token too, but no events Role: the plugin
	// is told not to post events.
	r = render(t, "--set", "events.enabled=false", "--set-string", "config.map.default=version: v1")
	expectEnv(t, r.daemonSet(t, plugin).Spec.Template.Spec.Containers[0],
		map[string]string{"NODE_EVENTS": "false", "NODE_NAME": "fieldRef:spec.nodeName"})
	if r.has("Role/default/nvdp-nvidia-device-plugin-events") {
		t.Error("events.enabled=false with configs renders the events Role")
	}
	r = render(t, "--set", "events.enabled=false")
	if strings.Join(r.kinds, " ") != "DaemonSet/nvdp-nvidia-device-plugin ServiceAccount/nvdp-nvidia-device-plugin-service-account" {
		t.Errorf("events.enabled=false: objects = %v (want no RBAC at all)", r.kinds)
	}
}

// Only a config file shares GPUs with MPS: without configs the plugin gets no MPS root and no MPS
// DaemonSet is rendered. With configs nvdp's plugin reads the root (read-only; NVIDIA's plugin also
// runs nvidia-cuda-mps-control against it, with the MPS /dev/shm, as upstream's chart mounts them).
func TestMPSOnlyWithConfigs(t *testing.T) {
	const mpsDS = "DaemonSet/nvdp-nvidia-device-plugin-mps-control-daemon"
	r := render(t)
	if r.has(mpsDS) {
		t.Errorf("%s rendered without configs", mpsDS)
	}
	r = render(t, "--set-string", "config.map.default=version: v1", "--set", "mps.root=/var/run/mps")
	if !r.has(mpsDS) {
		t.Fatalf("%s not rendered with a config: %v", mpsDS, r.ours())
	}
	pod := r.daemonSet(t, "nvdp-nvidia-device-plugin").Spec.Template.Spec
	c := pod.Containers[0]
	expectEnv(t, c, map[string]string{"MPS_ROOT": "/var/run/mps"})
	var root *corev1.VolumeMount
	for i := range c.VolumeMounts {
		if c.VolumeMounts[i].MountPath == "/mps" {
			root = &c.VolumeMounts[i]
		}
	}
	if root == nil || root.Name != "mps-root" || !root.ReadOnly {
		t.Errorf("MPS root mount = %+v, want mps-root at /mps, read-only", root)
	}
	if _, ok := mounts(c)["/dev/shm"]; ok {
		t.Error("nvdp's plugin mounts the MPS /dev/shm: it only probes the daemons' sockets")
	}
	for _, v := range pod.Volumes {
		if v.Name == "mps-root" && (v.HostPath == nil || v.HostPath.Path != "/var/run/mps" ||
			v.HostPath.Type == nil || *v.HostPath.Type != corev1.HostPathDirectoryOrCreate) {
			t.Errorf("volume mps-root = %+v", v.VolumeSource)
		}
		if v.Name == "mps-shm" {
			t.Error("volume mps-shm in nvdp's plugin pod")
		}
	}
	// NVIDIA's image: upstream's mounts, read-write, and the shared /dev/shm.
	r = render(t, "--set-string", "config.map.default=version: v1", "--set", "image.repository=nvcr.io/nvidia/k8s-device-plugin")
	c = r.daemonSet(t, "nvdp-nvidia-device-plugin").Spec.Template.Spec.Containers[0]
	if m := mounts(c); m["/mps"] != "mps-root" || m["/dev/shm"] != "mps-shm" {
		t.Errorf("NVIDIA's image: mounts %v, want mps-root at /mps and mps-shm at /dev/shm", m)
	}
	expectEnv(t, c, map[string]string{"MPS_ROOT": "/run/nvidia/mps"})
}

// The MPS control daemon's DaemonSet as upstream's (name, selector, node selector nvidia.com/mps.capable,
// host PID, mount-shm in a privileged init container with Bidirectional propagation, mps.root at /mps and
// its shm at /dev/shm), following the node's config label itself instead of a config-manager sidecar.
func TestMPSDaemonSet(t *testing.T) {
	r := render(t, "--set-string", "config.map.default=version: v1", "--set", "mps.root=/var/run/mps/",
		"--set", "nodeSelector.pool=gpu", "--set", "devicePlugin.logFormat=json")
	ds := r.daemonSet(t, "nvdp-nvidia-device-plugin-mps-control-daemon")
	if got := fmt.Sprint(ds.Spec.Selector.MatchLabels); got != "map[app.kubernetes.io/instance:nvdp app.kubernetes.io/name:nvidia-device-plugin]" {
		t.Errorf("selector = %s, want upstream's", got)
	}
	if got := ds.Spec.Template.Labels["app.kubernetes.io/component"]; got != "mps-control-daemon" {
		t.Errorf("component label = %q", got)
	}
	pod := ds.Spec.Template.Spec
	if fmt.Sprint(pod.NodeSelector) != "map[nvidia.com/mps.capable:true pool:gpu]" {
		t.Errorf("nodeSelector = %v", pod.NodeSelector)
	}
	if !pod.HostPID || pod.ShareProcessNamespace != nil {
		t.Errorf("hostPID = %v, shareProcessNamespace = %s, want host PID (mps.enableHostPID)", pod.HostPID, boolp(pod.ShareProcessNamespace))
	}
	if pod.ServiceAccountName != "nvdp-nvidia-device-plugin-service-account" || boolp(pod.AutomountServiceAccountToken) != "true" {
		t.Errorf("service account %s, token %s: want the plugin's, mounted (it watches its Node's config label)",
			pod.ServiceAccountName, boolp(pod.AutomountServiceAccountToken))
	}
	if len(pod.InitContainers) != 1 || len(pod.Containers) != 1 {
		t.Fatalf("want one init container and one container, got %d/%d", len(pod.InitContainers), len(pod.Containers))
	}
	init := pod.InitContainers[0]
	if strings.Join(init.Command, " ") != "/usr/bin/mps-control-daemon mount-shm" || boolp(init.SecurityContext.Privileged) != "true" ||
		int64p(init.SecurityContext.RunAsUser) != "0" ||
		len(init.VolumeMounts) != 1 || init.VolumeMounts[0].MountPath != "/mps" || init.VolumeMounts[0].MountPropagation == nil ||
		*init.VolumeMounts[0].MountPropagation != corev1.MountPropagationBidirectional {
		t.Errorf("init container = %+v", init)
	}
	c := pod.Containers[0]
	// uid 0: nvdp's image runs as nobody, and a privileged container of another user loses its
	// capabilities at exec (mount-shm failed "Permission denied" in the e2e cluster).
	if strings.Join(c.Command, " ") != "/usr/bin/mps-control-daemon" || strings.Join(c.Args, " ") != "--log-format=json" ||
		boolp(c.SecurityContext.Privileged) != "true" || int64p(c.SecurityContext.RunAsUser) != "0" {
		t.Errorf("container %v %v, privileged %s", c.Command, c.Args, boolp(c.SecurityContext.Privileged))
	}
	// The node's config, selected by its label as the plugin does; no config-manager. The daemon finds
	// the root at /mps (no MPS_ROOT: the host path is not seen in its container).
	expectEnv(t, c, map[string]string{"CONFIG_FILE_SRCDIR": "/available-configs", "NODE_NAME": "fieldRef:spec.nodeName",
		"NVIDIA_VISIBLE_DEVICES": "all", "NVIDIA_DRIVER_CAPABILITIES": "compute,utility", "METRICS_ADDRESS": ":2112",
		"HEALTH_ADDRESS": "127.0.0.1:2114"},
		"MPS_ROOT", "NVIDIA_DRIVER_ROOT")
	if m := mounts(c); len(m) != 3 || m["/mps"] != "mps-root" || m["/dev/shm"] != "mps-shm" || m["/available-configs"] != "available-configs" {
		t.Errorf("mounts = %v", m)
	}
	paths := map[string]string{}
	for _, v := range pod.Volumes {
		if v.HostPath != nil {
			paths[v.Name] = v.HostPath.Path
		}
	}
	if len(paths) != 2 || paths["mps-root"] != "/var/run/mps/" || paths["mps-shm"] != "/var/run/mps/shm" {
		t.Errorf("host paths = %v", paths)
	}
	expectMPSProbe(t, c)
	// Without host PID a shared process namespace, as upstream; component selectors as the other DaemonSets.
	np := render(t, "--set-string", "config.map.default=version: v1", "--set", "mps.enableHostPID=false",
		"--set", "componentSelectorLabels.enabled=true").daemonSet(t, "nvdp-nvidia-device-plugin-mps-control-daemon")
	if np.Spec.Template.Spec.HostPID || boolp(np.Spec.Template.Spec.ShareProcessNamespace) != "true" {
		t.Errorf("enableHostPID=false: hostPID %v, shareProcessNamespace %s", np.Spec.Template.Spec.HostPID,
			boolp(np.Spec.Template.Spec.ShareProcessNamespace))
	}
	if np.Spec.Selector.MatchLabels["app.kubernetes.io/component"] != "mps-control-daemon" {
		t.Errorf("componentSelectorLabels: selector %v", np.Spec.Selector.MatchLabels)
	}
	// Toolkit-free (CDI) nodes: nvidia-cuda-mps-control and the driver's libraries from the driver root.
	dr := render(t, "--set-string", "config.map.default=version: v1", "--set", "nvidiaDriverRoot=/usr/local/nvidia").
		daemonSet(t, "nvdp-nvidia-device-plugin-mps-control-daemon").Spec.Template.Spec.Containers[0]
	expectEnv(t, dr, map[string]string{"NVIDIA_DRIVER_ROOT": "/usr/local/nvidia", "DRIVER_ROOT_CTR_PATH": "/driver-root"})
	if m := mounts(dr); m["/driver-root"] != "driver-root" {
		t.Errorf("nvidiaDriverRoot: mounts %v", m)
	}
	// The plugin's DaemonSet disabled: nothing of MPS either.
	if render(t, "--set-string", "config.map.default=version: v1", "--set", "devicePlugin.enabled=false",
		"--set", "gfd.enabled=true", "--set", "nfd.enabled=false").has("DaemonSet/nvdp-nvidia-device-plugin-mps-control-daemon") {
		t.Error("devicePlugin.enabled=false renders the MPS DaemonSet")
	}
}

// ---- the rest ---------------------------------------------------------------------------------

func TestCompatWithCPUManagerIsPrivileged(t *testing.T) {
	r := render(t, "--set", "compatWithCPUManager=true")
	c := r.daemonSet(t, "nvdp-nvidia-device-plugin").Spec.Template.Spec.Containers[0]
	if boolp(c.SecurityContext.Privileged) != "true" {
		t.Errorf("privileged = %s", boolp(c.SecurityContext.Privileged))
	}
	expectEnv(t, c, map[string]string{"PASS_DEVICE_SPECS": "true"})
	// An explicit securityContext wins over everything.
	r = render(t, "--set", "compatWithCPUManager=true", "--set", "securityContext.runAsUser=7")
	c = r.daemonSet(t, "nvdp-nvidia-device-plugin").Spec.Template.Spec.Containers[0]
	if got := fmt.Sprintf("priv=%s uid=%s", boolp(c.SecurityContext.Privileged), int64p(c.SecurityContext.RunAsUser)); got != "priv=nil uid=7" {
		t.Errorf("explicit securityContext: %s", got)
	}
}

// probeString: what a probe runs and when, as "exec:CMD,ARGS period=P timeout=T failures=F delay=D".
func probeString(p *corev1.Probe) string {
	if p == nil {
		return "none"
	}
	what := "other"
	switch {
	case p.Exec != nil:
		what = "exec:" + strings.Join(p.Exec.Command, ",")
	case p.HTTPGet != nil:
		what = "GET:" + p.HTTPGet.Path + "@" + p.HTTPGet.Port.String()
	}
	return fmt.Sprintf("%s period=%d timeout=%d failures=%d delay=%d", what, p.PeriodSeconds, p.TimeoutSeconds,
		p.FailureThreshold, p.InitialDelaySeconds)
}

// The plugin's probes (issue 20): `nvdp healthz` in the container, which asks HEALTH_ADDRESS on the pod's
// loopback, so no other pod can fail them by holding the metrics port (pod IP). The startup probe gives
// the first registration 5 minutes (2 s x 150); liveness then restarts after 90 s unregistered (30 s x
// 3); each timeout above nvdp healthz's own 5 s.
func expectHealthzProbes(t *testing.T, c corev1.Container) {
	t.Helper()
	for _, tc := range []struct {
		kind  string
		probe *corev1.Probe
		want  string
	}{
		{"startup", c.StartupProbe, "exec:/usr/bin/nvdp,healthz period=2 timeout=10 failures=150 delay=0"},
		{"liveness", c.LivenessProbe, "exec:/usr/bin/nvdp,healthz period=30 timeout=10 failures=3 delay=0"},
		{"readiness", c.ReadinessProbe, "exec:/usr/bin/nvdp,healthz period=10 timeout=10 failures=3 delay=0"},
	} {
		if got := probeString(tc.probe); got != tc.want {
			t.Errorf("%s probe: %s, want %s", tc.kind, got, tc.want)
		}
	}
	for _, p := range c.Ports {
		if p.ContainerPort == 2113 {
			t.Errorf("the health port is published as container port %s: it is loopback only", p.Name)
		}
	}
}

func TestNvdpOptions(t *testing.T) {
	r := render(t, "--set", "devicePlugin.healthPolicy=strict", "--set", "devicePlugin.logFormat=json",
		"--set", "devicePlugin.healthRecoveryInterval=5m", "--set", "metrics.enabled=false",
		"--set", "image.repository=registry.example/nvdp", "--set", "image.tag=dev")
	ds := r.daemonSet(t, "nvdp-nvidia-device-plugin")
	c := ds.Spec.Template.Spec.Containers[0]
	if strings.Join(c.Args, " ") != "--health-policy=strict --health-recovery-interval=5m --log-format=json" {
		t.Errorf("args = %v", c.Args)
	}
	if c.Image != "registry.example/nvdp:dev" {
		t.Errorf("image = %s", c.Image)
	}
	expectEnv(t, c, map[string]string{"HEALTH_ADDRESS": "127.0.0.1:2113"}, "METRICS_ADDRESS")
	if len(c.Ports) != 0 || ds.Spec.Template.Annotations["prometheus.io/scrape"] != "" {
		t.Error("metrics disabled but ports/annotations rendered")
	}
	// The probes do not need the metrics port: they stay without it.
	expectHealthzProbes(t, c)
	// Another health port: the env follows, the probes (which read it) stay the same.
	c = render(t, "--set", "devicePlugin.healthPort=9101").daemonSet(t, "nvdp-nvidia-device-plugin").Spec.Template.Spec.Containers[0]
	expectEnv(t, c, map[string]string{"HEALTH_ADDRESS": "127.0.0.1:9101", "METRICS_ADDRESS": ":2112"})
	if got := probeString(c.LivenessProbe); got != "exec:/usr/bin/nvdp,healthz period=30 timeout=10 failures=3 delay=0" {
		t.Errorf("liveness with healthPort 9101: %s", got)
	}
}

// The MPS control daemon's readiness probe (issue 20): `nvdp healthz` in its container, asking
// HEALTH_ADDRESS on the pod's loopback (mps.healthPort, 2114), so no other pod can hold it NotReady by
// holding the metrics port. Readiness only (a restart would stop every MPS server of the node); the
// timeout above nvdp healthz's own 5 s.
func expectMPSProbe(t *testing.T, c corev1.Container) {
	t.Helper()
	if got, want := probeString(c.ReadinessProbe), "exec:/usr/bin/nvdp,healthz period=10 timeout=10 failures=3 delay=0"; got != want {
		t.Errorf("MPS readiness probe: %s, want %s", got, want)
	}
	if c.LivenessProbe != nil || c.StartupProbe != nil {
		t.Errorf("MPS probes: liveness %s, startup %s: want readiness only", probeString(c.LivenessProbe), probeString(c.StartupProbe))
	}
	for _, p := range c.Ports {
		if p.ContainerPort == 2114 {
			t.Errorf("the MPS health port is published as container port %s: it is loopback only", p.Name)
		}
	}
}

// The MPS control daemon's probe does not need the metrics port, follows mps.healthPort, and is not
// there with NVIDIA's image (whose mps-control-daemon answers no /healthz).
func TestMPSHealthPort(t *testing.T) {
	const mpsDS = "nvdp-nvidia-device-plugin-mps-control-daemon"
	c := render(t, "--set-string", "config.map.default=version: v1", "--set", "metrics.enabled=false").
		daemonSet(t, mpsDS).Spec.Template.Spec.Containers[0]
	expectEnv(t, c, map[string]string{"HEALTH_ADDRESS": "127.0.0.1:2114"}, "METRICS_ADDRESS")
	if len(c.Ports) != 0 {
		t.Errorf("metrics disabled: ports %v", c.Ports)
	}
	expectMPSProbe(t, c)
	c = render(t, "--set-string", "config.map.default=version: v1", "--set", "mps.healthPort=9102").
		daemonSet(t, mpsDS).Spec.Template.Spec.Containers[0]
	expectEnv(t, c, map[string]string{"HEALTH_ADDRESS": "127.0.0.1:9102", "METRICS_ADDRESS": ":2112"})
	expectMPSProbe(t, c)
	// The plugin's health port is its own (another pod's loopback).
	p := render(t, "--set-string", "config.map.default=version: v1", "--set", "mps.healthPort=9102").
		daemonSet(t, "nvdp-nvidia-device-plugin").Spec.Template.Spec.Containers[0]
	expectEnv(t, p, map[string]string{"HEALTH_ADDRESS": "127.0.0.1:2113"})
	c = render(t, "--set-string", "config.map.default=version: v1", "--set", "image.repository=nvcr.io/nvidia/k8s-device-plugin",
		"--set", "image.tag=v0.20.0").daemonSet(t, mpsDS).Spec.Template.Spec.Containers[0]
	if c.ReadinessProbe != nil || c.LivenessProbe != nil || len(c.Ports) != 0 {
		t.Errorf("NVIDIA's image: MPS probes %s/%s, ports %v", probeString(c.ReadinessProbe), probeString(c.LivenessProbe), c.Ports)
	}
	expectEnv(t, c, nil, "HEALTH_ADDRESS", "METRICS_ADDRESS")
}

// NVIDIA's image answers no /healthz and takes no nvdp flag: a values file pinning it gets neither.
func TestNVIDIAImageGetsNoNvdpExtras(t *testing.T) {
	r := render(t, "--set", "image.repository=nvcr.io/nvidia/k8s-device-plugin", "--set", "image.tag=v0.20.0",
		"--set", "devicePlugin.healthPolicy=strict", "--set", "metrics.serviceMonitor.enabled=true",
		"--set", "gfd.enabled=true", "--set", "gfd.outputNode=true", "--set", "nfd.enabled=false")
	ds := r.daemonSet(t, "nvdp-nvidia-device-plugin")
	c := ds.Spec.Template.Spec.Containers[0]
	if c.LivenessProbe != nil || c.ReadinessProbe != nil || c.StartupProbe != nil || len(c.Ports) != 0 || len(c.Args) != 0 ||
		len(ds.Spec.Template.Annotations) != 0 {
		t.Errorf("NVIDIA's image got probes %v/%v/%v, ports %v, args %v, annotations %v", c.StartupProbe, c.LivenessProbe,
			c.ReadinessProbe, c.Ports, c.Args, ds.Spec.Template.Annotations)
	}
	expectEnv(t, c, nil, "METRICS_ADDRESS", "HEALTH_ADDRESS")
	if r.has("Service/nvdp-nvidia-device-plugin-metrics") || r.has("ServiceMonitor/nvdp-nvidia-device-plugin") {
		t.Error("metrics Service/ServiceMonitor rendered for NVIDIA's image")
	}
	if g := r.daemonSet(t, "nvdp-nvidia-device-plugin-gpu-feature-discovery").Spec.Template.Spec.Containers[0]; len(g.Args) != 0 {
		t.Errorf("GFD args %v for NVIDIA's image", g.Args)
	}
	// A mirror of NVIDIA's image is NVIDIA's image; nvdp's image in any registry is nvdp's.
	// No probes even with metrics off and a health port set: nothing in NVIDIA's image answers them.
	if c := render(t, "--set", "image.repository=mirror.example/nvidia/k8s-device-plugin", "--set", "metrics.enabled=false",
		"--set", "devicePlugin.healthPort=9101").daemonSet(t, "nvdp-nvidia-device-plugin").Spec.Template.Spec.Containers[0]; c.LivenessProbe != nil ||
		c.ReadinessProbe != nil || c.StartupProbe != nil || envMap(c)["HEALTH_ADDRESS"] != "" {
		t.Error("mirrored NVIDIA image got probes or HEALTH_ADDRESS")
	}
	if c := render(t, "--set", "image.repository=ghcr.io/example/nvdp").daemonSet(t, "nvdp-nvidia-device-plugin").Spec.Template.Spec.Containers[0]; c.LivenessProbe == nil {
		t.Error("nvdp's image in a registry lost its probes")
	}
	// The NetworkPolicy is for nvdp's metrics port: none with NVIDIA's image.
	if r := render(t, "--set", "image.repository=nvcr.io/nvidia/k8s-device-plugin", "--set", "metrics.networkPolicy.enabled=true"); r.has("NetworkPolicy/nvdp-nvidia-device-plugin-metrics") {
		t.Error("NetworkPolicy rendered for NVIDIA's image")
	}
}

// Under helm template (and Argo CD) lookup sees no cluster: nothing is rendered that could collide
// with the RuntimeClass k3s or the GPU Operator made. create=always renders it; false never.
func TestRuntimeClassModes(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, ""},
		{[]string{"--set", "runtimeClass.create=always"}, "RuntimeClass/nvidia"},
		{[]string{"--set", "runtimeClass.create=always", "--set", "deviceListStrategy=cdi-cri"}, "RuntimeClass/nvidia RuntimeClass/nvidia-cdi"},
		{[]string{"--set", "runtimeClass.create=false"}, ""},
	} {
		r := render(t, tc.args...)
		var got []string
		for _, k := range r.kinds {
			if strings.HasPrefix(k, "RuntimeClass/") {
				got = append(got, k)
			}
		}
		if strings.Join(got, " ") != tc.want {
			t.Errorf("%v: RuntimeClasses %v, want %q", tc.args, got, tc.want)
		}
	}
	rc := get[*nodev1.RuntimeClass](t, render(t, "--set", "runtimeClass.create=always"), "RuntimeClass/nvidia")
	if rc.Handler != "nvidia" {
		t.Errorf("handler = %q", rc.Handler)
	}
}

func TestServiceMonitor(t *testing.T) {
	r := render(t, "--set", "metrics.serviceMonitor.enabled=true", "--set", "metrics.serviceMonitor.labels.release=prom")
	svc := get[*corev1.Service](t, r, "Service/nvdp-nvidia-device-plugin-metrics")
	if svc.Spec.ClusterIP != "None" || svc.Spec.Ports[0].TargetPort.String() != "metrics" ||
		svc.Spec.Selector["app.kubernetes.io/component"] != "k8s-device-plugin" {
		t.Errorf("service = %+v", svc.Spec)
	}
	// The Service selects exactly the plugin's pods.
	pods := r.daemonSet(t, "nvdp-nvidia-device-plugin").Spec.Template.Labels
	for k, v := range svc.Spec.Selector {
		if pods[k] != v {
			t.Errorf("service selects %s=%s, plugin pods have %q", k, v, pods[k])
		}
	}
	sm := get[*serviceMonitor](t, r, "ServiceMonitor/nvdp-nvidia-device-plugin")
	if sm.Labels["release"] != "prom" || sm.Spec.Endpoints[0].Port != "metrics" || sm.Spec.Endpoints[0].Path != "/metrics" {
		t.Errorf("servicemonitor = %+v", sm)
	}
}

// metrics.networkPolicy: off by default (upgrades change nothing; TestDefaults lists the objects). On, only
// the given sources reach the metrics port, of the plugin and the MPS control daemon pods and no others.
func TestNetworkPolicy(t *testing.T) {
	const key = "NetworkPolicy/nvdp-nvidia-device-plugin-metrics"
	if r := render(t, "--set", "metrics.networkPolicy.enabled=false"); r.has(key) {
		t.Errorf("%s rendered while off", key)
	}
	r := render(t, "--set", "metrics.networkPolicy.enabled=true", "--set", "gfd.enabled=true", "--set", "nfd.enabled=false",
		"--set-string", "config.map.default=version: v1")
	np := get[*networkingv1.NetworkPolicy](t, r, key)
	if np.Namespace != namespace {
		t.Errorf("namespace %q, want %q", np.Namespace, namespace)
	}
	if got := fmt.Sprint(np.Spec.PolicyTypes); got != "[Ingress]" {
		t.Errorf("policyTypes %s, want [Ingress] (egress untouched)", got)
	}
	peers := func(np *networkingv1.NetworkPolicy) string {
		var l []string
		for _, rule := range np.Spec.Ingress {
			var from, ports []string
			for _, f := range rule.From {
				s := ""
				if f.NamespaceSelector != nil {
					s += "ns:" + metav1.FormatLabelSelector(f.NamespaceSelector)
				}
				if f.PodSelector != nil {
					s += "pod:" + metav1.FormatLabelSelector(f.PodSelector)
				}
				from = append(from, s)
			}
			for _, p := range rule.Ports {
				ports = append(ports, fmt.Sprintf("%s/%s", *p.Protocol, p.Port.String()))
			}
			l = append(l, strings.Join(from, "+")+" -> "+strings.Join(ports, ","))
		}
		return strings.Join(l, " | ")
	}
	if got := peers(np); got != "ns:kubernetes.io/metadata.name=monitoring -> TCP/2112" {
		t.Errorf("ingress %s, want the monitoring namespace to port 2112 only", got)
	}
	sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
	if err != nil {
		t.Fatal(err)
	}
	for ds, want := range map[string]bool{"nvdp-nvidia-device-plugin": true, "nvdp-nvidia-device-plugin-mps-control-daemon": true,
		"nvdp-nvidia-device-plugin-gpu-feature-discovery": false} {
		pod := r.daemonSet(t, ds).Spec.Template
		if got := sel.Matches(labels.Set(pod.Labels)); got != want {
			t.Errorf("podSelector %s selects %s's pods: %v, want %v", sel, ds, got, want)
		}
	}
	// Sources and the port as the user sets them.
	values := filepath.Join(t.TempDir(), "np.yaml")
	if err := os.WriteFile(values, []byte(`metrics:
  port: 9100
  networkPolicy:
    enabled: true
    from:
    - podSelector:
        matchLabels:
          app.kubernetes.io/name: prometheus
      namespaceSelector:
        matchLabels:
          kubernetes.io/metadata.name: observability
    - namespaceSelector:
        matchLabels:
          team: sre
`), 0o644); err != nil {
		t.Fatal(err)
	}
	np = get[*networkingv1.NetworkPolicy](t, render(t, "-f", values), key)
	if got := peers(np); got != "ns:kubernetes.io/metadata.name=observabilitypod:app.kubernetes.io/name=prometheus+ns:team=sre -> TCP/9100" {
		t.Errorf("ingress %s", got)
	}
	// No metrics port, nothing to guard.
	if r := render(t, "--set", "metrics.networkPolicy.enabled=true", "--set", "metrics.enabled=false"); r.has(key) {
		t.Errorf("%s rendered without metrics", key)
	}
}

func TestJustModuleValues(t *testing.T) {
	r := render(t, "-f", filepath.Join(repoRoot, "nvidia-device-plugin/values.yaml"))
	if !r.has("DaemonSet/nvdp-nvidia-device-plugin-gpu-feature-discovery") || !r.has("DaemonSet/nvdp-node-feature-discovery-worker") {
		t.Errorf("GFD and NFD not enabled by the just module's values: %v", r.kinds)
	}
	pod := r.daemonSet(t, "nvdp-nvidia-device-plugin").Spec.Template.Spec
	if pod.RuntimeClassName == nil || *pod.RuntimeClassName != "nvidia" {
		t.Error("just module values: plugin pods must use runtimeClassName nvidia on k3s")
	}
}

func TestRefusedValues(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--namespace", "default"}, `Installing into the "default" namespace is refused`},
		{[]string{"--set", "namespace=gpu"}, `Value 'namespace' set to "gpu"`},
		{[]string{"--set", "config.name=x", "--set-string", "config.map.a=version: v1"}, "config.name and config.map are mutually exclusive"},
		{[]string{"--set-string", "config.map.a=v", "--set-string", "config.map.b=v"}, "config.map holds several configs but none is the default"},
		{[]string{"--set-string", "config.map.a=v", "--set-string", "config.map.b=v", "--set", "config.fallbackStrategies={single}"}, "config.map holds several configs but none is the default"},
		{[]string{"--set", "migStrategy=both"}, `migStrategy: unknown strategy "both"`},
		{[]string{"--set", `deviceListStrategy=envvar\,bogus`}, `deviceListStrategy: unknown strategy "bogus"`},
		{[]string{"--set", "deviceDiscoveryStrategy=tegra"}, "deviceDiscoveryStrategy: tegra (Jetson and other Tegra systems without NVML) is not implemented by nvdp yet"},
		{[]string{"--set", "deviceDiscoveryStrategy=vfio"}, `deviceDiscoveryStrategy: unknown strategy "vfio"`},
		{[]string{"--set", "runtimeClass.create=maybe"}, `runtimeClass.create: "maybe" is not true, false or always.`},
		{[]string{"--set", "cdi.installHook=true"}, "cdi.installHook needs a CDI deviceListStrategy"},
		{[]string{"--set", "cdi.installHook=true", "--set", "deviceListStrategy=cdi-cri", "--set", "image.repository=nvcr.io/nvidia/k8s-device-plugin"},
			"cdi.installHook copies nvdp's hook from nvdp's image"},
		{[]string{"--set", "cdi.installHook=true", "--set", "deviceListStrategy=cdi-cri", "--set", "cdi.nvidiaHookPath=/usr/bin/nvidia-cdi-hook"},
			"cdi.installHook and cdi.nvidiaHookPath both name the hook"},
		{[]string{"--set", "cdi.installHook=true", "--set", "deviceListStrategy=cdi-cri", "--set", "cdi.hookDir=bin"},
			`cdi.hookDir: "bin" is not an absolute path on the node.`},
		{[]string{"--set", "cdi.specDir=cdi"}, `cdi.specDir: "cdi" is not an absolute path on the node.`},
		{[]string{"--set", "mps.root=mps"}, `mps.root: "mps" is not an absolute path on the node.`},
		{[]string{"--set", "devicePlugin.healthPort=0"}, `devicePlugin.healthPort: "0" is not a port number (1-65535).`},
		{[]string{"--set", "devicePlugin.healthPort=65536"}, `devicePlugin.healthPort: "65536" is not a port number (1-65535).`},
		{[]string{"--set", "devicePlugin.healthPort=http"}, `devicePlugin.healthPort: "http" is not a port number (1-65535).`},
		{[]string{"--set", "devicePlugin.healthPort=2112"}, "devicePlugin.healthPort and metrics.port are both 2112"},
		{[]string{"--set", "metrics.port=9000", "--set", "devicePlugin.healthPort=9000"}, "devicePlugin.healthPort and metrics.port are both 9000"},
		{[]string{"--set", "mps.healthPort=0"}, `mps.healthPort: "0" is not a port number (1-65535).`},
		{[]string{"--set", "mps.healthPort=65536"}, `mps.healthPort: "65536" is not a port number (1-65535).`},
		{[]string{"--set", "mps.healthPort=health"}, `mps.healthPort: "health" is not a port number (1-65535).`},
		{[]string{"--set", "mps.healthPort=2112"}, "mps.healthPort and metrics.port are both 2112"},
		{[]string{"--set", "metrics.port=9000", "--set", "mps.healthPort=9000"}, "mps.healthPort and metrics.port are both 9000"},
		{[]string{"--set", "metrics.networkPolicy.enabled=true", "--set", "metrics.networkPolicy.from=null"},
			"metrics.networkPolicy.from is empty: a NetworkPolicy rule without sources lets every source in"},
		{[]string{"--set", "metrics.networkPolicy.enabled=true", "--set", "devicePlugin.enableHostNetwork=true"},
			"metrics.networkPolicy does nothing for pods on the host network"},
	}
	for _, tc := range cases {
		args := append([]string{"template", "nvdp", chartSrc, "--namespace", namespace}, tc.args...)
		out, err := helm(t, args...)
		if err == nil || !strings.Contains(out, tc.want) {
			t.Errorf("helm %v: err=%v, output %q, want it to fail with %q", tc.args, err, out, tc.want)
		}
	}
	// allowDefaultNamespace lifts the refusal; several configs are fine with a named default or the
	// empty fallback (as upstream).
	render(t, "--namespace", "default", "--set", "allowDefaultNamespace=true")
	render(t, "--set-string", "config.map.a=v", "--set-string", "config.map.default=v")
	render(t, "--set-string", "config.map.a=v", "--set-string", "config.map.b=v", "--set", "config.fallbackStrategies={empty}")
	// The health port may equal the metrics port when nothing listens there.
	render(t, "--set", "devicePlugin.healthPort=2112", "--set", "metrics.enabled=false")
	render(t, "--set", "mps.healthPort=2112", "--set", "metrics.enabled=false")
	// The two daemons' health ports are on different pods' loopbacks: the same port is fine.
	render(t, "--set-string", "config.map.default=version: v1", "--set", "mps.healthPort=2113")
}

// dra.enabled: the DRA driver replaces the device plugin (never both on a node), with the RBAC of the
// calls it makes and NVIDIA's DeviceClasses.
func TestDRA(t *testing.T) {
	r := render(t, "--set", "dra.enabled=true", "--set", "nfd.enabled=false")
	want := []string{"ClusterRole/nvdp-nvidia-device-plugin-dra", "ClusterRoleBinding/nvdp-nvidia-device-plugin-dra",
		"DaemonSet/nvdp-nvidia-device-plugin-dra", "DeviceClass/gpu.nvidia.com", "DeviceClass/mig.nvidia.com",
		"ServiceAccount/nvdp-nvidia-device-plugin-service-account"}
	if got := r.ours(); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("objects = %v, want %v (no device plugin DaemonSet, no events Role)", got, want)
	}
	role := get[*rbacv1.ClusterRole](t, r, "ClusterRole/nvdp-nvidia-device-plugin-dra")
	if got := rules(role.Rules); got != "/nodes:get | resource.k8s.io/resourceslices:list,create,patch,delete | "+
		"resource.k8s.io/resourceclaims:get" {
		t.Errorf("DRA ClusterRole = %s", got)
	}
	ds := r.daemonSet(t, "nvdp-nvidia-device-plugin-dra")
	if got := ds.Spec.Selector.MatchLabels["app.kubernetes.io/component"]; got != "dra-kubelet-plugin" {
		t.Errorf("selector %v: want the component label dra-kubelet-plugin (no overlap with GFD)", ds.Spec.Selector.MatchLabels)
	}
	pod := ds.Spec.Template.Spec
	c := pod.Containers[0]
	if strings.Join(c.Command, " ") != "/usr/bin/nvdp dra" {
		t.Errorf("command = %v, want /usr/bin/nvdp dra", c.Command)
	}
	expectEnv(t, c, map[string]string{"NODE_NAME": "fieldRef:spec.nodeName",
		"KUBELET_PLUGINS_DIRECTORY_PATH": "/var/lib/kubelet/plugins", "KUBELET_REGISTRAR_DIRECTORY_PATH": "/var/lib/kubelet/plugins_registry",
		"CDI_ROOT": "/var/run/cdi"}, "METRICS_ADDRESS", "DEVICE_LIST_STRATEGY")
	if m := mounts(c); len(m) != 3 || m["/var/lib/kubelet/plugins"] != "plugins" || m["/var/lib/kubelet/plugins_registry"] != "plugins-registry" ||
		m["/var/run/cdi"] != "cdi" {
		t.Errorf("mounts = %v", m)
	}
	if pod.AutomountServiceAccountToken == nil || !*pod.AutomountServiceAccountToken {
		t.Error("the DRA driver calls the API server: its token must be mounted")
	}
	if sc := c.SecurityContext; boolp(sc.Privileged) != "nil" || capsString(sc) != "drop=[ALL] add=[]" {
		t.Errorf("securityContext: privileged %s, %s", boolp(sc.Privileged), capsString(sc))
	}
	gpu := get[*resourcev1.DeviceClass](t, r, "DeviceClass/gpu.nvidia.com")
	if gpu.Spec.ExtendedResourceName == nil || *gpu.Spec.ExtendedResourceName != "nvidia.com/gpu" ||
		len(gpu.Spec.Selectors) != 1 || gpu.Spec.Selectors[0].CEL.Expression !=
		"device.driver == 'gpu.nvidia.com' && device.attributes['gpu.nvidia.com'].type == 'gpu'" {
		t.Errorf("DeviceClass gpu.nvidia.com: %+v", gpu.Spec)
	}
	mig := get[*resourcev1.DeviceClass](t, r, "DeviceClass/mig.nvidia.com")
	if mig.Spec.ExtendedResourceName != nil || mig.Spec.Selectors[0].CEL.Expression !=
		"device.driver == 'gpu.nvidia.com' && device.attributes['gpu.nvidia.com'].type == 'mig'" {
		t.Errorf("DeviceClass mig.nvidia.com: %+v", mig.Spec)
	}

	// cdi.installHook: the DRA driver's claim specs name the hook its init container copies to the node.
	hr := render(t, "--set", "dra.enabled=true", "--set", "cdi.installHook=true", "--set", "cdi.hookDir=/opt/hook",
		"--set", "nfd.enabled=false")
	hpod := hr.daemonSet(t, "nvdp-nvidia-device-plugin-dra").Spec.Template.Spec
	if len(hpod.InitContainers) != 1 || strings.Join(hpod.InitContainers[0].Command, " ") != "/usr/bin/nvdp cdi install-hook /cdi-hook" {
		t.Errorf("DRA with cdi.installHook: init containers %+v, want nvdp cdi install-hook /cdi-hook", hpod.InitContainers)
	}
	expectEnv(t, hpod.Containers[0], map[string]string{"NVIDIA_CDI_HOOK_PATH": "/opt/hook/nvdp-cdi-hook"})
	if len(pod.InitContainers) != 0 {
		t.Errorf("DRA without cdi.installHook has init containers %+v", pod.InitContainers)
	}

	if r := render(t, "--set", "dra.enabled=true", "--set", "dra.deviceClasses=false", "--set", "nfd.enabled=false"); r.has("DeviceClass/gpu.nvidia.com") {
		t.Error("dra.deviceClasses=false still renders DeviceClasses")
	}
	if r := render(t); r.has("DaemonSet/nvdp-nvidia-device-plugin-dra") || r.has("DeviceClass/gpu.nvidia.com") {
		t.Errorf("DRA objects rendered by default: %v", r.ours())
	}
	out, err := helm(t, "template", "nvdp", chartSrc, "--namespace", namespace, "--set", "dra.enabled=true",
		"--set", "image.repository=nvcr.io/nvidia/k8s-device-plugin")
	if err == nil || !strings.Contains(out, "dra.enabled needs nvdp's image") {
		t.Errorf("dra.enabled with NVIDIA's image: err %v, output %s", err, out)
	}
}
