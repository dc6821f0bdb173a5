#!/usr/bin/env bash
# Fetch the Prometheus Operator CRDs the chart's objects are validated against
# (tests/integration/realk8s/test_helm_chart_real_apiserver.py installs them into a real
# kube-apiserver before `helm install`).
#
# The CRD manifests are not committed: they come from the released Go module of a pinned
# prometheus-operator version through the Go module proxy (checksummed by sum.golang.org),
# from its example/prometheus-operator-crd/ directory, and are copied to TOOLS_DIR/crds/.
# Only the four kinds the chart renders are taken: ServiceMonitor, PodMonitor,
# PrometheusRule and AlertmanagerConfig.
#
# Usage: tests/tools/fetch-operator-crds.sh [TOOLS_DIR]   (default: .tools next to this repo)
# Idempotent: does nothing when TOOLS_DIR/crds already holds this version's files.
set -euo pipefail

OPERATOR_VERSION=v0.85.0
MODULE=github.com/prometheus-operator/prometheus-operator
CRD_DIR_IN_MODULE=example/prometheus-operator-crd
KINDS=(servicemonitors podmonitors prometheusrules alertmanagerconfigs)

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
tools_dir=$(mkdir -p "${1:-${repo_root}/.tools}" && cd "${1:-${repo_root}/.tools}" && pwd)
crds_dir="${tools_dir}/crds"
stamp="${crds_dir}/VERSION"

if [[ -f "${stamp}" && "$(cat "${stamp}")" == "${OPERATOR_VERSION}" ]]; then
  all_there=true
  for kind in "${KINDS[@]}"; do
    [[ -s "${crds_dir}/monitoring.coreos.com_${kind}.yaml" ]] || all_there=false
  done
  if ${all_there}; then
    touch "${stamp}"  # so make, which compares it with this script, sees it as up to date
    echo "prometheus-operator ${OPERATOR_VERSION} CRDs already in ${crds_dir}"
    exit 0
  fi
fi

command -v go >/dev/null || { echo "fetch-operator-crds: 'go' not found on PATH" >&2; exit 2; }

echo "downloading ${MODULE}@${OPERATOR_VERSION} from the Go module proxy"
# Run outside any go.mod so the download does not depend on (or edit) one.
module_dir=$(cd "${tools_dir}" && GOFLAGS=-mod=mod go mod download -json "${MODULE}@${OPERATOR_VERSION}" \
  | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[[ -d "${module_dir}/${CRD_DIR_IN_MODULE}" ]] || {
  echo "fetch-operator-crds: ${MODULE}@${OPERATOR_VERSION} has no ${CRD_DIR_IN_MODULE}/" >&2
  exit 1
}

# Write into a fresh directory, then swap it in: a half-copied set must never look complete.
partial="${crds_dir}.partial"
rm -rf "${partial}"
mkdir -p "${partial}"
for kind in "${KINDS[@]}"; do
  source_file="${module_dir}/${CRD_DIR_IN_MODULE}/monitoring.coreos.com_${kind}.yaml"
  [[ -s "${source_file}" ]] || { echo "fetch-operator-crds: missing ${source_file}" >&2; exit 1; }
  cp "${source_file}" "${partial}/"
done
chmod -R u+w "${partial}"  # the module cache is read-only; copies keep its modes
echo "${OPERATOR_VERSION}" >"${partial}/VERSION"
rm -rf "${crds_dir}"
mv "${partial}" "${crds_dir}"
echo "prometheus-operator ${OPERATOR_VERSION} CRDs in ${crds_dir}: ${KINDS[*]}"
