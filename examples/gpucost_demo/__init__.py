"""The one-command demo: `python -m gpucost_demo` (or `make demo`).

A simulated 8-GPU node (`scenario.yaml`) shown to the exporter through a fake
kubelet and a fake Kubernetes API server (`gpucost_testing.kube_harness`), so
attribution goes through Kubernetes as in production; the exporter, the budget
sidecar (`budgets.yaml`), Prometheus with every rule file, Alertmanager with the
generated Slack config, and a local Slack that prints what the channel shows.
"""

from __future__ import annotations

from gpucost_demo.cli import main

__all__ = ["main"]
