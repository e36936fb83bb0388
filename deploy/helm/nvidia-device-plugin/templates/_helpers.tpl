{{/* Names */}}
{{- define "nvidia-device-plugin.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "nvidia-device-plugin.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "nvidia-device-plugin.namespace" -}}
{{- default .Release.Namespace .Values.namespaceOverride }}
{{- end }}

{{- define "nvidia-device-plugin.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "nvidia-device-plugin.labels" -}}
helm.sh/chart: {{ include "nvidia-device-plugin.chart" . }}
{{ include "nvidia-device-plugin.templateLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Labels and selectors are upstream's, so that `helm upgrade` can take over a release of NVIDIA's
chart in place: a DaemonSet's selector cannot change. The pod labels: name, instance and
selectorLabelsOverride; the selector: selectorLabelsOverride alone when set, else name and
instance. */}}
{{- define "nvidia-device-plugin.templateLabels" -}}
app.kubernetes.io/name: {{ include "nvidia-device-plugin.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- with .Values.selectorLabelsOverride }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "nvidia-device-plugin.selectorLabels" -}}
{{- if .Values.selectorLabelsOverride }}
{{- toYaml .Values.selectorLabelsOverride }}
{{- else }}
app.kubernetes.io/name: {{ include "nvidia-device-plugin.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}
{{- end }}

{{/* A DaemonSet's selector: upstream's, plus its component label with componentSelectorLabels.enabled
(upstream v0.20.0). Call with (dict "root" $ "component" "k8s-device-plugin"). */}}
{{- define "nvidia-device-plugin.daemonSetSelector" -}}
{{ include "nvidia-device-plugin.selectorLabels" .root }}
{{- if .root.Values.componentSelectorLabels.enabled }}
app.kubernetes.io/component: {{ .component }}
{{- end }}
{{- end }}

{{/* A DaemonSet's pod labels: always with the component label (not part of the selector unless
componentSelectorLabels.enabled, so adding it never blocks an upgrade). */}}
{{- define "nvidia-device-plugin.podLabels" -}}
{{ include "nvidia-device-plugin.templateLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* Service accounts: the plugin keeps upstream's name; GFD has its own, so that each gets only the
API access its own features need. */}}
{{- define "nvidia-device-plugin.serviceAccountName" -}}
{{- printf "%s-service-account" (include "nvidia-device-plugin.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "nvidia-device-plugin.gfdServiceAccountName" -}}
{{- printf "%s-gpu-feature-discovery" (include "nvidia-device-plugin.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "nvidia-device-plugin.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* "true" when the image is nvdp's. NVIDIA's images (k8s-device-plugin, gpu-feature-discovery, from
nvcr.io or a mirror) get none of what only nvdp's binary understands: no nvdp flags, no metrics
port, no probes on /healthz. */}}
{{- define "nvidia-device-plugin.nvdpImage" -}}
{{- $base := .Values.image.repository | splitList "/" | last }}
{{- if not (has $base (list "k8s-device-plugin" "gpu-feature-discovery")) }}true{{ end }}
{{- end }}

{{- define "nvidia-device-plugin.configMapName" -}}
{{- if .Values.config.name }}
{{- .Values.config.name }}
{{- else }}
{{- printf "%s-configs" (include "nvidia-device-plugin.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/* "true" when configs come from a ConfigMap (ours or an existing one). */}}
{{- define "nvidia-device-plugin.hasConfig" -}}
{{- if or .Values.config.name (gt (len .Values.config.map) 0) }}true{{ end }}
{{- end }}

{{/* "true" when a node without a config label still gets a config, by upstream's rules: config.default,
or a fallback strategy that applies to config.map ("named" with an entry "default", "single" with
one entry, "empty" always). */}}
{{- define "nvidia-device-plugin.hasDefaultConfig" -}}
{{- $f := .Values.config.fallbackStrategies }}
{{- $m := .Values.config.map }}
{{- if or .Values.config.default (and (has "named" $f) (hasKey $m "default")) (and (has "single" $f) (eq (len $m) 1)) (has "empty" $f) }}true{{ end }}
{{- end }}

{{/* deviceListStrategy as the comma list the plugin reads; a string or a list in values. */}}
{{- define "nvidia-device-plugin.deviceListStrategy" -}}
{{- $s := .Values.deviceListStrategy }}
{{- if kindIs "slice" $s }}{{ join "," $s }}{{ else if $s }}{{ $s }}{{ end }}
{{- end }}

{{/* "true" when a MIG strategy other than none may be in use: set explicitly, or possibly set by a
config file when migStrategy is not pinned (as upstream's chart assumes). */}}
{{- define "nvidia-device-plugin.migPossible" -}}
{{- if .Values.migStrategy }}
{{- if ne .Values.migStrategy "none" }}true{{ end }}
{{- else if include "nvidia-device-plugin.hasConfig" . }}true{{ end }}
{{- end }}

{{/* "true" when the volume-mounts device list strategy may be in use. */}}
{{- define "nvidia-device-plugin.volumeMountsPossible" -}}
{{- if .Values.deviceListStrategy }}
{{- if has "volume-mounts" (splitList "," (include "nvidia-device-plugin.deviceListStrategy" .)) }}true{{ end }}
{{- else if include "nvidia-device-plugin.hasConfig" . }}true{{ end }}
{{- end }}

{{/* "true" when a CDI device list strategy is chosen. */}}
{{- define "nvidia-device-plugin.cdiEnabled" -}}
{{- $l := splitList "," (include "nvidia-device-plugin.deviceListStrategy" .) }}
{{- if or (has "cdi-annotations" $l) (has "cdi-cri" $l) }}true{{ end }}
{{- end }}

{{/* "true" when a config may share GPUs with MPS: sharing comes only from a config file, so with
configs (config.map or config.name). The MPS root is mounted and the MPS control daemon's DaemonSet
rendered then only. */}}
{{- define "nvidia-device-plugin.mpsPossible" -}}
{{- if and (include "nvidia-device-plugin.pluginRuns" .) (include "nvidia-device-plugin.hasConfig" .) }}true{{ end }}
{{- end }}

{{/* The init container that copies the static nvdp-cdi-hook to the node (cdi.installHook), for the pods
that write CDI specs: the device plugin and the DRA driver. */}}
{{- define "nvidia-device-plugin.installCdiHook" -}}
{{- if .Values.cdi.installHook -}}
# nvdp-cdi-hook (static: it runs on the node, whatever its C library) into cdi.hookDir; left
# alone when the same file is there. The image has no shell: nvdp copies it.
initContainers:
- name: install-cdi-hook
  image: {{ include "nvidia-device-plugin.image" . }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  command: ["/usr/bin/nvdp", "cdi", "install-hook", "/cdi-hook"]
  securityContext:
    allowPrivilegeEscalation: false
    readOnlyRootFilesystem: true
    runAsUser: 0
    runAsGroup: 0
    capabilities:
      drop: ["ALL"]
  volumeMounts:
  - name: cdi-hook
    mountPath: /cdi-hook
{{- end }}
{{- end }}

{{/* The hook path the plugin's CDI spec names: cdi.nvidiaHookPath, or the copy cdi.installHook makes;
empty for the plugin's default. */}}
{{- define "nvidia-device-plugin.cdiHookPath" -}}
{{- if .Values.cdi.installHook }}{{ printf "%s/nvdp-cdi-hook" (trimSuffix "/" .Values.cdi.hookDir) }}
{{- else if .Values.cdi.nvidiaHookPath }}{{ .Values.cdi.nvidiaHookPath }}{{ end }}
{{- end }}

{{/* ---- API access: one place per pod says what it calls, so the token, the ClusterRole and the
Roles follow from it. A feature that calls the API server adds its rules here (with the call site in
docs/deploy.md, "RBAC"). */}}

{{/* The plugin's cluster-wide rules. */}}
{{- define "nvidia-device-plugin.pluginClusterRules" -}}
{{- if or (include "nvidia-device-plugin.hasConfig" .) (and (include "nvidia-device-plugin.migPossible" .) (include "nvidia-device-plugin.nvdpImage" .)) }}
# It follows its Node's nvidia.com/device-plugin.config label (configs) and nvidia.com/mig.config.state
# (a MIG strategy: the MIG manager's "success" means a new MIG layout): LIST, then WATCH, of
# /api/v1/nodes?fieldSelector=metadata.name=<node> (node_config_watch_start, src/daemon/node-config.c).
# So does the MPS control daemon (the config label), under the same service account.
- apiGroups: [""]
  resources: ["nodes"]
  verbs: ["list", "watch"]
{{- end }}
{{- end }}

{{/* "true" when the device plugin DaemonSet runs: devicePlugin.enabled and not replaced by the DRA
driver (dra.enabled). */}}
{{- define "nvidia-device-plugin.pluginRuns" -}}
{{- if and .Values.devicePlugin.enabled (not .Values.dra.enabled) }}true{{ end }}
{{- end }}

{{/* "true" when the plugin posts Node events (POST /api/v1/namespaces/default/events). */}}
{{- define "nvidia-device-plugin.pluginEvents" -}}
{{- if and (include "nvidia-device-plugin.pluginRuns" .) .Values.events.enabled }}true{{ end }}
{{- end }}

{{/* The DRA driver's cluster-wide rules: its Node (GET, for the ResourceSlices' owner reference,
dra_publisher), its ResourceSlices (LIST with a field selector, server-side apply PATCH which creates
them too, DELETE of slices no longer published), the ResourceClaims the kubelet names (GET,
dra_service). */}}
{{- define "nvidia-device-plugin.draClusterRules" -}}
{{- if .Values.dra.enabled }}
- apiGroups: [""]
  resources: ["nodes"]
  verbs: ["get"]
- apiGroups: ["resource.k8s.io"]
  resources: ["resourceslices"]
  verbs: ["list", "create", "patch", "delete"]
- apiGroups: ["resource.k8s.io"]
  resources: ["resourceclaims"]
  verbs: ["get"]
{{- end }}
{{- end }}

{{/* "true" when GFD writes its node's NodeFeature object (--use-node-feature-api, upstream's default):
not with gfd.outputNode, nor when gfd.env sets GFD_USE_NODE_FEATURE_API or USE_NODE_FEATURE_API to
false. */}}
{{- define "nvidia-device-plugin.gfdNodeFeature" -}}
{{- if and .Values.gfd.enabled (not .Values.gfd.outputNode) }}
{{- $off := false }}
{{- range .Values.gfd.env }}
{{- if and (has .name (list "GFD_USE_NODE_FEATURE_API" "USE_NODE_FEATURE_API")) (eq (toString .value) "false") }}{{ $off = true }}{{ end }}
{{- end }}
{{- if not $off }}true{{ end }}
{{- end }}
{{- end }}

{{/* GFD's cluster-wide rules. */}}
{{- define "nvidia-device-plugin.gfdClusterRules" -}}
{{- if and (include "nvidia-device-plugin.hasConfig" .) (include "nvidia-device-plugin.nvdpImage" .) }}
# nvdp's GFD follows its Node's nvidia.com/device-plugin.config label, as the plugin: LIST, then WATCH, of
# /api/v1/nodes?fieldSelector=metadata.name=<node> (node_config_watch_start in src/cmd/cmd-gfd.c).
- apiGroups: [""]
  resources: ["nodes"]
  verbs: ["list", "watch"]
{{- end }}
{{- if .Values.gfd.outputNode }}
# --output=node: GET its Node, then a merge PATCH of the labels that differ (labels_node_apply).
- apiGroups: [""]
  resources: ["nodes"]
  verbs: ["get", "patch"]
{{- else if and (include "nvidia-device-plugin.gfdNodeFeature" .) (include "nvidia-device-plugin.nvdpImage" .) }}
# NodeFeature output: GET its Node for the uid of the NodeFeature's owner reference, only when the
# object is missing or differs (labels_nodefeature_apply).
- apiGroups: [""]
  resources: ["nodes"]
  verbs: ["get"]
{{- end }}
{{- end }}

{{/* GFD's rules in its own namespace. */}}
{{- define "nvidia-device-plugin.gfdNamespaceRules" -}}
{{- if include "nvidia-device-plugin.gfdNodeFeature" . }}
# NodeFeature output: GET its node's NodeFeature, then POST (create) or PUT (update) only when it is
# missing or differs (labels_nodefeature_apply).
- apiGroups: ["nfd.k8s-sigs.io"]
  resources: ["nodefeatures"]
  verbs: ["get", "create", "update"]
{{- if not (include "nvidia-device-plugin.nvdpImage" .) }}
# NVIDIA's GFD reads its own Pod for the owner references of its NodeFeature.
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get"]
{{- end }}
{{- end }}
{{- end }}

{{- define "nvidia-device-plugin.pluginNeedsToken" -}}
{{- if and (include "nvidia-device-plugin.pluginRuns" .) (or (include "nvidia-device-plugin.pluginClusterRules" . | trim) (include "nvidia-device-plugin.pluginEvents" .)) }}true{{ end }}
{{- end }}

{{- define "nvidia-device-plugin.gfdNeedsToken" -}}
{{- if and .Values.gfd.enabled (or (include "nvidia-device-plugin.gfdClusterRules" . | trim) (include "nvidia-device-plugin.gfdNamespaceRules" . | trim)) }}true{{ end }}
{{- end }}

{{/* The plugin container's securityContext: explicit value wins; else the least privilege the
other values allow. uid 0 because the kubelet's socket directory belongs to root; with every
capability dropped that is owner access to root-owned files and nothing more. */}}
{{- define "nvidia-device-plugin.securityContext" -}}
{{- if .Values.securityContext }}
{{- toYaml .Values.securityContext }}
{{- else if .Values.compatWithCPUManager }}
privileged: true
runAsUser: 0
{{- else }}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsUser: 0
runAsGroup: 0
capabilities:
  drop: ["ALL"]
{{- if or (include "nvidia-device-plugin.migPossible" .) (include "nvidia-device-plugin.volumeMountsPossible" .) }}
  add: ["SYS_ADMIN"]
{{- end }}
{{- end }}
{{- end }}

{{- define "nvidia-device-plugin.gfdSecurityContext" -}}
{{- if .Values.gfd.securityContext }}
{{- toYaml .Values.gfd.securityContext }}
{{- else }}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
{{- if .Values.gfd.outputNode }}
runAsNonRoot: true
runAsUser: 65534
runAsGroup: 65534
{{- else }}
runAsUser: 0
runAsGroup: 0
{{- end }}
capabilities:
  drop: ["ALL"]
{{- end }}
{{- end }}

{{/* Env shared by the plugin and GFD: upstream's settings when set, and the config selection. */}}
{{- define "nvidia-device-plugin.commonEnv" -}}
{{- if typeIs "string" .Values.migStrategy }}
- name: MIG_STRATEGY
  value: {{ .Values.migStrategy | quote }}
{{- end }}
{{- if typeIs "bool" .Values.failOnInitError }}
- name: FAIL_ON_INIT_ERROR
  value: {{ .Values.failOnInitError | quote }}
{{- end }}
{{- if typeIs "string" .Values.deviceDiscoveryStrategy }}
- name: DEVICE_DISCOVERY_STRATEGY
  value: {{ .Values.deviceDiscoveryStrategy | quote }}
{{- end }}
{{- if include "nvidia-device-plugin.hasConfig" . }}
- name: CONFIG_FILE_SRCDIR
  value: /available-configs
- name: DEFAULT_CONFIG
  value: {{ .Values.config.default | quote }}
- name: FALLBACK_STRATEGIES
  value: {{ join "," .Values.config.fallbackStrategies | quote }}
{{- end }}
{{- if include "nvidia-device-plugin.migPossible" . }}
- name: NVIDIA_MIG_MONITOR_DEVICES
  value: all
{{- end }}
{{- end }}

{{/* The node's name from the downward API. */}}
{{- define "nvidia-device-plugin.nodeNameEnv" -}}
- name: NODE_NAME
  valueFrom:
    fieldRef:
      fieldPath: spec.nodeName
{{- end }}
