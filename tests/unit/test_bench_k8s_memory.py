"""The Kubernetes-memory benchmark's row: skipped with the reason without a kube-apiserver, reported against 64 MiB."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gpucost_bench import exporter_k8s_memory
from gpucost_bench.report import render_figures
from gpucost_testing import real_apiserver

MACHINE = {"cpu_count": 2, "cpu_model": "test", "python": "3.11", "platform": "linux", "date_utc": "2026-01-01"}


def measured(peak_rss_mib: float) -> dict[str, Any]:
    return {
        "machine": MACHINE, "mode": "default", "benchmark": "exporter_k8s_memory", "status": "run",
        "before": exporter_k8s_memory.BEFORE, "target": {"peak_rss_mib": exporter_k8s_memory.TARGET_PEAK_RSS_MIB},
        "kube_apiserver": "v1.37.2",
        "process": {"pods_on_node": 200, "gpu_holders": 8, "namespaces": 4, "window_seconds": 120.0, "scrapes": 8,
                    "rss_mib": peak_rss_mib - 0.5, "peak_rss_mib": peak_rss_mib},
        "client_imports": {"kubernetes_client_mib": 52.5, "lightkube_client_mib": 3.2,
                           "ratio_lightkube_to_kubernetes": 3.2 / 52.5, "method": "separate processes"},
        "ratio_peak_to_before": peak_rss_mib / exporter_k8s_memory.BEFORE["peak_rss_mib"],
        "passed": peak_rss_mib <= exporter_k8s_memory.TARGET_PEAK_RSS_MIB,
    }  # fmt: skip


def test_without_a_kube_apiserver_the_row_is_skipped_with_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def missing(*_: object) -> str:
        raise real_apiserver.RealClusterUnavailable("kube-apiserver not found in .tools/bin nor on PATH")

    monkeypatch.setattr(real_apiserver, "find_kube_apiserver", missing)
    result = exporter_k8s_memory.run_exporter_k8s_memory(tmp_path, quick=True)
    assert (result["status"], result["reason"]) == ("skipped", "kube-apiserver not found in .tools/bin nor on PATH")
    json.dumps(result)  # written as the bench's JSON as it is
    text = render_figures({"exporter_k8s_memory": {"machine": MACHINE, **result}})
    assert "Not run: kube-apiserver not found in .tools/bin nor on PATH." in text


def test_the_report_gives_peak_before_and_the_verdict_against_64_mib() -> None:
    under = render_figures({"exporter_k8s_memory": measured(61.1)})
    assert "peak (VmHWM) **61.1 MiB** (target <= 64 MiB: **met**)" in under
    assert f"peak {exporter_k8s_memory.BEFORE['peak_rss_mib']:.1f} MiB" in under
    assert "lightkube + httpx2 3.2 MiB, `kubernetes.client` 52.5 MiB (ratio 0.06x)" in under
    over = render_figures({"exporter_k8s_memory": measured(70.0)})
    assert "(target <= 64 MiB: **NOT met**)" in over
