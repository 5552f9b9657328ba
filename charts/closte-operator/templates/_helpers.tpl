{{/* The chart name, or nameOverride. */}}
{{- define "closte-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The prefix of every object name. */}}
{{- define "closte-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else if contains (include "closte-operator.name" .) .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "closte-operator.name" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/* Labels of every object but the component. */}}
{{- define "closte-operator.commonLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "closte-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "closte-operator.labels" -}}
{{ include "closte-operator.commonLabels" . }}
app.kubernetes.io/component: controller
{{- end }}

{{- define "closte-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "closte-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: controller
{{- end }}

{{- define "closte-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "closte-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Secret with the controller's API key, if any. */}}
{{- define "closte-operator.apiKeySecret" -}}
{{- if .Values.closte.existingSecret }}
{{- .Values.closte.existingSecret }}
{{- else if .Values.closte.apiKey }}
{{- printf "%s-api-key" (include "closte-operator.fullname" .) }}
{{- end }}
{{- end }}

{{- define "closte-operator.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/*
The sidecar container for a WordPress pod. Include it in your WordPress
Deployment's containers (in a chart that depends on this one), or copy it from
`helm template`. The pod needs serviceAccountName
{{ .Values.sidecar.serviceAccountName }}, a volume "closte-sidecar-token" from the
Secret {{ .Values.sidecar.tokenSecret }}, and the mu-plugin ConfigMap mounted into
wp-content/mu-plugins (see the README).
*/}}
{{- define "closte-operator.sidecarContainer" -}}
- name: closte-sidecar
  image: {{ include "closte-operator.image" . }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  args:
    - sidecar
    - --token-file=/var/run/closte-sidecar/token
    - --credentials-secret={{ .Values.sidecar.credentialsSecret }}
    {{- with .Values.sidecar.checkInterval }}
    - --check-interval={{ . }}
    {{- end }}
    - --log-format=json
  env:
    - name: MALLOC_ARENA_MAX
      value: "1"
  resources:
    requests: {cpu: 10m, memory: 16Mi}
    limits: {memory: 48Mi}
  securityContext:
    runAsNonRoot: true
    readOnlyRootFilesystem: true
    allowPrivilegeEscalation: false
    capabilities: {drop: [ALL]}
    seccompProfile: {type: RuntimeDefault}
  volumeMounts:
    - name: closte-sidecar-token
      mountPath: /var/run/closte-sidecar
      readOnly: true
{{- end }}
