{{/* Names and labels shared by every template. */}}

{{- define "herald.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "herald.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "herald.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "herald.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "herald.selectorLabels" -}}
app.kubernetes.io/name: {{ include "herald.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "herald.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "herald.controller.serviceAccountName" -}}
{{- if .Values.controller.serviceAccount.create -}}
{{- .Values.controller.serviceAccount.name | default (printf "%s-controller" (include "herald.fullname" .)) -}}
{{- else -}}
{{- .Values.controller.serviceAccount.name | default "default" -}}
{{- end -}}
{{- end -}}

{{- define "herald.speaker.serviceAccountName" -}}
{{- if .Values.speaker.serviceAccount.create -}}
{{- .Values.speaker.serviceAccount.name | default (printf "%s-speaker" (include "herald.fullname" .)) -}}
{{- else -}}
{{- .Values.speaker.serviceAccount.name | default "default" -}}
{{- end -}}
{{- end -}}

{{/* The log level of a role: its own logLevel, else the global one. */}}
{{- define "herald.logLevel" -}}
{{- $role := index .root.Values .role -}}
{{- if kindIs "invalid" $role.logLevel -}}{{ .root.Values.logLevel }}{{- else -}}{{ $role.logLevel }}{{- end -}}
{{- end -}}

{{- /* The Secret holding the speakers' fast-path secret, which the controller creates. */ -}}
{{- define "herald.fastPath.secretName" -}}
{{- .Values.speaker.fastPath.secretName | default (printf "%s-fast-path" (include "herald.fullname" .)) -}}
{{- end -}}

{{- /* Whether the speakers run the fast path. */ -}}
{{- define "herald.fastPath.enabled" -}}
{{- if and .Values.speaker.enabled .Values.speaker.fastPath.enabled }}true{{ end -}}
{{- end -}}

{{- /* Where the speaker mounts the fast path's Secret: a directory of its own, not inside
/etc/herald (the ConfigMap's volume), so that no volume is mounted inside another. */ -}}
{{- define "herald.fastPath.dir" -}}
/etc/herald-fast-path
{{- end -}}

{{- /* The one namespace Herald reads its metallb.io configuration from. */ -}}
{{- define "herald.configNamespace" -}}
{{- .Values.configNamespace | default .Release.Namespace -}}
{{- end -}}
