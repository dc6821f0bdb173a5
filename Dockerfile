# The gpucost image: the node exporter (entry point) and the budget sidecar (`gpucost-budgets`)
# from one image.  Build it with `make image` (tests/tools/build-image.sh): that script makes the
# Debian base image locally (no registry needed) and the wheels this file installs (see docs/image.md).
#
# BASE_IMAGE must provide python3 (3.11) and /bin/sh; both stages use it so the venv's interpreter
# link resolves in the final stage.  Where a registry is reachable, python:3.11-slim works too.
ARG BASE_IMAGE=localhost/gpucost-base:bookworm

# --- build: a venv with gpucost[k8s,budgets,finance], installed offline from wheels built outside
FROM ${BASE_IMAGE} AS build
# Third-party wheels first, in their own layer: they change only with constraints.txt, so a rebuild
# after a source change reuses this layer and reinstalls only gpucost itself.
COPY .tools/image/wheels/deps/ /wheels/deps/
# pip runs from its wheel against a venv made --without-pip: neither stage needs python3-venv, and
# the final image carries no pip.  --no-deps: the wheel set is already the resolved, pinned closure.
RUN set -eu; \
    python3 -m venv --without-pip /opt/gpucost; \
    pip_wheel=$(ls /wheels/deps/pip-*.whl); \
    python3 "$pip_wheel/pip" --python /opt/gpucost/bin/python install --no-index --no-deps --no-cache-dir \
        $(ls /wheels/deps/*.whl | grep -v '/pip-')
COPY .tools/image/wheels/app/ /wheels/app/
# With dependencies checked this time: pip fails here if the deps layer lacks anything gpucost needs.
RUN set -eu; \
    pip_wheel=$(ls /wheels/deps/pip-*.whl); \
    python3 "$pip_wheel/pip" --python /opt/gpucost/bin/python install --no-index --no-cache-dir \
        --find-links /wheels/deps "$(ls /wheels/app/gpucost-*.whl)[k8s,budgets,finance]"

# --- final: the base's Python runtime plus the venv; no compilers, no pip, no test extras -------
FROM ${BASE_IMAGE}
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="gpucost" \
      org.opencontainers.image.description="GPU cost attribution for Kubernetes: node exporter and budget sidecar" \
      org.opencontainers.image.source="https://github.com/gpucost/gpucost" \
      org.opencontainers.image.url="https://github.com/gpucost/gpucost" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /opt/gpucost /opt/gpucost
# The exporter's default ledger checkpoint lives in /var/lib/gpucost (a hostPath in the chart);
# owned by the default user so the image also works as is with `podman run`.
RUN install -d -m 0750 -o 65532 -g 65532 /var/lib/gpucost
# An explicit PATH: an imported base image carries no environment to extend.
ENV PATH=/opt/gpucost/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
# Non-root by default; the chart runs the exporter as root only because the kubelet's
# pod-resources socket is root-owned.
USER 65532:65532
EXPOSE 9835
ENTRYPOINT ["gpucost-exporter"]
