#!/usr/bin/env bash
# Build the gpucost container image with Debian's podman/buildah, with no container registry:
#   1. a Debian bookworm base image made locally by debootstrap (cached as a tarball under .tools/image),
#   2. wheels for gpucost[k8s,budgets,finance] built on this machine from PyPI, pinned by constraints.txt,
#   3. the top-level Dockerfile, which installs those wheels offline into a venv and copies the
#      venv into a slim, non-root final stage.
# Every step is skipped when its output is already there, so a second run takes seconds.
#
# Environment: IMAGE (default localhost/gpucost/gpucost:<version>), BASE_IMAGE (default: the local
# debootstrapped image; set e.g. python:3.11-slim where a registry is reachable), DEBIAN_MIRROR.
set -euo pipefail

repo_root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo_root"

work=.tools/image
python=${PYTHON:-.venv/bin/python}
version=$("$python" -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')
image=${IMAGE:-localhost/gpucost/gpucost:$version}
local_base=localhost/gpucost-base:bookworm
base_image=${BASE_IMAGE:-$local_base}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

required_tools=(podman)
[ "$base_image" = "$local_base" ] && required_tools+=(debootstrap)
for tool in "${required_tools[@]}"; do
  if ! command -v "$tool" >/dev/null; then
    echo "build-image.sh: $tool is not installed; run 'make bootstrap' (it installs podman, buildah and debootstrap from Debian)" >&2
    exit 2
  fi
done
mkdir -p "$work"

# --- 1. the base image: Debian bookworm minbase plus the Python 3 runtime ----------------------
make_base_tarball() {
  local rootfs="$work/rootfs"
  rm -rf "$rootfs"
  # python3 only: the build stage makes its venv --without-pip and runs pip from a wheel, so
  # neither stage needs python3-venv, pip or a compiler from Debian.
  debootstrap --variant=minbase --include=python3 bookworm "$rootfs" "$mirror"
  # Package lists and caches are dead weight in every layer built on top.
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb \
    "$rootfs"/var/log/*.log "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/*
  tar --numeric-owner --sort=name -C "$rootfs" -cf "$work/base-bookworm.tar.tmp" .
  mv "$work/base-bookworm.tar.tmp" "$work/base-bookworm.tar"
  rm -rf "$rootfs"
}

if [ "$base_image" = "$local_base" ] && ! podman image exists "$local_base"; then
  [ -f "$work/base-bookworm.tar" ] || make_base_tarball
  podman import --change 'CMD ["/bin/sh"]' "$work/base-bookworm.tar" "$local_base" >/dev/null
fi

# --- 2. wheels: every dependency pinned by constraints.txt, then gpucost itself ----------------
# Built here, where PyPI is reachable and pip is configured, so the image build needs no network.
# The third-party set is rebuilt only when pyproject.toml or constraints.txt change.
deps="$work/wheels/deps"
app="$work/wheels/app"
src="$work/src"
# Wheels are built from a copy of the sources, so setuptools writes no build/ or egg-info into the checkout.
rm -rf "$src" && mkdir -p "$src"
cp pyproject.toml README.md "$src/"
tar --exclude=__pycache__ --exclude='*.egg-info' --exclude='*.pyc' -cf - exporter | tar -C "$src" -xf -
deps_key=$(cat pyproject.toml constraints.txt | sha256sum | cut -c1-16)
if [ "$(cat "$deps/.key" 2>/dev/null)" != "$deps_key" ]; then
  rm -rf "$deps" && mkdir -p "$deps"
  "$python" -m pip wheel -q --wheel-dir "$deps" -c constraints.txt "$src[k8s,budgets,finance]" pip
  rm -f "$deps"/gpucost-*.whl
  echo "$deps_key" > "$deps/.key"
fi
rm -rf "$app" && mkdir -p "$app"
# A fixed timestamp makes the wheel byte-identical while the sources are, so the image's layer
# cache holds across runs.
SOURCE_DATE_EPOCH=315532800 "$python" -m pip wheel -q --no-deps --no-build-isolation --wheel-dir "$app" "$src"
rm -rf "$src"

# --- 3. the image -------------------------------------------------------------------------------
# --isolation chroot: RUN steps need neither a cgroup manager nor user namespaces, so the build
# works inside containers and VMs where the OCI runtime cannot start.
podman build --isolation chroot --layers \
  --build-arg BASE_IMAGE="$base_image" --build-arg VERSION="$version" \
  --tag "$image" --file Dockerfile .
echo "built $image ($(podman image inspect --format '{{.Size}}' "$image") bytes)"
