"""Re-export: the simulated node lives in `gpucost.testing.kube_harness` so that the demo can use it too."""

from __future__ import annotations

from gpucost.testing.kube_harness import KubeHarness, kube_uid

__all__ = ["KubeHarness", "kube_uid"]
