#!/usr/bin/env bash
# Build a real kube-apiserver for the integration tests (tests/integration/realk8s/).
#
# kube-apiserver is not packaged by Debian, so we build it from the released Go module:
# the module as published still points its k8s.io/* staging libraries at ./staging
# (a `replace` block) and ships a stub vendor/ and go.work, none of which exist in the
# module zip. We drop those and pin every staging library to its published v0.<minor>.<patch>
# tag instead, which is exactly the code the release was cut from.
#
# Usage: tests/tools/build-kube-apiserver.sh [TOOLS_DIR]   (default: .tools next to this repo)
# Idempotent: does nothing when TOOLS_DIR/bin/kube-apiserver already reports the pinned version.
set -euo pipefail

KUBE_VERSION=v1.37.2
# Staging libraries are tagged v0.<minor>.<patch> for release v1.<minor>.<patch>.
STAGING_VERSION="v0.${KUBE_VERSION#v1.}"
KUBE_MAJOR=1
KUBE_MINOR=$(cut -d. -f2 <<<"${KUBE_VERSION}")

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
tools_dir=$(mkdir -p "${1:-${repo_root}/.tools}" && cd "${1:-${repo_root}/.tools}" && pwd)
bin_dir="${tools_dir}/bin"
target="${bin_dir}/kube-apiserver"

if [[ -x "${target}" ]] && "${target}" --version 2>/dev/null | grep -qx "Kubernetes ${KUBE_VERSION}"; then
  # Touch it so make, which compares it with this script, sees it as up to date.
  touch "${target}"
  echo "kube-apiserver ${KUBE_VERSION} already built: ${target}"
  exit 0
fi

command -v go >/dev/null || { echo "build-kube-apiserver: 'go' not found on PATH (Go >= 1.26 is needed)" >&2; exit 2; }

started=$(date +%s)
src_dir="${tools_dir}/src/kubernetes-${KUBE_VERSION}"

echo "downloading k8s.io/kubernetes@${KUBE_VERSION} from the Go module proxy"
module_dir=$(cd "${tools_dir}" && GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@${KUBE_VERSION}" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[[ -d "${module_dir}" ]] || { echo "build-kube-apiserver: go mod download gave no module directory" >&2; exit 1; }

# A fresh, writable copy each time: the module cache is read-only and a half-edited
# go.mod from an interrupted run must not leak into this one.
rm -rf "${src_dir}"
mkdir -p "$(dirname "${src_dir}")"
cp -r "${module_dir}" "${src_dir}"
chmod -R u+w "${src_dir}"
cd "${src_dir}"
rm -rf vendor go.work go.work.sum

# Drop the replace directives (they all point into ./staging, absent from the module zip),
# block or single line, and pin the staging libraries, which go.mod lists as v0.0.0, to
# their published tag. Real pseudo-versions (k8s.io/utils v0.0.0-2026...) do not match.
sed -i -E \
  -e '/^replace \($/,/^\)$/d' \
  -e '/^replace /d' \
  -e "s#^(\s+k8s\.io/[^ ]+) v0\.0\.0( // indirect)?\$#\1 ${STAGING_VERSION}\2#" \
  go.mod
go mod edit -fmt # fails loudly if the edit left go.mod malformed

# Without these the server reports v0.0.0-master and helm's kubeVersion checks fail.
ldflags="-s -w"
build_date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X ${pkg}.gitVersion=${KUBE_VERSION} -X ${pkg}.gitMajor=${KUBE_MAJOR}"
  ldflags+=" -X ${pkg}.gitMinor=${KUBE_MINOR} -X ${pkg}.gitTreeState=clean -X ${pkg}.buildDate=${build_date}"
done

echo "building kube-apiserver ${KUBE_VERSION} (several minutes on 2 cores)"
mkdir -p "${bin_dir}"
# Build next to the target and rename, so an interrupted build never leaves a broken binary.
GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=0 \
  go build -p "${BUILD_JOBS:-2}" -trimpath -ldflags "${ldflags}" -o "${target}.partial" ./cmd/kube-apiserver
mv -f "${target}.partial" "${target}"

cd "${tools_dir}"
rm -rf "${src_dir}"
rmdir "${tools_dir}/src" 2>/dev/null || true
"${target}" --version
echo "built ${target} ($(du -h "${target}" | cut -f1)) in $(( $(date +%s) - started ))s"
