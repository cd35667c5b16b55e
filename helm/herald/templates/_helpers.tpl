{{/* Names, labels and shared pieces of the Herald chart. */}}

{{- define "herald.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "herald.fullname" -}}
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

{{- define "herald.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "herald.selectorLabels" -}}
app.kubernetes.io/name: {{ include "herald.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Selects the Herald nodes only (the bundled Redis shares name and instance). */}}
{{- define "herald.serverSelectorLabels" -}}
{{ include "herald.selectorLabels" . }}
app.kubernetes.io/component: server
{{- end }}

{{- define "herald.labels" -}}
helm.sh/chart: {{ include "herald.chart" . }}
{{ include "herald.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: herald
{{- end }}

{{- define "herald.componentLabels" -}}
{{ include "herald.labels" . }}
app.kubernetes.io/component: server
{{- end }}

{{- define "herald.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "herald.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "herald.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{/* The Secret with the default app's credentials (and herald.toml when it holds extra apps). */}}
{{- define "herald.appsSecretName" -}}
{{- .Values.apps.existingSecret | default (printf "%s-apps" (include "herald.fullname" .)) }}
{{- end }}

{{- define "herald.redisName" -}}
{{- printf "%s-redis" (include "herald.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The port serving /metrics, /livez and /readyz. */}}
{{- define "herald.healthPort" -}}
{{- if .Values.herald.metricsPort }}metrics{{ else }}http{{ end }}
{{- end }}

{{/* The probes speak HTTPS when the main port serves TLS and the probes are on it. */}}
{{- define "herald.healthScheme" -}}
{{- if and .Values.herald.tls.secretName (not .Values.herald.metricsPort) }}HTTPS{{ else }}HTTP{{ end }}
{{- end }}

{{/* herald.toml holds extra apps (secrets) -> it lives in the Secret; otherwise in the ConfigMap. */}}
{{- define "herald.configInSecret" -}}
{{- if .Values.apps.extra }}true{{ end }}
{{- end }}

{{/* The default app's secret: given, else the one already installed, else a new random one. */}}
{{- define "herald.appSecret" -}}
{{- if .Values.apps.default.secret }}
{{- .Values.apps.default.secret }}
{{- else }}
{{- $existing := lookup "v1" "Secret" .Release.Namespace (include "herald.appsSecretName" .) }}
{{- if and $existing $existing.data (hasKey $existing.data "HERALD_APP_SECRET") }}
{{- index $existing.data "HERALD_APP_SECRET" | b64dec }}
{{- else }}
{{- randAlphaNum 40 }}
{{- end }}
{{- end }}
{{- end }}

{{/* One TOML value: string, bool, integer, or a list of them (Helm holds numbers as float64). */}}
{{- define "herald.tomlValue" -}}
{{- $v := . }}
{{- if kindIs "string" $v }}{{ $v | toJson }}
{{- else if kindIs "bool" $v }}{{ $v }}
{{- else if or (kindIs "float64" $v) (kindIs "int" $v) (kindIs "int64" $v) }}{{ int64 $v }}
{{- else if kindIs "slice" $v }}[{{ range $i, $e := $v }}{{ if $i }}, {{ end }}{{ include "herald.tomlValue" $e }}{{ end }}]
{{- else if kindIs "map" $v }}{ {{- $first := true }}{{ range $k, $e := $v }}{{ if not $first }},{{ end }}{{ $first = false }} {{ $k }} = {{ include "herald.tomlValue" $e }}{{ end }} }
{{- else }}{{ fail (printf "herald.toml: cannot write %v (%s)" $v (kindOf $v)) }}
{{- end }}
{{- end }}

{{/* The environment variable that carries secretsFrom.<key> of apps.extra[i] into herald.toml's ${…}. */}}
{{- define "herald.extraSecretVar" -}}
{{- printf "HERALD_EXTRA_APP_%d_%s" (index . 0) (upper (index . 1)) -}}
{{- end }}

{{/* herald.toml: node settings from herald.config, Laravel's prefix and the extra apps (their secretsFrom as
${HERALD_EXTRA_APP_<i>_<KEY>}, which Herald reads from the environment). */}}
{{- define "herald.toml" -}}
# herald.toml, written by the Herald Helm chart. Environment variables override it.
{{- range $k, $v := .Values.herald.config }}
{{ $k }} = {{ include "herald.tomlValue" $v }}
{{- end }}
[redis]
prefix = {{ include "herald.tomlValue" .Values.herald.redisPrefix }}
{{- range $i, $app := .Values.apps.extra }}
[[apps]]
{{- range $k, $v := $app }}
{{- if eq $k "secretsFrom" }}
{{- range $key, $ref := $v }}
{{ $key }} = {{ printf "${%s}" (include "herald.extraSecretVar" (list $i $key)) | quote }}
{{- end }}
{{- else }}
{{ $k }} = {{ include "herald.tomlValue" $v }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/* Checks that fail the install with a message instead of a broken release. */}}
{{- define "herald.validate" -}}
{{- if eq .Values.redis.mode "none" }}
{{- if or (gt (int .Values.replicaCount) 1) .Values.autoscaling.enabled }}
{{- fail "redis.mode=none runs one in-memory node: set replicaCount=1 and autoscaling.enabled=false, or use redis.mode=bundled|external" }}
{{- end }}
{{- end }}
{{- if and (eq .Values.redis.mode "external") (not (or .Values.redis.url .Values.redis.existingSecret)) }}
{{- fail "redis.mode=external needs redis.url or redis.existingSecret" }}
{{- end }}
{{- if and .Values.apps.existingSecret .Values.apps.extra }}
{{- fail "apps.extra holds secrets and is written to the chart's own Secret: it cannot be used with apps.existingSecret" }}
{{- end }}
{{- if and .Values.herald.metricsPort (eq (int .Values.herald.metricsPort) (int .Values.herald.port)) }}
{{- fail "herald.metricsPort must differ from herald.port (or be 0)" }}
{{- end }}
{{- end }}
