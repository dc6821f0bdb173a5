{{/*
The exporter DaemonSet.  Called with dict "root" $ "cpu" BOOL: cpu false is the GPU nodes' DaemonSet
(daemonset.yaml), cpu true the optional one for nodes without GPUs (daemonset-cpu.yaml,
exporter.cpuNodes): `--nvml.backend=none`, no NVIDIA runtime settings, no per-process split, and its
own placement; both share the config, the ServiceAccount and the Service.
*/}}
{{- define "gpucost.exporter.daemonset" -}}
{{- $root := .root }}
{{- $cpu := .cpu }}
{{- $ctx := dict "root" $root "cpu" $cpu }}
{{- $perProcess := $root.Values.exporter.perProcess }}
{{- $placement := $root.Values.exporter }}
{{- if $cpu }}
{{- $perProcess = dict "enabled" false }}
{{- $placement = $root.Values.exporter.cpuNodes }}
{{- end }}
{{- $web := $root.Values.exporter.webConfig }}
{{- if and $web.tls (not $web.existingSecret) }}
{{- fail "exporter.webConfig.tls needs exporter.webConfig.existingSecret: the Secret with the web config file that turns TLS on" }}
{{- end }}
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: {{ include "gpucost.fullname" $root }}{{ if $cpu }}-cpu{{ end }}
  namespace: {{ include "gpucost.namespace" $root }}
  labels:
    {{- include "gpucost.labels" $root | nindent 4 }}
    {{- include "gpucost.exporter.selectorLabels" $ctx | nindent 4 }}
spec:
  selector:
    matchLabels:
      {{- include "gpucost.exporter.selectorLabels" $ctx | nindent 6 }}
  {{- with $root.Values.exporter.updateStrategy }}
  updateStrategy:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  template:
    metadata:
      labels:
        {{- include "gpucost.labels" $root | nindent 8 }}
        {{- include "gpucost.exporter.selectorLabels" $ctx | nindent 8 }}
        {{- with $root.Values.exporter.podLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      annotations:
        # Restart the exporter when its config changes.
        checksum/config: {{ include (print $root.Template.BasePath "/exporter/configmap.yaml") $root | sha256sum }}
        {{- if include "gpucost.scrapeAnnotations.enabled" $root }}
        prometheus.io/scrape: "true"
        prometheus.io/port: {{ $root.Values.exporter.port | quote }}
        prometheus.io/path: /metrics
        {{- if $web.tls }}
        prometheus.io/scheme: https
        {{- end }}
        {{- end }}
        {{- with $root.Values.exporter.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      serviceAccountName: {{ include "gpucost.serviceAccountName" $root }}
      automountServiceAccountToken: {{ $root.Values.serviceAccount.automountServiceAccountToken }}
      {{- with $root.Values.exporter.priorityClassName }}
      priorityClassName: {{ . }}
      {{- end }}
      {{- if not $cpu }}
      {{- with $root.Values.exporter.runtimeClassName }}
      runtimeClassName: {{ . }}
      {{- end }}
      {{- end }}
      {{- if and $perProcess.enabled $perProcess.hostPID }}
      # Per-process split only: NVML reports host pids, mapped to pods through /proc/<pid>/cgroup.
      hostPID: true
      {{- end }}
      {{- with $root.Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $root.Values.exporter.podSecurityContext }}
      securityContext:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      containers:
        - name: exporter
          image: {{ include "gpucost.image" $root }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          command: [gpucost-exporter]
          args:
            - --config.file=/etc/gpucost/config.yaml
            {{- if $cpu }}
            # A node without GPUs: no driver to load; the node's CPU, memory and storage cost only.
            - --nvml.backend=none
            {{- end }}
            {{- if $root.Values.exporter.kubernetes.enabled }}
            - --kubernetes.enabled
            {{- end }}
            {{- if and $perProcess.enabled $perProcess.mountHostProc }}
            - --host.proc=/host/proc
            {{- end }}
            {{- if $web.existingSecret }}
            - --web.config.file=/etc/gpucost-web/{{ $web.key }}
            {{- end }}
            {{- range $root.Values.exporter.extraArgs }}
            - {{ . | quote }}
            {{- end }}
          env:
            - name: NODE_NAME
              valueFrom:
                fieldRef:
                  fieldPath: spec.nodeName
            {{- if and $root.Values.exporter.kubernetes.enabled $root.Values.exporter.kubernetes.kubeletResource.enabled }}
            # Whole-node cost: the kubelet's /metrics/resource at https://$NODE_IP:10250.
            - name: NODE_IP
              valueFrom:
                fieldRef:
                  fieldPath: status.hostIP
            {{- end }}
            {{- if and (not $cpu) $root.Values.exporter.nvidiaVisibleDevicesAll }}
            - name: NVIDIA_VISIBLE_DEVICES
              value: all
            - name: NVIDIA_DRIVER_CAPABILITIES
              value: utility
            {{- end }}
            {{- with $root.Values.exporter.extraEnv }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
          ports:
            - name: metrics
              containerPort: {{ $root.Values.exporter.port }}
              protocol: TCP
          livenessProbe:
            httpGet:
              path: /healthz
              port: metrics
              scheme: {{ include "gpucost.exporter.probeScheme" $root }}
            initialDelaySeconds: 10
            periodSeconds: 30
          readinessProbe:
            httpGet:
              path: /readyz
              port: metrics
              scheme: {{ include "gpucost.exporter.probeScheme" $root }}
            periodSeconds: 10
          {{- with $root.Values.exporter.resources }}
          resources:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          {{- with $root.Values.exporter.securityContext }}
          securityContext:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          volumeMounts:
            - name: config
              mountPath: /etc/gpucost
              readOnly: true
            - name: state
              mountPath: /var/lib/gpucost
            - name: tmp
              mountPath: /tmp
            {{- if $root.Values.exporter.kubernetes.enabled }}
            - name: pod-resources
              mountPath: {{ $root.Values.exporter.kubernetes.podResourcesDir }}
              readOnly: true
            {{- end }}
            {{- if and $perProcess.enabled $perProcess.mountHostProc }}
            - name: host-proc
              mountPath: /host/proc
              readOnly: true
            {{- end }}
            {{- if $web.existingSecret }}
            # Beside /etc/gpucost, not under it: a mount point inside the read-only config volume fails.
            - name: web-config
              mountPath: /etc/gpucost-web
              readOnly: true
            {{- end }}
      {{- with $placement.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $placement.affinity }}
      affinity:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $placement.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      volumes:
        - name: config
          configMap:
            name: {{ include "gpucost.fullname" $root }}
        - name: state
          hostPath:
            path: {{ $root.Values.exporter.state.hostPath }}
            type: DirectoryOrCreate
        - name: tmp
          emptyDir:
            sizeLimit: 16Mi
        {{- if $root.Values.exporter.kubernetes.enabled }}
        # The directory, not the socket: a restarted kubelet replaces the socket file.
        - name: pod-resources
          hostPath:
            path: {{ $root.Values.exporter.kubernetes.podResourcesDir }}
            type: Directory
        {{- end }}
        {{- if and $perProcess.enabled $perProcess.mountHostProc }}
        - name: host-proc
          hostPath:
            path: /proc
            type: Directory
        {{- end }}
        {{- with $web.existingSecret }}
        # The whole Secret: the web config names its certificate and key relative to itself.
        - name: web-config
          secret:
            secretName: {{ . }}
        {{- end }}
{{- end }}

{{/*
Selector labels of an exporter DaemonSet (dict "root" $ "cpu" BOOL): the exporter's, plus
gpucost.io/node-kind: cpu for the no-GPU DaemonSet so the two DaemonSets select their own pods.
The Service and the monitors select both by the exporter's labels.
*/}}
{{- define "gpucost.exporter.selectorLabels" -}}
{{ include "gpucost.selectorLabels" .root }}
{{- if .cpu }}
gpucost.io/node-kind: cpu
{{- end }}
{{- end }}
