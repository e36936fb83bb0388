// Tests of the Helm chart: the real helm renders it, every object is decoded strictly into the
// Kubernetes API types (an unknown or misplaced field fails), and the values users rely on are
// checked in the rendered objects.
package deploy

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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

var chartSrc = filepath.Join(repoRoot, "deploy/helm/nvidia-device-plugin")

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

// chartCopy returns a copy of the chart that helm can render offline. The NFD subchart cannot be
// fetched here (no network), and helm refuses to render a chart whose declared dependency is
// missing from charts/ even when its condition is false; so unless it was fetched, the copy drops
// the dependency list. Everything else is the chart as shipped.
func chartCopy(t *testing.T) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "nvidia-device-plugin")
	if out, err := exec.Command("cp", "-r", chartSrc, dst).CombinedOutput(); err != nil {
		t.Fatalf("copy chart: %v: %s", err, out)
	}
	matches, _ := filepath.Glob(filepath.Join(dst, "charts", "node-feature-discovery-*.tgz"))
	if len(matches) > 0 {
		return dst
	}
	raw, err := os.ReadFile(filepath.Join(dst, "Chart.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var chart map[string]any
	if err := yaml.Unmarshal(raw, &chart); err != nil {
		t.Fatal(err)
	}
	if _, ok := chart["dependencies"]; !ok {
		t.Fatal("Chart.yaml declares no dependencies; expected node-feature-discovery")
	}
	delete(chart, "dependencies")
	out, _ := yaml.Marshal(chart)
	if err := os.WriteFile(filepath.Join(dst, "Chart.yaml"), out, 0o644); err != nil {
		t.Fatal(err)
	}
	return dst
}

type rendered struct {
	docs    map[string][]byte // "Kind/name" -> YAML
	kinds   []string
	objects map[string]any
}

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

// render runs helm template with the given extra arguments and decodes every document strictly.
func render(t *testing.T, args ...string) *rendered {
	t.Helper()
	all := append([]string{"template", "nvdp", chartCopy(t), "--namespace", namespace}, args...)
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
	case "rbac.authorization.k8s.io/v1 ClusterRole":
		return &rbacv1.ClusterRole{}
	case "rbac.authorization.k8s.io/v1 ClusterRoleBinding":
		return &rbacv1.ClusterRoleBinding{}
	case "node.k8s.io/v1 RuntimeClass":
		return &nodev1.RuntimeClass{}
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

func (r *rendered) has(key string) bool {
	_, ok := r.objects[key]
	return ok
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

func TestLint(t *testing.T) {
	// The chart as shipped: the missing NFD subchart is a warning, not a failure.
	out, err := helm(t, "lint", chartSrc, "--namespace", namespace)
	if err != nil {
		t.Fatalf("helm lint (shipped chart): %v\n%s", err, out)
	}
	for _, values := range []string{"", "testdata/values-time-slicing.yaml", "testdata/values-mig-mixed.yaml",
		"testdata/values-upstream-keys.yaml",
		filepath.Join(repoRoot, "nvidia-device-plugin/values.yaml")} {
		args := []string{"lint", "--strict", chartCopy(t), "--namespace", namespace}
		if values != "" {
			args = append(args, "-f", values)
		}
		if out, err := helm(t, args...); err != nil {
			t.Errorf("helm %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

func TestDefaults(t *testing.T) {
	r := render(t)
	want := []string{"ClusterRole/nvdp-nvidia-device-plugin-role",
		"ClusterRoleBinding/nvdp-nvidia-device-plugin-role-binding", "DaemonSet/nvdp-nvidia-device-plugin",
		"RuntimeClass/nvidia", "ServiceAccount/nvdp-nvidia-device-plugin-service-account"}
	if strings.Join(r.kinds, " ") != strings.Join(want, " ") {
		t.Errorf("objects = %v, want %v", r.kinds, want)
	}
	// Node events are on by default: the plugin may create events, and nothing else.
	if role := r.objects["ClusterRole/nvdp-nvidia-device-plugin-role"].(*rbacv1.ClusterRole); len(role.Rules) != 1 ||
		fmt.Sprint(role.Rules[0].APIGroups, role.Rules[0].Resources, role.Rules[0].Verbs) != "[] [events] [create patch]" {
		t.Errorf("default rules = %+v, want only events create/patch", role.Rules)
	}
	ds := r.daemonSet(t, "nvdp-nvidia-device-plugin")
	if ds.Namespace != namespace {
		t.Errorf("namespace = %q", ds.Namespace)
	}
	pod := ds.Spec.Template.Spec
	if pod.PriorityClassName != "system-node-critical" {
		t.Errorf("priorityClassName = %q", pod.PriorityClassName)
	}
	if pod.RuntimeClassName != nil {
		t.Errorf("runtimeClassName = %q, want unset (upstream default)", *pod.RuntimeClassName)
	}
	if len(pod.Containers) != 1 || len(pod.InitContainers) != 0 {
		t.Fatalf("want one container and no init container (no config-manager), got %d/%d", len(pod.Containers), len(pod.InitContainers))
	}
	c := pod.Containers[0]
	if c.Image != "nvdp:"+version(t) || c.ImagePullPolicy != corev1.PullIfNotPresent {
		t.Errorf("image = %s (%s), want nvdp:%s IfNotPresent", c.Image, c.ImagePullPolicy, version(t))
	}
	if strings.Join(c.Command, " ") != "/usr/bin/nvidia-device-plugin" || len(c.Args) != 0 {
		t.Errorf("command/args = %v %v", c.Command, c.Args)
	}
	sc := c.SecurityContext
	if got := fmt.Sprintf("priv=%s ape=%s ro=%s uid=%s %s", boolp(sc.Privileged), boolp(sc.AllowPrivilegeEscalation),
		boolp(sc.ReadOnlyRootFilesystem), int64p(sc.RunAsUser), capsString(sc)); got != "priv=nil ape=false ro=true uid=0 drop=[ALL] add=[]" {
		t.Errorf("securityContext: %s", got)
	}
	expectEnv(t, c, map[string]string{"METRICS_ADDRESS": ":2112", "NVIDIA_VISIBLE_DEVICES": "all",
		"NVIDIA_DRIVER_CAPABILITIES": "compute,utility", "NODE_NAME": "fieldRef:spec.nodeName"},
		"MIG_STRATEGY", "FAIL_ON_INIT_ERROR", "PASS_DEVICE_SPECS", "DEVICE_LIST_STRATEGY", "DEVICE_ID_STRATEGY",
		"NVIDIA_DRIVER_ROOT", "CONFIG_FILE_SRCDIR", "DEFAULT_CONFIG", "NVIDIA_MIG_MONITOR_DEVICES")
	if got := c.Resources.Requests.Cpu().String() + "/" + c.Resources.Requests.Memory().String(); got != "10m/10Mi" {
		t.Errorf("requests = %s, want 10m/10Mi", got)
	}
	if c.LivenessProbe == nil || c.LivenessProbe.HTTPGet == nil || c.LivenessProbe.HTTPGet.Path != "/healthz" ||
		c.LivenessProbe.HTTPGet.Port.String() != "metrics" {
		t.Errorf("livenessProbe = %+v, want GET /healthz on port metrics", c.LivenessProbe)
	}
	if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil || c.ReadinessProbe.HTTPGet.Path != "/healthz" {
		t.Errorf("readinessProbe = %+v", c.ReadinessProbe)
	}
	if len(c.Ports) != 1 || c.Ports[0].Name != "metrics" || c.Ports[0].ContainerPort != 2112 {
		t.Errorf("ports = %+v", c.Ports)
	}
	ann := ds.Spec.Template.Annotations
	if ann["prometheus.io/scrape"] != "true" || ann["prometheus.io/port"] != "2112" || ann["prometheus.io/path"] != "/metrics" {
		t.Errorf("scrape annotations = %v", ann)
	}
	if m := mounts(c); len(m) != 1 || m["/var/lib/kubelet/device-plugins"] != "device-plugin" {
		t.Errorf("mounts = %v, want only /var/lib/kubelet/device-plugins", m)
	}
	if v := pod.Volumes[0]; v.HostPath == nil || v.HostPath.Path != "/var/lib/kubelet/device-plugins" ||
		*v.HostPath.Type != corev1.HostPathDirectory {
		t.Errorf("volume = %+v", v)
	}
	if pod.AutomountServiceAccountToken == nil || !*pod.AutomountServiceAccountToken {
		t.Errorf("automountServiceAccountToken = %s, want true (the plugin posts Node events)", boolp(pod.AutomountServiceAccountToken))
	}
	// Without events and without configs the plugin needs no API access at all.
	quiet := render(t, "--set", "events.enabled=false")
	if strings.Join(quiet.kinds, " ") != "DaemonSet/nvdp-nvidia-device-plugin RuntimeClass/nvidia ServiceAccount/nvdp-nvidia-device-plugin-service-account" {
		t.Errorf("events.enabled=false: objects = %v", quiet.kinds)
	}
	qpod := quiet.daemonSet(t, "nvdp-nvidia-device-plugin").Spec.Template.Spec
	if qpod.AutomountServiceAccountToken == nil || *qpod.AutomountServiceAccountToken {
		t.Errorf("events.enabled=false: automountServiceAccountToken = %s, want false", boolp(qpod.AutomountServiceAccountToken))
	}
	expectEnv(t, qpod.Containers[0], map[string]string{}, "NODE_NAME")
	// Affinity: any one of NFD's NVIDIA PCI label, Tegra, or nvidia.com/gpu.present.
	var terms []string
	for _, term := range pod.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms {
		for _, e := range term.MatchExpressions {
			terms = append(terms, fmt.Sprintf("%s %s %v", e.Key, e.Operator, e.Values))
		}
	}
	wantTerms := "feature.node.kubernetes.io/pci-10de.present In [true] | feature.node.kubernetes.io/cpu-model.vendor_id In [NVIDIA] | nvidia.com/gpu.present In [true]"
	if strings.Join(terms, " | ") != wantTerms {
		t.Errorf("affinity terms = %q, want %q", strings.Join(terms, " | "), wantTerms)
	}
	var tols []string
	for _, tol := range pod.Tolerations {
		tols = append(tols, fmt.Sprintf("%s:%s:%s", tol.Key, tol.Operator, tol.Effect))
	}
	if strings.Join(tols, " ") != "CriticalAddonsOnly:Exists: nvidia.com/gpu:Exists:NoSchedule" {
		t.Errorf("tolerations = %v", tols)
	}
	if ds.Spec.UpdateStrategy.Type != appsv1.RollingUpdateDaemonSetStrategyType {
		t.Errorf("updateStrategy = %v", ds.Spec.UpdateStrategy)
	}
	rc := r.objects["RuntimeClass/nvidia"].(*nodev1.RuntimeClass)
	if rc.Handler != "nvidia" {
		t.Errorf("RuntimeClass nvidia handler = %q", rc.Handler)
	}
}

func TestTimeSlicingValues(t *testing.T) {
	r := render(t, "-f", "testdata/values-time-slicing.yaml")
	cm, ok := r.objects["ConfigMap/nvdp-nvidia-device-plugin-configs"].(*corev1.ConfigMap)
	if !ok {
		t.Fatalf("no ConfigMap nvdp-nvidia-device-plugin-configs; rendered %v", r.kinds)
	}
	if len(cm.Data) != 2 || !strings.Contains(cm.Data["time-sliced-4"], "replicas: 4") ||
		cm.Data["default"] != "version: v1\nflags:\n  migStrategy: none" {
		t.Errorf("ConfigMap data = %q", cm.Data)
	}
	for _, name := range []string{"nvdp-nvidia-device-plugin", "nvdp-nvidia-device-plugin-gpu-feature-discovery"} {
		ds := r.daemonSet(t, name)
		c := ds.Spec.Template.Spec.Containers[0]
		expectEnv(t, c, map[string]string{"CONFIG_FILE_SRCDIR": "/available-configs", "DEFAULT_CONFIG": "default",
			"FALLBACK_STRATEGIES": "named,single", "NODE_NAME": "fieldRef:spec.nodeName", "FAIL_ON_INIT_ERROR": "false",
			"NVIDIA_MIG_MONITOR_DEVICES": "all"}, "CONFIG_FILE")
		if mounts(c)["/available-configs"] != "available-configs" {
			t.Errorf("%s: configs not mounted at /available-configs: %v", name, mounts(c))
		}
		if !strings.HasPrefix(ds.Spec.Template.Annotations["checksum/config"], "") || len(ds.Spec.Template.Annotations["checksum/config"]) != 64 {
			t.Errorf("%s: checksum/config annotation = %q", name, ds.Spec.Template.Annotations["checksum/config"])
		}
	}
	plugin := r.daemonSet(t, "nvdp-nvidia-device-plugin").Spec.Template.Spec
	c := plugin.Containers[0]
	expectEnv(t, c, map[string]string{"DEVICE_ID_STRATEGY": "index"}, "MIG_STRATEGY")
	// migStrategy and deviceListStrategy are not pinned, so a config may pick MIG or volume-mounts:
	// SYS_ADMIN, as upstream's chart does.
	if got := capsString(c.SecurityContext); got != "drop=[ALL] add=[SYS_ADMIN]" {
		t.Errorf("capabilities: %s", got)
	}
	if plugin.AutomountServiceAccountToken == nil || !*plugin.AutomountServiceAccountToken {
		t.Error("plugin needs its API token to read its node's config label")
	}
	role := r.objects["ClusterRole/nvdp-nvidia-device-plugin-role"].(*rbacv1.ClusterRole)
	if got := fmt.Sprint(role.Rules[0].Resources, role.Rules[0].Verbs); got != "[nodes] [get list watch]" {
		t.Errorf("node rule = %s", got)
	}
	binding := r.objects["ClusterRoleBinding/nvdp-nvidia-device-plugin-role-binding"].(*rbacv1.ClusterRoleBinding)
	if binding.Subjects[0].Name != "nvdp-nvidia-device-plugin-service-account" || binding.Subjects[0].Namespace != namespace {
		t.Errorf("binding subjects = %+v", binding.Subjects)
	}

	// Pinning both removes the need for SYS_ADMIN.
	r = render(t, "-f", "testdata/values-time-slicing.yaml", "--set", "migStrategy=none", "--set", "deviceListStrategy=envvar")
	c = r.daemonSet(t, "nvdp-nvidia-device-plugin").Spec.Template.Spec.Containers[0]
	if got := capsString(c.SecurityContext); got != "drop=[ALL] add=[]" {
		t.Errorf("pinned strategies: capabilities %s", got)
	}
	expectEnv(t, c, map[string]string{"MIG_STRATEGY": "none", "DEVICE_LIST_STRATEGY": "envvar"}, "NVIDIA_MIG_MONITOR_DEVICES")
}

func TestMIGMixed(t *testing.T) {
	r := render(t, "-f", "testdata/values-mig-mixed.yaml")
	plugin := r.daemonSet(t, "nvdp-nvidia-device-plugin").Spec.Template.Spec.Containers[0]
	expectEnv(t, plugin, map[string]string{"MIG_STRATEGY": "mixed", "DEVICE_LIST_STRATEGY": "envvar",
		"NVIDIA_MIG_MONITOR_DEVICES": "all"})
	if got := capsString(plugin.SecurityContext); got != "drop=[ALL] add=[SYS_ADMIN]" {
		t.Errorf("plugin capabilities: %s", got)
	}
	gfd := r.daemonSet(t, "nvdp-nvidia-device-plugin-gpu-feature-discovery").Spec.Template.Spec
	c := gfd.Containers[0]
	if strings.Join(c.Command, " ") != "/usr/bin/gpu-feature-discovery" || len(c.Args) != 0 {
		t.Errorf("gfd command/args = %v %v", c.Command, c.Args)
	}
	expectEnv(t, c, map[string]string{"MIG_STRATEGY": "mixed", "NODE_NAME": "fieldRef:spec.nodeName",
		"NAMESPACE": "fieldRef:metadata.namespace", "POD_NAME": "fieldRef:metadata.name"}, "GFD_USE_NODE_FEATURE_API")
	if m := mounts(c); m["/etc/kubernetes/node-feature-discovery/features.d"] != "output-dir" || m["/sys"] != "host-sys" {
		t.Errorf("gfd mounts = %v", m)
	}
	if got := fmt.Sprintf("uid=%s %s", int64p(c.SecurityContext.RunAsUser), capsString(c.SecurityContext)); got != "uid=0 drop=[ALL] add=[]" {
		t.Errorf("gfd securityContext: %s", got)
	}
	role := r.objects["ClusterRole/nvdp-nvidia-device-plugin-role"].(*rbacv1.ClusterRole)
	var rules []string
	for _, rule := range role.Rules {
		rules = append(rules, fmt.Sprint(rule.APIGroups, rule.Resources, rule.Verbs))
	}
	want := "[] [nodes] [get list watch] | [] [events] [create patch] | [nfd.k8s-sigs.io] [nodefeatures] [get list watch create update] | [] [pods] [get]"
	if strings.Join(rules, " | ") != want {
		t.Errorf("rules = %q, want %q", strings.Join(rules, " | "), want)
	}
	// The two DaemonSets must not select each other's pods.
	p := r.daemonSet(t, "nvdp-nvidia-device-plugin").Spec.Selector.MatchLabels["app.kubernetes.io/component"]
	g := r.daemonSet(t, "nvdp-nvidia-device-plugin-gpu-feature-discovery").Spec.Selector.MatchLabels["app.kubernetes.io/component"]
	if p == g || p == "" {
		t.Errorf("selectors overlap: component %q vs %q", p, g)
	}
}

func TestUpstreamValuesFile(t *testing.T) {
	r := render(t, "-f", "testdata/values-upstream-keys.yaml")
	plugin := r.daemonSet(t, "nvdp-nvidia-device-plugin").Spec.Template.Spec.Containers[0]
	if plugin.Image != "nvcr.io/nvidia/k8s-device-plugin:v0.20.0" {
		t.Errorf("image = %s", plugin.Image)
	}
	expectEnv(t, plugin, map[string]string{"MIG_STRATEGY": "single", "FAIL_ON_INIT_ERROR": "true",
		"DEVICE_LIST_STRATEGY": "volume-mounts", "DEVICE_ID_STRATEGY": "uuid", "NVIDIA_DRIVER_ROOT": "/run/nvidia/driver",
		"NVIDIA_DEV_ROOT": "/", "PASS_DEVICE_SPECS": "false", "GDRCOPY_ENABLED": "false", "DEVICE_DISCOVERY_STRATEGY": "auto"})
	if got := capsString(plugin.SecurityContext); got != "drop=[ALL] add=[SYS_ADMIN]" {
		t.Errorf("MIG single + volume-mounts: capabilities %s", got)
	}
	// Helm merges a user's `resources: {}` into the chart's map, so the small defaults stay
	// (`resources: null` removes them).
	if got := plugin.Resources.Requests.Cpu().String() + "/" + plugin.Resources.Requests.Memory().String(); got != "10m/10Mi" {
		t.Errorf("requests = %s, want the defaults 10m/10Mi", got)
	}
	gfd := r.daemonSet(t, "nvdp-nvidia-device-plugin-gpu-feature-discovery").Spec.Template.Spec.Containers[0]
	if boolp(gfd.SecurityContext.Privileged) != "true" {
		t.Errorf("gfd.securityContext.privileged not applied: %+v", gfd.SecurityContext)
	}
	expectEnv(t, gfd, map[string]string{"GFD_SLEEP_INTERVAL": "60s", "GFD_NO_TIMESTAMP": "false", "MIG_STRATEGY": "single"})
}

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

func TestDriverRootAndOptions(t *testing.T) {
	r := render(t, "--set", "nvidiaDriverRoot=/run/nvidia/driver", "--set", "runtimeClassName=nvidia",
		"--set", "devicePlugin.healthPolicy=strict", "--set", "devicePlugin.logFormat=json",
		"--set", "metrics.enabled=false", "--set", "image.repository=registry.example/nvdp", "--set", "image.tag=dev",
		"--set", "failOnInitError=true", "--set", "gdsEnabled=false")
	ds := r.daemonSet(t, "nvdp-nvidia-device-plugin")
	pod := ds.Spec.Template.Spec
	c := pod.Containers[0]
	expectEnv(t, c, map[string]string{"NVIDIA_DRIVER_ROOT": "/run/nvidia/driver", "DRIVER_ROOT_CTR_PATH": "/driver-root",
		"FAIL_ON_INIT_ERROR": "true", "GDS_ENABLED": "false"}, "METRICS_ADDRESS")
	if m := mounts(c); m["/driver-root"] != "driver-root" {
		t.Errorf("mounts = %v", m)
	}
	if pod.RuntimeClassName == nil || *pod.RuntimeClassName != "nvidia" {
		t.Error("runtimeClassName not set to nvidia")
	}
	if strings.Join(c.Args, " ") != "--health-policy=strict --log-format=json" {
		t.Errorf("args = %v", c.Args)
	}
	if c.Image != "registry.example/nvdp:dev" {
		t.Errorf("image = %s", c.Image)
	}
	if c.LivenessProbe != nil || len(c.Ports) != 0 || ds.Spec.Template.Annotations["prometheus.io/scrape"] != "" {
		t.Error("metrics disabled but probes/ports/annotations rendered")
	}
}

func TestCDIAndRuntimeClasses(t *testing.T) {
	r := render(t, "--set", "deviceListStrategy={cdi-annotations,cdi-cri}")
	for key, handler := range map[string]string{"RuntimeClass/nvidia": "nvidia", "RuntimeClass/nvidia-cdi": "nvidia-cdi"} {
		rc, ok := r.objects[key].(*nodev1.RuntimeClass)
		if !ok || rc.Handler != handler {
			t.Errorf("%s missing or wrong handler; rendered %v", key, r.kinds)
		}
	}
	c := r.daemonSet(t, "nvdp-nvidia-device-plugin").Spec.Template.Spec.Containers[0]
	expectEnv(t, c, map[string]string{"DEVICE_LIST_STRATEGY": "cdi-annotations,cdi-cri"})
	if mounts(c)["/var/run/cdi"] != "cdi-root" {
		t.Errorf("CDI spec dir not mounted: %v", mounts(c))
	}
	r = render(t, "--set", "runtimeClass.create=false")
	if r.has("RuntimeClass/nvidia") {
		t.Error("runtimeClass.create=false still renders a RuntimeClass")
	}
}

func TestGFDNodeOutput(t *testing.T) {
	r := render(t, "--set", "gfd.enabled=true", "--set", "gfd.outputNode=true", "--set", "gfd.sleepInterval=5m")
	c := r.daemonSet(t, "nvdp-nvidia-device-plugin-gpu-feature-discovery").Spec.Template.Spec.Containers[0]
	if strings.Join(c.Args, " ") != "--output=node" {
		t.Errorf("args = %v", c.Args)
	}
	expectEnv(t, c, map[string]string{"GFD_USE_NODE_FEATURE_API": "false", "GFD_SLEEP_INTERVAL": "5m"})
	if _, ok := mounts(c)["/etc/kubernetes/node-feature-discovery/features.d"]; ok {
		t.Error("node output still mounts the host's features.d")
	}
	if got := fmt.Sprintf("nonroot=%s uid=%s", boolp(c.SecurityContext.RunAsNonRoot), int64p(c.SecurityContext.RunAsUser)); got != "nonroot=true uid=65534" {
		t.Errorf("gfd with node output runs as %s, want nonroot=true uid=65534", got)
	}
	role := r.objects["ClusterRole/nvdp-nvidia-device-plugin-role"].(*rbacv1.ClusterRole)
	if len(role.Rules) != 2 || fmt.Sprint(role.Rules[0].Resources, role.Rules[0].Verbs) != "[nodes] [get list watch patch update]" ||
		fmt.Sprint(role.Rules[1].Resources, role.Rules[1].Verbs) != "[events] [create patch]" {
		t.Errorf("rules = %+v", role.Rules)
	}
}

func TestServiceMonitor(t *testing.T) {
	r := render(t, "--set", "metrics.serviceMonitor.enabled=true", "--set", "metrics.serviceMonitor.labels.release=prom")
	svc := r.objects["Service/nvdp-nvidia-device-plugin-metrics"].(*corev1.Service)
	if svc.Spec.ClusterIP != "None" || svc.Spec.Ports[0].TargetPort.String() != "metrics" ||
		svc.Spec.Selector["app.kubernetes.io/component"] != "device-plugin" {
		t.Errorf("service = %+v", svc.Spec)
	}
	sm := r.objects["ServiceMonitor/nvdp-nvidia-device-plugin"].(*serviceMonitor)
	if sm.Labels["release"] != "prom" || sm.Spec.Endpoints[0].Port != "metrics" || sm.Spec.Endpoints[0].Path != "/metrics" {
		t.Errorf("servicemonitor = %+v", sm)
	}
}

func TestJustModuleValues(t *testing.T) {
	r := render(t, "-f", filepath.Join(repoRoot, "nvidia-device-plugin/values.yaml"))
	if !r.has("DaemonSet/nvdp-nvidia-device-plugin-gpu-feature-discovery") {
		t.Errorf("GFD not enabled by the just module's values: %v", r.kinds)
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
		{[]string{"--set", "config.name=x", "--set-string", "config.map.a=version: v1"}, "config.name and config.map are mutually exclusive"},
		{[]string{"--set-string", "config.map.a=v", "--set-string", "config.map.b=v"}, "config.map holds several configs but none is the default"},
		{[]string{"--set", "migStrategy=both"}, `migStrategy: unknown strategy "both"`},
		{[]string{"--set", `deviceListStrategy=envvar\,bogus`}, `deviceListStrategy: unknown strategy "bogus"`},
	}
	for _, tc := range cases {
		args := append([]string{"template", "nvdp", chartCopy(t), "--namespace", namespace}, tc.args...)
		out, err := helm(t, args...)
		if err == nil || !strings.Contains(out, tc.want) {
			t.Errorf("helm %v: err=%v, output %q, want it to fail with %q", tc.args, err, out, tc.want)
		}
	}
	// allowDefaultNamespace lifts the refusal.
	render(t, "--namespace", "default", "--set", "allowDefaultNamespace=true")
}
