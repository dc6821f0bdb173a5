# gpucost: every target bootstraps what it needs, so on a fresh machine
# `make demo` and `make test` are the only commands a user types.

SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
TOOLS := .tools
GOBIN_DIR := $(abspath $(TOOLS)/bin)
HELM := $(GOBIN_DIR)/helm
KUBE_APISERVER := $(GOBIN_DIR)/kube-apiserver
HELM_VERSION := v3.21.4
DEBIAN_PACKAGES := prometheus prometheus-alertmanager victoria-metrics
# Two pytest-xdist workers: the suite mostly waits on real servers (rule windows, Alertmanager
# group waits, kube-apiserver), not on the CPU.  Serially: make test PYTEST_ARGS=-n0
PYTEST_ARGS ?= -n 2
# Line coverage of the product package (pyproject [tool.coverage]: source, floor); the run prints
# the total and fails under the floor.  Details afterwards: .venv/bin/coverage report.
# Without: make test COV_ARGS=
COV_ARGS ?= --cov --cov-report=

export PATH := $(abspath $(VENV))/bin:$(GOBIN_DIR):$(PATH)
export PYTHONUNBUFFERED := 1

.PHONY: help demo test lint bench image dashboards proto alertmanager-config rules helm-docs bootstrap clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/'

# --- bootstrap -------------------------------------------------------------

$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q -U pip
	$(PIP) install -q -c constraints.txt -e '.[all,test]'
	touch $@

# Real Prometheus, Alertmanager and VictoriaMetrics from Debian, installed once.
$(TOOLS)/.debs:
	@mkdir -p $(TOOLS)
	@if ! command -v prometheus >/dev/null || ! command -v prometheus-alertmanager >/dev/null \
	    || ! command -v victoria-metrics >/dev/null; then \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $(DEBIAN_PACKAGES); \
	fi
	touch $@

$(HELM):
	@mkdir -p $(GOBIN_DIR)
	GOBIN=$(GOBIN_DIR) go install helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)

# etcd for the real kube-apiserver of tests/integration/realk8s (Debian etcd-server 3.4).
$(TOOLS)/.etcd:
	@mkdir -p $(TOOLS)
	@if ! command -v etcd >/dev/null; then \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends etcd-server; \
	fi
	touch $@

# kube-apiserver is not packaged by Debian: built from the v1.37.2 Go module (about 6 minutes
# on 2 idle cores the first time; seconds once Go's build cache is warm).
$(KUBE_APISERVER): tests/tools/build-kube-apiserver.sh
	tests/tools/build-kube-apiserver.sh $(TOOLS)

# podman/buildah (image build and tests/integration/test_image.py), runc (bookworm's crun refuses
# hybrid cgroup hosts) and debootstrap (the local Debian base image: no registry needed).
IMAGE_PACKAGES := podman buildah runc crun debootstrap fuse-overlayfs slirp4netns uidmap containernetworking-plugins
$(TOOLS)/.image-tools:
	@mkdir -p $(TOOLS)
	@if ! command -v podman >/dev/null || ! command -v buildah >/dev/null || ! command -v runc >/dev/null \
	    || ! command -v debootstrap >/dev/null; then \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $(IMAGE_PACKAGES); \
	fi
	touch $@

OPERATOR_CRDS := $(TOOLS)/crds/VERSION
# Prometheus Operator CRDs (pinned release, read from its Go module) for tests/integration/realk8s.
$(OPERATOR_CRDS): tests/tools/fetch-operator-crds.sh
	tests/tools/fetch-operator-crds.sh $(TOOLS)

bootstrap: $(VENV)/.installed $(TOOLS)/.debs $(TOOLS)/.etcd $(TOOLS)/.image-tools $(HELM) $(KUBE_APISERVER) $(OPERATOR_CRDS)  ## install everything the tests and the demo use

# --- user targets ----------------------------------------------------------

# The demo (examples/), the benchmarks (bench/) and the test kit both use (tests/) are not in the
# wheel (#18): they run from the checkout, found through PYTHONPATH (absolute: their children
# run in other directories).
CHECKOUT_PATH := $(CURDIR)/exporter:$(CURDIR)/tests

demo: $(VENV)/.installed $(TOOLS)/.debs  ## run the whole stack on a simulated 8-GPU node
	PYTHONPATH=$(CHECKOUT_PATH):$(CURDIR)/examples $(PY) -m gpucost_demo $(DEMO_ARGS)

test: bootstrap  ## run every test (unit, integration against real servers, lint)
	$(PY) -m pytest $(PYTEST_ARGS) $(COV_ARGS)
	$(MAKE) --no-print-directory lint

lint: $(VENV)/.installed  ## ruff and mypy --strict
	$(VENV)/bin/ruff check exporter tests bench examples
	$(VENV)/bin/mypy exporter/gpucost tests/gpucost_testing bench/gpucost_bench examples/gpucost_demo

image: $(VENV)/.installed $(TOOLS)/.image-tools  ## build the container image localhost/gpucost/gpucost:<version> (podman, no registry needed)
	tests/tools/build-image.sh

bench: bootstrap  ## benchmarks, reported as ratios measured in one run
	PYTHONPATH=$(CHECKOUT_PATH):$(CURDIR)/bench $(PY) -m gpucost_bench $(BENCH_ARGS)

# The chart ships real copies of rules/, dashboards/ and alertmanager/templates/ under
# helm/gpucost/files/ (no links out of the chart): each generator target refreshes them.
CHART_FILES := $(PY) -m gpucost.chartfiles

dashboards: $(VENV)/.installed  ## regenerate dashboards/*.json (and the chart's copies) from the Python sources
	$(PY) -m gpucost.dashboards
	$(CHART_FILES)

alertmanager-config: $(VENV)/.installed  ## regenerate alertmanager/*.yml (and the chart's template copies)
	$(PY) -m gpucost.alerting --mode bot --out alertmanager/alertmanager.yml
	$(PY) -m gpucost.alerting --mode webhook --teams-from alertmanager/examples/budgets.yaml --out alertmanager/examples/webhook-per-team.yml
	$(PY) -m gpucost.alerting.slack_tiers
	$(CHART_FILES)

rules: $(VENV)/.installed  ## regenerate rules/*.yaml (and the chart's copies) from the rule generator
	$(PY) -m gpucost.rulegen --out rules/
	$(CHART_FILES)

helm-docs: $(VENV)/.installed  ## regenerate the Helm chart README's values table
	$(PY) -m gpucost.helmdocs

proto: $(VENV)/.installed  ## regenerate the kubelet pod-resources gRPC code
	$(PY) -m gpucost.sources.podresources.regenerate

clean:  ## remove the virtualenv and tools
	rm -rf $(VENV) $(TOOLS) .pytest_cache .mypy_cache .ruff_cache
