{{/*
Expand the name of the chart.
*/}}
{{- define "gpucost.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Create a default fully qualified app name, cut at 63 characters (the DNS label limit).
If the release name contains the chart name it is used as the full name.
*/}}
{{- define "gpucost.fullname" -}}
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

{{/*
Chart name and version as used by the chart label.
*/}}
{{- define "gpucost.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Namespace of every namespaced object.
*/}}
{{- define "gpucost.namespace" -}}
{{- default .Release.Namespace .Values.namespaceOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Common labels.
*/}}
{{- define "gpucost.labels" -}}
helm.sh/chart: {{ include "gpucost.chart" . }}
app.kubernetes.io/part-of: {{ include "gpucost.name" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Selector labels of the exporter.
*/}}
{{- define "gpucost.selectorLabels" -}}
app.kubernetes.io/name: {{ include "gpucost.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: exporter
{{- end }}

{{/*
Selector labels of the budget sidecar.
*/}}
{{- define "gpucost.budgets.selectorLabels" -}}
app.kubernetes.io/name: {{ include "gpucost.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: budgets
{{- end }}

{{/*
Name of the budget sidecar's objects.
*/}}
{{- define "gpucost.budgets.fullname" -}}
{{- printf "%s-budgets" (include "gpucost.fullname" . | trunc 55 | trimSuffix "-") }}
{{- end }}

{{/*
Name of the exporter's ServiceAccount.
*/}}
{{- define "gpucost.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "gpucost.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Name of the budget sidecar's ServiceAccount.
*/}}
{{- define "gpucost.budgets.serviceAccountName" -}}
{{- if .Values.budgets.serviceAccount.create }}
{{- default (include "gpucost.budgets.fullname" .) .Values.budgets.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.budgets.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The image reference: registry/repository, then @digest or :tag (default appVersion).
*/}}
{{- define "gpucost.image" -}}
{{- $repository := .Values.image.repository }}
{{- if .Values.image.registry }}
{{- $repository = printf "%s/%s" .Values.image.registry .Values.image.repository }}
{{- end }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" $repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" $repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
"true" when monitoring.coreos.com objects are to be rendered.
*/}}
{{- define "gpucost.operator.enabled" -}}
{{- $mode := .Values.prometheusOperator.objects }}
{{- if eq $mode "always" }}true
{{- else if and (eq $mode "auto") (.Capabilities.APIVersions.Has "monitoring.coreos.com/v1") }}true
{{- end }}
{{- end }}

{{- define "gpucost.serviceMonitor.enabled" -}}
{{- if and .Values.serviceMonitor.enabled .Values.service.enabled (not .Values.podMonitor.enabled) (include "gpucost.operator.enabled" .) }}true{{ end }}
{{- end }}

{{- define "gpucost.podMonitor.enabled" -}}
{{- if and .Values.podMonitor.enabled (include "gpucost.operator.enabled" .) }}true{{ end }}
{{- end }}

{{/*
"true" when Prometheus finds the exporter through annotations: no Operator monitor selects it.
*/}}
{{- define "gpucost.scrapeAnnotations.enabled" -}}
{{- if and .Values.prometheusScrapeAnnotations.enabled (not (include "gpucost.serviceMonitor.enabled" .)) (not (include "gpucost.podMonitor.enabled" .)) }}true{{ end }}
{{- end }}

{{/*
Relabelings shared by the ServiceMonitor and the PodMonitor.  The exporter's series carry the
workload's namespace/pod/container; the target's own namespace/pod/container/service/endpoint
labels would shadow them (or land on device series as the exporter's pod), so they are dropped and
`node` is the only target label added (docs/architecture.md: "node comes from relabeling").
`job` is set (exporter.scrapeJobName, default gpucost-exporter; gpucost-budgets) whatever the release
is called: GpuCostExporterDown watches that exact job (see gpucost.rules.file).
Called with dict "job" NAME "relabelings" LIST.
*/}}
{{- define "gpucost.monitor.relabelings" -}}
- sourceLabels: [__meta_kubernetes_pod_node_name]
  targetLabel: node
  action: replace
- targetLabel: job
  replacement: {{ .job }}
  action: replace
- regex: (namespace|pod|container|service|endpoint)
  action: labeldrop
{{- with .relabelings }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Teams for the AlertmanagerConfig: budgets.spec.budgets[].scope.team plus alertmanager.config.extraTeams,
sorted and unique, as a YAML list.
*/}}
{{- define "gpucost.alertmanager.teams" -}}
{{- $teams := list }}
{{- range .Values.budgets.spec.budgets }}
{{- with (.scope | default dict).team }}
{{- $teams = append $teams . }}
{{- end }}
{{- end }}
{{- $teams = concat $teams .Values.alertmanager.config.extraTeams | uniq | sortAlpha }}
{{- toYaml $teams }}
{{- end }}

{{/*
An Alertmanager template call, `{{ template "NAME" . }}`, written out literally.
*/}}
{{- define "gpucost.alertmanager.call" -}}
{{- printf "{{ template %q . }}" . }}
{{- end }}

{{/*
A DNS-1123 name part from a file name: lower case, [a-z0-9-] only.
*/}}
{{- define "gpucost.fileNamePart" -}}
{{- regexReplaceAll "[^a-z0-9-]+" (lower .) "-" | trimAll "-" }}
{{- end }}

{{- define "gpucost.budgets.serviceMonitor.enabled" -}}
{{- if and .Values.budgets.enabled .Values.serviceMonitor.enabled (include "gpucost.operator.enabled" .) }}true{{ end }}
{{- end }}

{{/*
A rule file of files/rules, its exporter job replaced by exporter.scrapeJobName.  The committed rules
are rulegen's default output, whose exporter_job is the chart's default job; only the selector text
`job="gpucost-exporter"` is rewritten.  Called with dict "root" $ "path" PATH.
*/}}
{{- define "gpucost.rules.file" -}}
{{- $text := .root.Files.Get .path }}
{{- $job := .root.Values.exporter.scrapeJobName }}
{{- if ne $job "gpucost-exporter" }}
{{- $text = replace "job=\"gpucost-exporter\"" (printf "job=%q" $job) $text }}
{{- end }}
{{- $text }}
{{- end }}

{{/*
scheme, tlsConfig and basicAuth of an exporter scrape endpoint.  The scheme follows the exporter's web
config (https when exporter.webConfig.tls) unless the monitor sets its own.
Called with dict "root" $ "monitor" .Values.serviceMonitor (or .Values.podMonitor).
*/}}
{{- define "gpucost.monitor.transport" -}}
scheme: {{ default (ternary "https" "http" .root.Values.exporter.webConfig.tls) .monitor.scheme }}
{{- with .monitor.tlsConfig }}
tlsConfig:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .monitor.basicAuth }}
basicAuth:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/*
The kubelet's probe scheme: HTTPS when the exporter serves TLS.  /healthz and /readyz are exempt from
basic auth (the kubelet sends no credentials) but not from TLS; the kubelet does not verify the certificate.
*/}}
{{- define "gpucost.exporter.probeScheme" -}}
{{- ternary "HTTPS" "HTTP" .Values.exporter.webConfig.tls }}
{{- end }}

{{/*
The budget sidecar's credential Secrets, as YAML: {aws|gcp|slack: {name, key}} for each one set.  Each
is mounted read-only at /var/run/secrets/<aws|gcp|slack>/<key> and named by a flag.
*/}}
{{- define "gpucost.budgets.secretFiles" -}}
{{- $b := .Values.budgets }}
{{- $files := dict }}
{{- if $b.aws.existingSecret }}{{ $_ := set $files "aws" (dict "name" $b.aws.existingSecret "key" $b.aws.existingSecretKey) }}{{ end }}
{{- if $b.gcp.existingSecret }}{{ $_ := set $files "gcp" (dict "name" $b.gcp.existingSecret "key" $b.gcp.existingSecretKey) }}{{ end }}
{{- if $b.slack.existingSecret }}{{ $_ := set $files "slack" (dict "name" $b.slack.existingSecret "key" $b.slack.existingSecretKey) }}{{ end }}
{{- toYaml $files }}
{{- end }}
