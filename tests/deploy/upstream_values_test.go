// The chart rendered with 25 values files written the way users of NVIDIA's chart write them
// (testdata/upstream/, from upstream's documented values), checked object by object: the exact set of
// objects, and for each DaemonSet every field that matters (selector, labels, image, security, mounts,
// volumes, probes, placement, env...) against expectations written here by hand as differences from
// the defaults. Each file is also rendered with NVIDIA's own chart (v0.19.3, vendored): every
// DaemonSet both render must have the same name and selector, which is what lets `helm upgrade` take
// over an existing release in place.
package deploy

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
)

type header struct {
	namespace string // "# namespace: X" (default nvidia-device-plugin)
	refused   string // "# refused: <message>": the chart must refuse the file with it
}

func readHeader(t *testing.T, path string) header {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := header{namespace: namespace}
	s := bufio.NewScanner(f)
	for s.Scan() && strings.HasPrefix(s.Text(), "#") {
		if v, ok := strings.CutPrefix(s.Text(), "# namespace: "); ok {
			h.namespace = v
		}
		if v, ok := strings.CutPrefix(s.Text(), "# refused: "); ok {
			h.refused = v
		}
	}
	return h
}

func sortedPairs(m map[string]string) string {
	var l []string
	for k, v := range m {
		l = append(l, k+"="+v)
	}
	sort.Strings(l)
	return strings.Join(l, ",")
}

func secSummary(sc *corev1.SecurityContext) string {
	if sc == nil {
		return "none"
	}
	return fmt.Sprintf("priv=%s ape=%s ro=%s uid=%s gid=%s nonroot=%s %s", boolp(sc.Privileged), boolp(sc.AllowPrivilegeEscalation),
		boolp(sc.ReadOnlyRootFilesystem), int64p(sc.RunAsUser), int64p(sc.RunAsGroup), boolp(sc.RunAsNonRoot), capsString(sc))
}

func resSummary(r corev1.ResourceRequirements) string {
	list := func(l corev1.ResourceList) string {
		var s []string
		for k, v := range l {
			s = append(s, string(k)+"="+v.String())
		}
		sort.Strings(s)
		return strings.Join(s, " ")
	}
	var parts []string
	if len(r.Requests) > 0 {
		parts = append(parts, "requests "+list(r.Requests))
	}
	if len(r.Limits) > 0 {
		parts = append(parts, "limits "+list(r.Limits))
	}
	return strings.Join(parts, "; ")
}

// dsSummary: the fields of a DaemonSet the expectations cover, as strings.
func dsSummary(ds *appsv1.DaemonSet) (map[string]string, map[string]string) {
	pod := ds.Spec.Template.Spec
	c := pod.Containers[0]
	s := map[string]string{
		"selector":        sortedPairs(ds.Spec.Selector.MatchLabels),
		"podLabels":       sortedPairs(ds.Spec.Template.Labels),
		"namespace":       ds.Namespace,
		"containers":      fmt.Sprint(len(pod.Containers), "+", len(pod.InitContainers)),
		"image":           c.Image,
		"pullPolicy":      string(c.ImagePullPolicy),
		"command":         strings.Join(c.Command, " "),
		"args":            strings.Join(c.Args, " "),
		"serviceAccount":  pod.ServiceAccountName,
		"token":           boolp(pod.AutomountServiceAccountToken),
		"hostNetwork":     fmt.Sprint(pod.HostNetwork),
		"priorityClass":   pod.PriorityClassName,
		"securityContext": secSummary(c.SecurityContext),
		"resources":       resSummary(c.Resources),
		"nodeSelector":    sortedPairs(pod.NodeSelector),
		"updateStrategy":  string(ds.Spec.UpdateStrategy.Type),
	}
	if ru := ds.Spec.UpdateStrategy.RollingUpdate; ru != nil && ru.MaxUnavailable != nil {
		s["updateStrategy"] += " maxUnavailable=" + ru.MaxUnavailable.String()
	}
	if pod.RuntimeClassName != nil {
		s["runtimeClass"] = *pod.RuntimeClassName
	} else {
		s["runtimeClass"] = ""
	}
	var probes []string
	for _, p := range []struct {
		kind  string
		probe *corev1.Probe
	}{{"startup", c.StartupProbe}, {"liveness", c.LivenessProbe}, {"readiness", c.ReadinessProbe}} {
		switch {
		case p.probe == nil:
		case p.probe.HTTPGet != nil:
			probes = append(probes, fmt.Sprintf("%s=GET:%s@%s", p.kind, p.probe.HTTPGet.Path, p.probe.HTTPGet.Port.String()))
		case p.probe.Exec != nil:
			probes = append(probes, p.kind+"=exec:"+strings.Join(p.probe.Exec.Command, ","))
		default:
			probes = append(probes, p.kind+"=other")
		}
	}
	s["probes"] = strings.Join(probes, " ")
	var ports []string
	for _, p := range c.Ports {
		ports = append(ports, fmt.Sprintf("%s:%d", p.Name, p.ContainerPort))
	}
	s["ports"] = strings.Join(ports, " ")
	var ms []string
	for _, m := range c.VolumeMounts {
		v := m.MountPath + "=" + m.Name
		if m.ReadOnly {
			v += ":ro"
		}
		ms = append(ms, v)
	}
	sort.Strings(ms)
	s["mounts"] = strings.Join(ms, ",")
	var vs []string
	for _, v := range pod.Volumes {
		switch {
		case v.HostPath != nil:
			vs = append(vs, v.Name+"=hostPath:"+v.HostPath.Path)
		case v.ConfigMap != nil:
			vs = append(vs, v.Name+"=configMap:"+v.ConfigMap.Name)
		default:
			vs = append(vs, v.Name+"=other")
		}
	}
	sort.Strings(vs)
	s["volumes"] = strings.Join(vs, ",")
	var terms []string
	if a := pod.Affinity; a != nil && a.NodeAffinity != nil && a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution != nil {
		for _, term := range a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms {
			for _, e := range term.MatchExpressions {
				terms = append(terms, fmt.Sprintf("%s %s %v", e.Key, e.Operator, e.Values))
			}
		}
	}
	s["affinity"] = strings.Join(terms, " | ")
	var tols []string
	for _, tol := range pod.Tolerations {
		tols = append(tols, fmt.Sprintf("%s:%s:%s:%s", tol.Key, tol.Operator, tol.Value, tol.Effect))
	}
	s["tolerations"] = strings.Join(tols, " ")
	ann := map[string]string{}
	for k, v := range ds.Spec.Template.Annotations {
		if k == "checksum/config" {
			v = "<sha256>"
		}
		ann[k] = v
	}
	s["annotations"] = sortedPairs(ann)
	var secrets []string
	for _, p := range pod.ImagePullSecrets {
		secrets = append(secrets, p.Name)
	}
	s["imagePullSecrets"] = strings.Join(secrets, ",")
	return s, envMap(c)
}

const (
	pluginDS = "nvdp-nvidia-device-plugin"
	gfdDS    = "nvdp-nvidia-device-plugin-gpu-feature-discovery"
	mpsDS    = "nvdp-nvidia-device-plugin-mps-control-daemon"
	sysAdmin = "priv=nil ape=false ro=true uid=0 gid=0 nonroot=nil drop=[ALL] add=[SYS_ADMIN]"
	privOnly = "priv=true ape=nil ro=nil uid=nil gid=nil nonroot=nil drop=[] add=[]"
	nvImage  = "nvcr.io/nvidia/k8s-device-plugin:v0.20.0"
)

// The defaults (file 01): every case states only how it differs from these.
func pluginBase(v string) map[string]string {
	return map[string]string{
		"selector":         "app.kubernetes.io/instance=nvdp,app.kubernetes.io/name=nvidia-device-plugin",
		"podLabels":        "app.kubernetes.io/component=k8s-device-plugin,app.kubernetes.io/instance=nvdp,app.kubernetes.io/name=nvidia-device-plugin",
		"namespace":        namespace,
		"containers":       "1+0",
		"image":            "nvdp:" + v,
		"pullPolicy":       "IfNotPresent",
		"command":          "/usr/bin/nvidia-device-plugin",
		"args":             "",
		"serviceAccount":   "nvdp-nvidia-device-plugin-service-account",
		"token":            "true",
		"hostNetwork":      "false",
		"runtimeClass":     "",
		"priorityClass":    "system-node-critical",
		"probes":           "startup=exec:/usr/bin/nvdp,healthz liveness=exec:/usr/bin/nvdp,healthz readiness=exec:/usr/bin/nvdp,healthz",
		"ports":            "metrics:2112",
		"resources":        "",
		"securityContext":  "priv=nil ape=false ro=true uid=0 gid=0 nonroot=nil drop=[ALL] add=[]",
		"mounts":           "/var/lib/kubelet/device-plugins=device-plugin",
		"volumes":          "device-plugin=hostPath:/var/lib/kubelet/device-plugins",
		"affinity":         "feature.node.kubernetes.io/pci-10de.present In [true] | nvidia.com/gpu.present In [true]",
		"tolerations":      "CriticalAddonsOnly:Exists:: nvidia.com/gpu:Exists::NoSchedule",
		"nodeSelector":     "",
		"annotations":      "prometheus.io/path=/metrics,prometheus.io/port=2112,prometheus.io/scrape=true",
		"updateStrategy":   "RollingUpdate",
		"imagePullSecrets": "",
	}
}

var pluginEnvBase = map[string]string{"METRICS_ADDRESS": ":2112", "HEALTH_ADDRESS": "127.0.0.1:2113", "NODE_NAME": "fieldRef:spec.nodeName",
	"NVIDIA_VISIBLE_DEVICES": "all", "NVIDIA_DRIVER_CAPABILITIES": "compute,utility"}

func gfdBase(v string) map[string]string {
	b := pluginBase(v)
	for k, val := range map[string]string{
		"podLabels":      "app.kubernetes.io/component=gpu-feature-discovery,app.kubernetes.io/instance=nvdp,app.kubernetes.io/name=nvidia-device-plugin",
		"command":        "/usr/bin/gpu-feature-discovery",
		"serviceAccount": "nvdp-nvidia-device-plugin-gpu-feature-discovery",
		"token":          "true",
		"probes":         "",
		"ports":          "",
		"annotations":    "",
		"mounts":         "/etc/kubernetes/node-feature-discovery/features.d=output-dir,/sys=host-sys:ro",
		"volumes":        "host-sys=hostPath:/sys,output-dir=hostPath:/etc/kubernetes/node-feature-discovery/features.d",
	} {
		b[k] = val
	}
	return b
}

// The MPS control daemon's DaemonSet, rendered with configs only (a config shares with MPS), here with
// the chart's own ConfigMap.
func mpsBase(v string) map[string]string {
	b := pluginBase(v)
	for k, val := range map[string]string{
		"podLabels":       "app.kubernetes.io/component=mps-control-daemon,app.kubernetes.io/instance=nvdp,app.kubernetes.io/name=nvidia-device-plugin",
		"containers":      "1+1",
		"command":         "/usr/bin/mps-control-daemon",
		"probes":          "readiness=GET:/healthz@metrics",
		"securityContext": "priv=true ape=nil ro=nil uid=0 gid=0 nonroot=nil drop=[] add=[]",
		"mounts":          "/available-configs=available-configs:ro,/dev/shm=mps-shm,/mps=mps-root",
		"volumes":         "available-configs=configMap:nvdp-nvidia-device-plugin-configs,mps-root=hostPath:/run/nvidia/mps,mps-shm=hostPath:/run/nvidia/mps/shm",
		"nodeSelector":    "nvidia.com/mps.capable=true",
		"annotations":     "checksum/config=<sha256>",
	} {
		b[k] = val
	}
	return b
}

var mpsEnvBase = map[string]string{"METRICS_ADDRESS": ":2112", "NODE_NAME": "fieldRef:spec.nodeName",
	"NVIDIA_VISIBLE_DEVICES": "all", "NVIDIA_DRIVER_CAPABILITIES": "compute,utility",
	"CONFIG_FILE_SRCDIR": "/available-configs", "NVIDIA_MIG_MONITOR_DEVICES": "all"}

var gfdEnvBase = map[string]string{"NODE_NAME": "fieldRef:spec.nodeName", "NAMESPACE": "fieldRef:metadata.namespace",
	"POD_NAME": "fieldRef:metadata.name", "NVIDIA_VISIBLE_DEVICES": "all", "NVIDIA_DRIVER_CAPABILITIES": "compute,utility"}

// dsWant: differences from the base; an env value "-" means the variable must be absent.
type dsWant struct {
	fields map[string]string
	env    map[string]string
}

type valuesCase struct {
	file    string
	objects []string // this chart's objects, exactly (the NFD subchart's are checked by nfd)
	nfd     bool     // the NFD subchart renders
	ds      map[string]dsWant
	check   func(t *testing.T, r *rendered)
	// selectorDiffers: NVIDIA's v0.19.3 chart renders another selector on purpose (a v0.20.0 value).
	selectorDiffers bool
}

// The plugin with configs: a config may share with MPS, so it reads the MPS root (read-only, MPS_ROOT).
func pluginConfigFields(cm string, checksum bool, base map[string]string) map[string]string {
	f := configFields(cm, checksum, base)
	f["mounts"] = plus(f["mounts"], "/mps=mps-root:ro")
	f["volumes"] = plus(f["volumes"], "mps-root=hostPath:/run/nvidia/mps")
	f["securityContext"] = sysAdmin
	return f
}

var (
	objMPS    = []string{"DaemonSet/" + mpsDS}
	objPlugin = []string{"DaemonSet/" + pluginDS, "Role/default/nvdp-nvidia-device-plugin-events",
		"RoleBinding/default/nvdp-nvidia-device-plugin-events", "ServiceAccount/nvdp-nvidia-device-plugin-service-account"}
	// GFD in NodeFeature mode (upstream's default): its Node read cluster-wide, NodeFeatures in its namespace.
	objGFD = []string{"DaemonSet/" + gfdDS, "ServiceAccount/nvdp-nvidia-device-plugin-gpu-feature-discovery",
		"ClusterRole/nvdp-nvidia-device-plugin-gpu-feature-discovery", "ClusterRoleBinding/nvdp-nvidia-device-plugin-gpu-feature-discovery",
		"Role/nvidia-device-plugin/nvdp-nvidia-device-plugin-gpu-feature-discovery",
		"RoleBinding/nvidia-device-plugin/nvdp-nvidia-device-plugin-gpu-feature-discovery"}
	// NVIDIA's GFD image: its Pod read (owner references) instead of its Node: the Role only.
	objGFDNvidia = []string{"DaemonSet/" + gfdDS, "ServiceAccount/nvdp-nvidia-device-plugin-gpu-feature-discovery",
		"Role/nvidia-device-plugin/nvdp-nvidia-device-plugin-gpu-feature-discovery",
		"RoleBinding/nvidia-device-plugin/nvdp-nvidia-device-plugin-gpu-feature-discovery"}
	objConfig = []string{"ClusterRole/nvdp-nvidia-device-plugin-role", "ClusterRoleBinding/nvdp-nvidia-device-plugin-role-binding"}
)

func join(lists ...[]string) []string {
	var l []string
	for _, x := range lists {
		l = append(l, x...)
	}
	return l
}

// Shorthands for the values a config file brings: the ConfigMap mount, and SYS_ADMIN because a
// config may select MIG or volume-mounts (as upstream's chart assumes).
func configFields(cm string, checksum bool, base map[string]string) map[string]string {
	f := map[string]string{
		"mounts":  plus(base["mounts"], "/available-configs=available-configs:ro"),
		"volumes": plus(base["volumes"], "available-configs=configMap:"+cm),
	}
	if checksum {
		if base["annotations"] == "" {
			f["annotations"] = "checksum/config=<sha256>"
		} else {
			f["annotations"] = "checksum/config=<sha256>," + base["annotations"]
		}
	}
	return f
}

// plus adds items to a sorted comma list (mounts, volumes).
func plus(list string, items ...string) string {
	l := append(strings.Split(list, ","), items...)
	sort.Strings(l)
	return strings.Join(l, ",")
}

func merge(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

func valuesCases(v string) []valuesCase {
	pb, gb := pluginBase(v), gfdBase(v)
	rulesOf := func(t *testing.T, r *rendered, key, want string) {
		t.Helper()
		cr := get[*rbacv1.ClusterRole](t, r, key)
		if got := rules(cr.Rules); got != want {
			t.Errorf("%s rules = %s, want %s", key, got, want)
		}
	}
	return []valuesCase{
		{file: "01-defaults.yaml", objects: objPlugin, ds: map[string]dsWant{pluginDS: {}}},
		{file: "02-every-key-set.yaml", objects: join(objPlugin, objGFDNvidia), nfd: true, ds: map[string]dsWant{
			pluginDS: {fields: map[string]string{"image": nvImage, "probes": "", "ports": "", "annotations": "",
				"securityContext": sysAdmin,
				"mounts":          plus(pb["mounts"], "/driver-root=driver-root:ro"),
				"volumes":         plus(pb["volumes"], "driver-root=hostPath:/run/nvidia/driver")},
				env: map[string]string{"METRICS_ADDRESS": "-", "HEALTH_ADDRESS": "-", "MIG_STRATEGY": "single", "FAIL_ON_INIT_ERROR": "true",
					"DEVICE_DISCOVERY_STRATEGY": "auto", "NVIDIA_MIG_MONITOR_DEVICES": "all", "PASS_DEVICE_SPECS": "false",
					"DEVICE_LIST_STRATEGY": "volume-mounts", "DEVICE_ID_STRATEGY": "uuid", "NVIDIA_DRIVER_ROOT": "/run/nvidia/driver",
					"DRIVER_ROOT_CTR_PATH": "/driver-root", "NVIDIA_DEV_ROOT": "/", "GDRCOPY_ENABLED": "false",
					"GDS_ENABLED": "false", "MOFED_ENABLED": "false"}},
			gfdDS: {fields: map[string]string{"image": nvImage, "securityContext": privOnly,
				"mounts":  plus(gb["mounts"], "/driver-root=driver-root:ro"),
				"volumes": plus(gb["volumes"], "driver-root=hostPath:/run/nvidia/driver")},
				env: map[string]string{"MIG_STRATEGY": "single", "FAIL_ON_INIT_ERROR": "true", "DEVICE_DISCOVERY_STRATEGY": "auto",
					"NVIDIA_MIG_MONITOR_DEVICES": "all", "GFD_SLEEP_INTERVAL": "60s", "GFD_NO_TIMESTAMP": "false",
					"DRIVER_ROOT_CTR_PATH": "/driver-root"}},
		}},
		{file: "03-upstream-values-copy.yaml", objects: objPlugin, ds: map[string]dsWant{pluginDS: {fields: map[string]string{
			"affinity": "feature.node.kubernetes.io/pci-10de.present In [true] | feature.node.kubernetes.io/cpu-model.vendor_id In [NVIDIA] | nvidia.com/gpu.present In [true]"}}}},
		{file: "04-nvidia-image.yaml", objects: join(objPlugin, objGFDNvidia), ds: map[string]dsWant{
			pluginDS: {fields: map[string]string{"image": nvImage, "probes": "", "ports": "", "annotations": ""},
				env: map[string]string{"METRICS_ADDRESS": "-", "HEALTH_ADDRESS": "-"}},
			gfdDS: {fields: map[string]string{"image": nvImage}},
		}},
		{file: "05-resources.yaml", objects: join(objPlugin, objGFD), ds: map[string]dsWant{
			pluginDS: {fields: map[string]string{"resources": "requests cpu=20m memory=32Mi; limits memory=128Mi"}},
			gfdDS:    {fields: map[string]string{"resources": "requests cpu=20m memory=32Mi; limits memory=128Mi"}},
		}},
		{file: "06-host-network.yaml", objects: join(objPlugin, objGFD), ds: map[string]dsWant{
			pluginDS: {fields: map[string]string{"hostNetwork": "true"}},
			gfdDS:    {fields: map[string]string{"hostNetwork": "true"}},
		}},
		{file: "07-namespace-key.yaml"},
		{file: "08-time-slicing.yaml", objects: join(objPlugin, objGFD, objConfig, objMPS, []string{"ConfigMap/nvdp-nvidia-device-plugin-configs"}), nfd: true,
			ds: map[string]dsWant{
				pluginDS: {fields: pluginConfigFields("nvdp-nvidia-device-plugin-configs", true, pb),
					env: map[string]string{"CONFIG_FILE_SRCDIR": "/available-configs", "DEFAULT_CONFIG": "default",
						"FALLBACK_STRATEGIES": "named,single", "FAIL_ON_INIT_ERROR": "false", "DEVICE_ID_STRATEGY": "index",
						"NVIDIA_MIG_MONITOR_DEVICES": "all", "MPS_ROOT": "/run/nvidia/mps"}},
				mpsDS: {env: map[string]string{"DEFAULT_CONFIG": "default", "FALLBACK_STRATEGIES": "named,single",
					"FAIL_ON_INIT_ERROR": "false"}},
				gfdDS: {fields: configFields("nvdp-nvidia-device-plugin-configs", true, gb),
					env: map[string]string{"CONFIG_FILE_SRCDIR": "/available-configs", "DEFAULT_CONFIG": "default",
						"FALLBACK_STRATEGIES": "named,single", "FAIL_ON_INIT_ERROR": "false", "NVIDIA_MIG_MONITOR_DEVICES": "all"}},
			},
			check: func(t *testing.T, r *rendered) {
				cm := get[*corev1.ConfigMap](t, r, "ConfigMap/nvdp-nvidia-device-plugin-configs")
				if len(cm.Data) != 2 || !strings.Contains(cm.Data["time-sliced-4"], "replicas: 4") ||
					cm.Data["default"] != "version: v1\nflags:\n  migStrategy: none" {
					t.Errorf("ConfigMap data = %q", cm.Data)
				}
				rulesOf(t, r, "ClusterRole/nvdp-nvidia-device-plugin-role", "/nodes:list,watch")
				// nvdp's GFD follows the config label (list, watch) and reads its Node for the NodeFeature (get)
				rulesOf(t, r, "ClusterRole/nvdp-nvidia-device-plugin-gpu-feature-discovery", "/nodes:list,watch | /nodes:get")
			}},
		// A MIG strategy: the plugin follows its Node's nvidia.com/mig.config.state (a new MIG layout).
		{file: "09-mig-mixed-gfd.yaml", objects: join(objPlugin, objGFD, objConfig), nfd: true, ds: map[string]dsWant{
			pluginDS: {fields: map[string]string{"securityContext": sysAdmin},
				env: map[string]string{"MIG_STRATEGY": "mixed", "DEVICE_LIST_STRATEGY": "envvar", "NVIDIA_MIG_MONITOR_DEVICES": "all"}},
			gfdDS: {env: map[string]string{"MIG_STRATEGY": "mixed", "NVIDIA_MIG_MONITOR_DEVICES": "all"}},
		}, check: func(t *testing.T, r *rendered) {
			rulesOf(t, r, "ClusterRole/nvdp-nvidia-device-plugin-role", "/nodes:list,watch")
		}},
		{file: "10-several-configs-empty-fallback.yaml", objects: join(objPlugin, objConfig, objMPS, []string{"ConfigMap/nvdp-nvidia-device-plugin-configs"}),
			ds: map[string]dsWant{pluginDS: {fields: pluginConfigFields("nvdp-nvidia-device-plugin-configs", true, pb),
				env: map[string]string{"CONFIG_FILE_SRCDIR": "/available-configs", "DEFAULT_CONFIG": "",
					"FALLBACK_STRATEGIES": "named,single,empty", "NVIDIA_MIG_MONITOR_DEVICES": "all", "MPS_ROOT": "/run/nvidia/mps"}},
				mpsDS: {env: map[string]string{"DEFAULT_CONFIG": "", "FALLBACK_STRATEGIES": "named,single,empty"}}}},
		{file: "11-cdi.yaml", objects: objPlugin, ds: map[string]dsWant{pluginDS: {
			fields: map[string]string{"mounts": plus(pb["mounts"], "/var/run/cdi=cdi-spec-dir"),
				"volumes": plus(pb["volumes"], "cdi-spec-dir=hostPath:/var/run/cdi")},
			env: map[string]string{"DEVICE_LIST_STRATEGY": "cdi-annotations,cdi-cri",
				"NVIDIA_CDI_HOOK_PATH": "/usr/local/nvidia/toolkit/nvidia-cdi-hook",
				"CDI_FEATURE_FLAGS":    "disable-multiple-csv-devices", "CDI_SPEC_DIR": "/var/run/cdi"}}}},
		{file: "12-cpumanager.yaml", objects: objPlugin, ds: map[string]dsWant{pluginDS: {
			fields: map[string]string{"securityContext": "priv=true ape=nil ro=nil uid=0 gid=nil nonroot=nil drop=[] add=[]"},
			env:    map[string]string{"PASS_DEVICE_SPECS": "true"}}}},
		{file: "13-driver-root.yaml", objects: join(objPlugin, objGFD), ds: map[string]dsWant{
			pluginDS: {fields: map[string]string{"mounts": plus(pb["mounts"], "/driver-root=driver-root:ro"),
				"volumes": plus(pb["volumes"], "driver-root=hostPath:/run/nvidia/driver")},
				env: map[string]string{"NVIDIA_DRIVER_ROOT": "/run/nvidia/driver", "DRIVER_ROOT_CTR_PATH": "/driver-root", "NVIDIA_DEV_ROOT": "/"}},
			gfdDS: {fields: map[string]string{"mounts": plus(gb["mounts"], "/driver-root=driver-root:ro"),
				"volumes": plus(gb["volumes"], "driver-root=hostPath:/run/nvidia/driver")},
				env: map[string]string{"DRIVER_ROOT_CTR_PATH": "/driver-root"}},
		}},
		{file: "14-selector-override.yaml", objects: objPlugin, ds: map[string]dsWant{pluginDS: {fields: map[string]string{
			"selector":  "app=nvidia-device-plugin-daemonset",
			"podLabels": "app.kubernetes.io/component=k8s-device-plugin,app.kubernetes.io/instance=nvdp,app.kubernetes.io/name=nvidia-device-plugin,app=nvidia-device-plugin-daemonset"}}}},
		{file: "15-component-selectors.yaml", objects: join(objPlugin, objGFD), selectorDiffers: true, ds: map[string]dsWant{
			pluginDS: {fields: map[string]string{"selector": "app.kubernetes.io/component=k8s-device-plugin,app.kubernetes.io/instance=nvdp,app.kubernetes.io/name=nvidia-device-plugin"}},
			gfdDS:    {fields: map[string]string{"selector": "app.kubernetes.io/component=gpu-feature-discovery,app.kubernetes.io/instance=nvdp,app.kubernetes.io/name=nvidia-device-plugin"}},
		}},
		{file: "16-external-configmap.yaml", objects: join(objPlugin, objConfig, objMPS), ds: map[string]dsWant{pluginDS: {
			fields: pluginConfigFields("nvidia-plugin-configs", false, pb),
			env: map[string]string{"CONFIG_FILE_SRCDIR": "/available-configs", "DEFAULT_CONFIG": "any",
				"FALLBACK_STRATEGIES": "named,single", "NVIDIA_MIG_MONITOR_DEVICES": "all", "MPS_ROOT": "/run/nvidia/mps"}},
			mpsDS: {fields: map[string]string{"annotations": "",
				"volumes": "available-configs=configMap:nvidia-plugin-configs,mps-root=hostPath:/run/nvidia/mps,mps-shm=hostPath:/run/nvidia/mps/shm"},
				env: map[string]string{"DEFAULT_CONFIG": "any", "FALLBACK_STRATEGIES": "named,single"}}}},
		{file: "17-gfd-only.yaml", objects: objGFD, ds: map[string]dsWant{gfdDS: {}}},
		{file: "18-name-overrides.yaml", objects: []string{"DaemonSet/gpu-plugin", "Role/default/gpu-plugin-events",
			"RoleBinding/default/gpu-plugin-events", "ServiceAccount/gpu-plugin-service-account"},
			ds: map[string]dsWant{"gpu-plugin": {fields: map[string]string{
				"selector":       "app.kubernetes.io/instance=nvdp,app.kubernetes.io/name=gpu",
				"podLabels":      "app.kubernetes.io/component=k8s-device-plugin,app.kubernetes.io/instance=nvdp,app.kubernetes.io/name=gpu",
				"serviceAccount": "gpu-plugin-service-account"}}}},
		{file: "19-namespace-override.yaml", objects: objPlugin, ds: map[string]dsWant{pluginDS: {fields: map[string]string{"namespace": "gpu-system"}}},
			check: func(t *testing.T, r *rendered) {
				rb := get[*rbacv1.RoleBinding](t, r, "RoleBinding/default/nvdp-nvidia-device-plugin-events")
				if rb.Subjects[0].Namespace != "gpu-system" {
					t.Errorf("events RoleBinding subject in %s, want gpu-system", rb.Subjects[0].Namespace)
				}
			}},
		{file: "20-placement.yaml", objects: objPlugin, ds: map[string]dsWant{pluginDS: {fields: map[string]string{
			// `affinity: {}` merges into the chart's default map and changes nothing (as upstream's):
			// `affinity: null` removes it.
			"nodeSelector": "node-role.example.com/gpu=true", "tolerations": ":Exists::",
			"priorityClass": "gpu-critical", "annotations": "example.com/team=ml," + pb["annotations"],
			"updateStrategy": "RollingUpdate maxUnavailable=2"}}}},
		{file: "21-k3s.yaml", objects: join(objPlugin, objGFD), nfd: true, ds: map[string]dsWant{
			pluginDS: {fields: map[string]string{"runtimeClass": "nvidia"}},
			gfdDS:    {fields: map[string]string{"runtimeClass": "nvidia"}},
		}},
		{file: "22-gfd-options.yaml", objects: join(objPlugin, objGFD), ds: map[string]dsWant{
			pluginDS: {},
			gfdDS:    {fields: map[string]string{"securityContext": privOnly}, env: map[string]string{"GFD_SLEEP_INTERVAL": "5m", "GFD_NO_TIMESTAMP": "true"}},
		}},
		{file: "23-tegra.yaml"},
		{file: "24-private-registry.yaml", objects: objPlugin, ds: map[string]dsWant{pluginDS: {fields: map[string]string{
			"image": "registry.example.com/gpu/nvdp:0.1.0", "pullPolicy": "Always", "imagePullSecrets": "regcred"}}}},
		{file: "25-default-namespace-allowed.yaml", objects: objPlugin, ds: map[string]dsWant{pluginDS: {
			fields: map[string]string{"namespace": "default"},
			env: map[string]string{"MIG_STRATEGY": "none", "FAIL_ON_INIT_ERROR": "false", "DEVICE_LIST_STRATEGY": "envvar",
				"DEVICE_ID_STRATEGY": "index", "GDRCOPY_ENABLED": "true", "GDS_ENABLED": "true", "MOFED_ENABLED": "true",
				"DEVICE_DISCOVERY_STRATEGY": "nvml"}}}},
		{file: "26-mps.yaml", objects: join(objPlugin, objGFD, objConfig, objMPS, []string{"ConfigMap/nvdp-nvidia-device-plugin-configs"}), nfd: true,
			ds: map[string]dsWant{
				pluginDS: {fields: merge(pluginConfigFields("nvdp-nvidia-device-plugin-configs", true, pb),
					map[string]string{"volumes": plus(configFields("nvdp-nvidia-device-plugin-configs", true, pb)["volumes"], "mps-root=hostPath:/var/lib/nvidia/mps")}),
					env: map[string]string{"CONFIG_FILE_SRCDIR": "/available-configs", "DEFAULT_CONFIG": "",
						"FALLBACK_STRATEGIES": "named,single", "NVIDIA_MIG_MONITOR_DEVICES": "all", "MPS_ROOT": "/var/lib/nvidia/mps"}},
				gfdDS: {fields: configFields("nvdp-nvidia-device-plugin-configs", true, gb),
					env: map[string]string{"CONFIG_FILE_SRCDIR": "/available-configs", "DEFAULT_CONFIG": "",
						"FALLBACK_STRATEGIES": "named,single", "NVIDIA_MIG_MONITOR_DEVICES": "all"}},
				mpsDS: {fields: map[string]string{
					"volumes": "available-configs=configMap:nvdp-nvidia-device-plugin-configs,mps-root=hostPath:/var/lib/nvidia/mps,mps-shm=hostPath:/var/lib/nvidia/mps/shm"},
					env: map[string]string{"DEFAULT_CONFIG": "", "FALLBACK_STRATEGIES": "named,single"}},
			},
			check: func(t *testing.T, r *rendered) {
				pod := r.daemonSet(t, mpsDS).Spec.Template.Spec
				if pod.HostPID || boolp(pod.ShareProcessNamespace) != "true" {
					t.Errorf("enableHostPID false: hostPID %v, shareProcessNamespace %s", pod.HostPID, boolp(pod.ShareProcessNamespace))
				}
			}},
	}
}

func TestUpstreamStyleValuesFiles(t *testing.T) {
	v := version(t)
	files, _ := filepath.Glob("testdata/upstream/*.yaml")
	cases := valuesCases(v)
	if len(files) != 26 || len(cases) != 26 {
		t.Fatalf("%d values files, %d cases: want 26 of each", len(files), len(cases))
	}
	for i, tc := range cases {
		if filepath.Base(files[i]) != tc.file {
			t.Fatalf("case %d is %s, file is %s", i, tc.file, files[i])
		}
		t.Run(tc.file, func(t *testing.T) {
			path := files[i]
			h := readHeader(t, path)
			args := []string{"template", "nvdp", chartSrc, "--namespace", h.namespace, "-f", path}
			out, err := helm(t, args...)
			if h.refused != "" {
				if err == nil || !strings.Contains(out, h.refused) {
					t.Fatalf("want the chart to refuse it with %q; err %v, output:\n%s", h.refused, err, out)
				}
				return
			}
			if err != nil {
				t.Fatalf("helm template: %v\n%s", err, out)
			}
			r := decodeAll(t, out)
			want := append([]string(nil), tc.objects...)
			sort.Strings(want)
			if got := r.ours(); strings.Join(got, " ") != strings.Join(want, " ") {
				t.Errorf("objects:\n got  %v\n want %v", got, want)
			}
			if nfd := len(r.kinds) != len(r.ours()); nfd != tc.nfd {
				t.Errorf("NFD subchart rendered: %v, want %v", nfd, tc.nfd)
			}
			for name, w := range tc.ds {
				ds := r.daemonSet(t, name)
				base, envBase := pluginBase(v), pluginEnvBase
				if strings.HasSuffix(name, "gpu-feature-discovery") {
					base, envBase = gfdBase(v), gfdEnvBase
				}
				if strings.HasSuffix(name, "mps-control-daemon") {
					base, envBase = mpsBase(v), mpsEnvBase
				}
				got, env := dsSummary(ds)
				wantFields := merge(base, w.fields)
				for k := range merge(got, wantFields) {
					if got[k] != wantFields[k] {
						t.Errorf("DaemonSet %s: %s\n got  %q\n want %q", name, k, got[k], wantFields[k])
					}
				}
				wantEnv := merge(envBase, w.env)
				for k, val := range wantEnv {
					if val == "-" {
						delete(wantEnv, k)
					}
				}
				if sortedPairs(env) != sortedPairs(wantEnv) {
					t.Errorf("DaemonSet %s: env\n got  %s\n want %s", name, sortedPairs(env), sortedPairs(wantEnv))
				}
			}
			for _, k := range r.ours() {
				if strings.HasPrefix(k, "DaemonSet/") {
					if _, ok := tc.ds[strings.TrimPrefix(k, "DaemonSet/")]; !ok {
						t.Errorf("%s rendered but not checked", k)
					}
				}
			}
			if tc.check != nil {
				tc.check(t, r)
			}
			compareWithNVIDIAChart(t, h, path, r, tc.selectorDiffers)
		})
	}
}

// compareWithNVIDIAChart renders NVIDIA's chart with the same file: each DaemonSet both render must
// have the same name and the same selector. NVIDIA's chart always renders the MPS control daemon; ours
// only with configs (nothing else shares with MPS), and Helm removing upstream's then is no obstacle.
func compareWithNVIDIAChart(t *testing.T, h header, values string, ours *rendered, differs bool) {
	t.Helper()
	out, err := helm(t, "template", "nvdp", nvidiaChart, "--namespace", h.namespace, "-f", values)
	if err != nil {
		t.Fatalf("NVIDIA's chart refuses %s: %v\n%s", values, err, out)
	}
	theirs := decodeAll(t, out)
	common := 0
	for _, k := range theirs.kinds {
		if !strings.HasPrefix(k, "DaemonSet/") {
			continue
		}
		name := strings.TrimPrefix(k, "DaemonSet/")
		if strings.HasSuffix(name, "-mps-control-daemon") && !ours.has(k) {
			continue
		}
		if !ours.has(k) {
			t.Errorf("NVIDIA's chart renders %s, ours does not: no in-place upgrade", k)
			continue
		}
		common++
		a := sortedPairs(theirs.daemonSet(t, name).Spec.Selector.MatchLabels)
		b := sortedPairs(ours.daemonSet(t, name).Spec.Selector.MatchLabels)
		if (a != b) != differs {
			t.Errorf("DaemonSet %s selector: NVIDIA's %s, ours %s (want them %s)", name, a, b,
				map[bool]string{true: "different", false: "equal"}[differs])
		}
	}
	if common == 0 {
		t.Error("no DaemonSet in common with NVIDIA's chart")
	}
}
