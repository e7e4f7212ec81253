{{/* The chart name, overridable. */}}
{{- define "switchyard.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's full name: object names start with it. */}}
{{- define "switchyard.fullname" -}}
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

{{- define "switchyard.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/part-of: switchyard
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}

{{/* Router objects: common labels plus the selector labels. */}}
{{- define "switchyard.routerLabels" -}}
{{ include "switchyard.labels" . }}
{{ include "switchyard.selectorLabels" . }}
{{- end }}

{{- define "switchyard.selectorLabels" -}}
app.kubernetes.io/name: {{ include "switchyard.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: router
{{- end }}

{{- define "switchyard.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "switchyard.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "switchyard.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* NATS cluster names and labels. */}}
{{- define "switchyard.nats.fullname" -}}
{{- printf "%s-nats" (include "switchyard.fullname" .) | trunc 52 | trimSuffix "-" }}
{{- end }}

{{- define "switchyard.nats.headless" -}}
{{- printf "%s-headless" (include "switchyard.nats.fullname" .) }}
{{- end }}

{{- define "switchyard.nats.selectorLabels" -}}
app.kubernetes.io/name: {{ include "switchyard.name" . }}-nats
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: nats
{{- end }}

{{- define "switchyard.nats.labels" -}}
{{ include "switchyard.labels" . }}
{{ include "switchyard.nats.selectorLabels" . }}
{{- end }}

{{/* The rules dir the router is started with. */}}
{{- define "switchyard.rulesDir" -}}
{{- with .Values.report }}
{{- if and .cdeventsSink .cdeventsSinkSecret.name }}
{{- fail "report: set cdeventsSink or cdeventsSinkSecret, not both" }}
{{- end }}
{{- if and .cdeventsSinkSecret.name (not .cdeventsSinkSecret.key) }}
{{- fail "report.cdeventsSinkSecret needs name and key" }}
{{- end }}
{{- if regexMatch "://[^/@]*@|[?]" .cdeventsSink }}
{{- fail "report.cdeventsSink must not hold credentials (the pod spec would show them): use report.cdeventsSinkSecret" }}
{{- end }}
{{- end }}
{{- $src := .Values.rules.source }}
{{- if eq $src "image" }}/etc/switchyard/rules
{{- else if eq $src "gitSync" }}{{ printf "/var/run/switchyard/git/current/%s" (trimAll "/" .Values.rules.gitSync.subPath) | trimSuffix "/" }}
{{- else }}/var/run/switchyard/rules
{{- end }}
{{- end }}

{{/* A ConfigMap key for a rules file path: keys cannot hold "/". */}}
{{- define "switchyard.rulesKey" -}}
{{- . | replace "/" "__" }}
{{- end }}

{{/* Values checks that make a broken install fail at render time. */}}
{{- define "switchyard.validate" -}}
{{- $mode := .Values.nats.mode }}
{{- if not (has $mode (list "embedded" "external" "cluster")) }}
{{- fail (printf "nats.mode must be embedded, external or cluster, not %q" $mode) }}
{{- end }}
{{- if and (eq $mode "embedded") (gt (int .Values.replicaCount) 1) }}
{{- fail "replicaCount > 1 needs a shared NATS: set nats.mode to external or cluster (each embedded server would be a separate queue)" }}
{{- end }}
{{- if and (eq $mode "external") (not .Values.nats.external.url) }}
{{- fail "nats.mode external needs nats.external.url" }}
{{- end }}
{{- if eq $mode "external" }}
{{- if regexMatch "://[^/@]*@" .Values.nats.external.url }}
{{- fail "nats.external.url must not hold credentials (ps and logs would show them): use nats.external.auth" }}
{{- end }}
{{- $a := .Values.nats.external.auth }}
{{- $n := 0 }}
{{- range (list $a.credsKey $a.nkeyKey $a.userFileKey) }}{{ if . }}{{ $n = add1 $n }}{{ end }}{{ end }}
{{- if gt $n 1 }}
{{- fail "nats.external.auth: set at most one of credsKey, nkeyKey, userFileKey" }}
{{- end }}
{{- if and (gt $n 0) (not $a.secretName) }}
{{- fail "nats.external.auth needs secretName" }}
{{- end }}
{{- $t := .Values.nats.external.tls }}
{{- if and (or $t.certKey $t.keyKey) (not (and $t.certKey $t.keyKey)) }}
{{- fail "nats.external.tls: set both certKey and keyKey, or neither" }}
{{- end }}
{{- end }}
{{- if eq $mode "cluster" }}
{{- $r := int .Values.nats.cluster.replicas }}
{{- if or (lt $r 3) (eq (mod $r 2) 0) }}
{{- fail "nats.cluster.replicas must be odd and at least 3 (JetStream needs a majority)" }}
{{- end }}
{{- end }}
{{- $src := .Values.rules.source }}
{{- if not (has $src (list "image" "configMap" "existingConfigMap" "gitSync")) }}
{{- fail (printf "rules.source must be image, configMap, existingConfigMap or gitSync, not %q" $src) }}
{{- end }}
{{- if and (eq $src "configMap") (not (hasKey .Values.rules.files "root.yaml")) }}
{{- fail "rules.source configMap needs rules.files with root.yaml" }}
{{- end }}
{{- if and (eq $src "existingConfigMap") (not .Values.rules.existingConfigMap) }}
{{- fail "rules.source existingConfigMap needs rules.existingConfigMap" }}
{{- end }}
{{- if and (eq $src "gitSync") (not .Values.rules.gitSync.repo) }}
{{- fail "rules.source gitSync needs rules.gitSync.repo" }}
{{- end }}
{{- end }}

{{/* The git-sync container (after its name); dict root, oneTime. */}}
{{- define "switchyard.gitSyncContainer" -}}
{{- $gs := .root.Values.rules.gitSync -}}
image: {{ printf "%s:%s" $gs.image.repository $gs.image.tag }}
imagePullPolicy: {{ $gs.image.pullPolicy }}
args:
  - --repo={{ $gs.repo }}
  - --ref={{ $gs.ref }}
  - --root=/git
  # The router reads <root>/current/<subPath>; each sync swaps the link.
  - --link=current
  - --depth={{ $gs.depth }}
  {{- if .oneTime }}
  - --one-time
  {{- else }}
  - --period={{ $gs.period }}
  {{- end }}
  {{- if $gs.sshSecret }}
  - --ssh-key-file=/etc/git-secret/{{ $gs.sshKeyKey }}
  - --ssh-known-hosts-file=/etc/git-secret/{{ $gs.sshKnownHostsKey }}
  {{- end }}
env:
  - name: HOME
    value: /tmp
{{- with $gs.envFromSecret }}
envFrom:
  - secretRef:
      name: {{ . }}
{{- end }}
resources:
  {{- toYaml $gs.resources | nindent 2 }}
securityContext:
  allowPrivilegeEscalation: false
  readOnlyRootFilesystem: true
  runAsNonRoot: true
  capabilities:
    drop: [ALL]
volumeMounts:
  - name: git
    mountPath: /git
  - name: git-tmp
    mountPath: /tmp
  {{- if $gs.sshSecret }}
  - name: git-ssh
    mountPath: /etc/git-secret
    readOnly: true
  {{- end }}
{{- end }}
