{{/*
Names. With the release named "imagestream-trigger" every object gets the name it has in
manifests/ (a test compares the two renders).
*/}}
{{- define "imagestream-trigger.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "imagestream-trigger.fullname" -}}
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

{{- define "imagestream-trigger.serviceAccountName" -}}
{{- default (include "imagestream-trigger.fullname" .) .Values.serviceAccount.name }}
{{- end }}

{{/*
Selector labels: the same as manifests/, so that moving from `oc apply -k manifests/` to
the chart keeps the Deployment's (immutable) selector.
*/}}
{{- define "imagestream-trigger.selectorLabels" -}}
app.kubernetes.io/name: {{ include "imagestream-trigger.name" . }}
app.kubernetes.io/component: operator
{{- end }}

{{/* Labels on every object: the ones manifests/ sets, plus Helm's. */}}
{{- define "imagestream-trigger.labels" -}}
app.kubernetes.io/name: {{ include "imagestream-trigger.name" . }}
app.kubernetes.io/part-of: imagestream-trigger
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "imagestream-trigger.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* The Lease the replicas elect their writer with: one per release. */}}
{{- define "imagestream-trigger.leaseName" -}}
{{- default (include "imagestream-trigger.fullname" .) .Values.leaderElection.leaseName }}
{{- end }}
