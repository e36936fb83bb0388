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

{{- define "nvidia-device-plugin.serviceAccountName" -}}
{{- printf "%s-service-account" (include "nvidia-device-plugin.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "nvidia-device-plugin.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
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

{{/* The default config name: config.default, else "default" when the map has one, else the only
entry; empty when none can be resolved (the fallback strategies then apply on the node). */}}
{{- define "nvidia-device-plugin.defaultConfig" -}}
{{- if .Values.config.default }}
{{- .Values.config.default }}
{{- else if hasKey .Values.config.map "default" }}
{{- "default" }}
{{- else if eq (len .Values.config.map) 1 }}
{{- keys .Values.config.map | first }}
{{- end }}
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
- name: NODE_NAME
  valueFrom:
    fieldRef:
      fieldPath: spec.nodeName
- name: CONFIG_FILE_SRCDIR
  value: /available-configs
- name: DEFAULT_CONFIG
  value: {{ include "nvidia-device-plugin.defaultConfig" . | quote }}
- name: FALLBACK_STRATEGIES
  value: {{ join "," .Values.config.fallbackStrategies | quote }}
{{- end }}
{{- if include "nvidia-device-plugin.migPossible" . }}
- name: NVIDIA_MIG_MONITOR_DEVICES
  value: all
{{- end }}
{{- end }}
