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

{{/* The Secret the sidecar names in what it writes: NAME of NAME[:KEY]. */}}
{{- define "closte-operator.sidecarSecretName" -}}
{{- (splitn ":" 2 .Values.sidecar.credentialsSecret)._0 }}
{{- end }}

{{/* ... and its KEY; apiKey when not given, as the sidecar's own default. */}}
{{- define "closte-operator.sidecarSecretKey" -}}
{{- default "apiKey" (splitn ":" 2 .Values.sidecar.credentialsSecret)._1 }}
{{- end }}

{{/*
The sidecar container for a WordPress pod. Include it in your WordPress
Deployment's containers (in a chart that depends on this one), or copy it from
`helm template`. The pod needs serviceAccountName
{{ .Values.sidecar.serviceAccountName }}, automountServiceAccountToken: false
(WordPress gets no Kubernetes credential), securityContext.fsGroup set to the
web server's group (33, www-data, in the official Debian-based WordPress
images), the volumes of "closte-operator.sidecarVolumes", and the mu-plugin
ConfigMap mounted into wp-content/mu-plugins (see the README).
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
    # the sidecar's own Kubernetes credential, where in-cluster clients look
    - name: closte-sidecar-kube-api
      mountPath: /var/run/secrets/kubernetes.io/serviceaccount
      readOnly: true
{{- end }}

{{/*
The volumes of the sidecar container, for the WordPress pod's volumes.
closte-sidecar-token: the token WordPress and the sidecar share, key "token"
only, 0440 (the group is the pod's fsGroup: the web server reads it as its
own group, the sidecar as a supplementary one). closte-sidecar-kube-api: what
automountServiceAccountToken would give every container, for the sidecar
alone: a token for the API server that lasts an hour and is renewed by the
kubelet (3607 s would be stretched to a year), the cluster CA, the namespace.
*/}}
{{- define "closte-operator.sidecarVolumes" -}}
- name: closte-sidecar-token
  secret:
    secretName: {{ .Values.sidecar.tokenSecret }}
    items:
      - {key: token, path: token}
    defaultMode: 0440
- name: closte-sidecar-kube-api
  projected:
    defaultMode: 0440
    sources:
      - serviceAccountToken: {path: token, expirationSeconds: 3600}
      - configMap:
          name: kube-root-ca.crt
          items:
            - {key: ca.crt, path: ca.crt}
      - downwardAPI:
          items:
            - path: namespace
              fieldRef: {fieldPath: metadata.namespace}
{{- end }}
