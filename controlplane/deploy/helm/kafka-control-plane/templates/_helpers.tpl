{{/* Names and labels. */}}
{{- define "kcp.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* At most 40 characters: the longest suffix (-worker-<group>, -migrate-<revision>-<hash>) fits in 63. */}}
{{- define "kcp.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "kcp.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kcp.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "kcp.labels" -}}
{{ include "kcp.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "kcp.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "kcp.secretName" -}}
{{ .Values.existingSecret | default (include "kcp.fullname" .) }}
{{- end -}}

{{- define "kcp.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{ .Values.serviceAccount.name | default (include "kcp.fullname" .) }}
{{- else -}}
{{ .Values.serviceAccount.name | default "default" }}
{{- end -}}
{{- end -}}

{{/* One Job per release revision and image: a Job's pod template cannot change, and Argo CD renders
every revision as revision 1, so the image keeps its Jobs apart there. */}}
{{- define "kcp.migrationJobName" -}}
{{ include "kcp.fullname" . }}-migrate-{{ .Release.Revision }}-{{ include "kcp.image" . | sha256sum | trunc 6 }}
{{- end -}}

{{/* The environment of every container: settings from the ConfigMap, credentials from the Secret,
the pod's own name and address (entrypoint.sh allows the address as a host: probes and scrapes
reach pods by it). */}}
{{- define "kcp.env" -}}
envFrom:
  - configMapRef: {name: {{ include "kcp.fullname" . }}}
env:
  - name: POD_NAME
    valueFrom: {fieldRef: {fieldPath: metadata.name}}
  - name: POD_IP
    valueFrom: {fieldRef: {fieldPath: status.podIP}}
  - name: DATABASE_URL
    valueFrom: {secretKeyRef: {name: {{ include "kcp.secretName" . }}, key: {{ .Values.secretKeys.databaseUrl }}}}
  - name: REDIS_URL
    valueFrom: {secretKeyRef: {name: {{ include "kcp.secretName" . }}, key: {{ .Values.secretKeys.redisUrl }}}}
  - name: SECRET_KEY
    valueFrom: {secretKeyRef: {name: {{ include "kcp.secretName" . }}, key: {{ .Values.secretKeys.secretKey }}}}
  - name: SECRETS_ENCRYPTION_KEYS
    valueFrom: {secretKeyRef: {name: {{ include "kcp.secretName" . }}, key: {{ .Values.secretKeys.encryptionKeys }}}}
  - name: METRICS_BEARER_TOKEN
    valueFrom: {secretKeyRef: {name: {{ include "kcp.secretName" . }}, key: {{ .Values.secretKeys.metricsBearerToken }}, optional: true}}
{{- end -}}

{{/* The read-only root file system's writable places. */}}
{{- define "kcp.volumeMounts" -}}
volumeMounts:
  - {name: tmp, mountPath: /tmp}
  - {name: state, mountPath: /var/lib/kafka-control-plane}
{{- end -}}

{{- define "kcp.volumes" -}}
volumes:
  - {name: tmp, emptyDir: {}}
  - {name: state, emptyDir: {}}
{{- end -}}

{{/* Pods that use the database start only once it has every migration of their image. */}}
{{- define "kcp.waitForMigrations" -}}
initContainers:
  - name: wait-for-migrations
    image: {{ include "kcp.image" . }}
    imagePullPolicy: {{ .Values.image.pullPolicy }}
    args: [wait-for-migrations]
    {{- include "kcp.env" . | nindent 4 }}
    {{- include "kcp.volumeMounts" . | nindent 4 }}
    securityContext: {{- toYaml .Values.securityContext | nindent 6 }}
    resources: {{- toYaml .Values.migrations.resources | nindent 6 }}
{{- end -}}

{{/* What every pod template shares; `podValues` holds the component's nodeSelector and the like. */}}
{{- define "kcp.podCommon" -}}
{{- $root := .root -}}
serviceAccountName: {{ include "kcp.serviceAccountName" $root }}
{{- with $root.Values.imagePullSecrets }}
imagePullSecrets: {{- toYaml . | nindent 2 }}
{{- end }}
securityContext: {{- toYaml $root.Values.podSecurityContext | nindent 2 }}
{{- with .podValues.nodeSelector }}
nodeSelector: {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .podValues.tolerations }}
tolerations: {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .podValues.affinity }}
affinity: {{- toYaml . | nindent 2 }}
{{- end }}
{{ include "kcp.volumes" $root }}
{{- end -}}

{{/* Replicas of one component spread over hosts and zones where the cluster allows. */}}
{{- define "kcp.spread" -}}
topologySpreadConstraints:
  - maxSkew: 1
    topologyKey: topology.kubernetes.io/zone
    whenUnsatisfiable: ScheduleAnyway
    labelSelector:
      matchLabels: {{- include "kcp.selectorLabels" . | nindent 8 }}
  - maxSkew: 1
    topologyKey: kubernetes.io/hostname
    whenUnsatisfiable: ScheduleAnyway
    labelSelector:
      matchLabels: {{- include "kcp.selectorLabels" . | nindent 8 }}
{{- end -}}

{{/* The checksum of the settings, so a changed ConfigMap rolls the pods. */}}
{{- define "kcp.configChecksum" -}}
checksum/config: {{ include (print .Template.BasePath "/configmap.yaml") . | sha256sum }}
{{- end -}}

{{/* Web and worker pods reach in-cluster Kubernetes targets with the service account's token. */}}
{{- define "kcp.automountToken" -}}
{{- if kindIs "bool" .Values.serviceAccount.automountToken -}}
{{ .Values.serviceAccount.automountToken }}
{{- else -}}
{{ .Values.kubernetesTargets.rbac.create }}
{{- end -}}
{{- end -}}
