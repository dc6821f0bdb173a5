"""helm/gpucost rendered by the real helm binary, as the chart tests read it.

`render` runs `helm template` once per distinct set of values, `--set`s and API versions (the
manifests of one rendering are shared by every test that asks for it) and returns the
manifests; `one`, `of_kind`, `exporter_container` and `secret_mounts` pick out what a test checks.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from gpucost_testing.servers import REPO_ROOT

CHART = REPO_ROOT / "helm" / "gpucost"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))
OPERATOR_API = "monitoring.coreos.com/v1"

Manifest = dict[str, Any]


def find_helm() -> str:
    for candidate in (shutil.which("helm"), str(REPO_ROOT / ".tools" / "bin" / "helm"), "/root/go/bin/helm"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    pytest.fail("helm not found: run `make bootstrap` (installs helm v3.21.4 into .tools/bin)")


def run_helm(args: Sequence[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([find_helm(), *args], capture_output=True, text=True, timeout=60, check=False)


@cache
def _render_text(chart: Path, values: tuple[str, ...], sets: tuple[str, ...], api_versions: tuple[str, ...]) -> str:
    args = ["template", "gpucost", str(chart), "--namespace", "gpucost"]
    for path in values:
        args += ["-f", path]
    for assignment in sets:
        args += ["--set", assignment]
    for api in api_versions:
        args += ["--api-versions", api]
    result = run_helm(args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def render(
    values: Path | None = None,
    sets: Sequence[str] = (),
    api_versions: Sequence[str] = (),
    chart: Path = CHART,
) -> list[Manifest]:
    text = _render_text(chart, (str(values),) if values else (), tuple(sets), tuple(api_versions))
    return [doc for doc in yaml.safe_load_all(text) if doc]


def of_kind(manifests: Sequence[Manifest], kind: str) -> list[Manifest]:
    return [m for m in manifests if m["kind"] == kind]


def one(manifests: Sequence[Manifest], kind: str) -> Manifest:
    found = of_kind(manifests, kind)
    assert len(found) == 1, f"expected one {kind}, got {[m['metadata']['name'] for m in found]}"
    return found[0]


def exporter_container(manifests: Sequence[Manifest]) -> Manifest:
    containers: list[Manifest] = one(manifests, "DaemonSet")["spec"]["template"]["spec"]["containers"]
    return containers[0]


# Every values file, plus the defaults rendered as on a cluster with and without the Operator.
RENDER_CASES: list[tuple[str, Path | None, tuple[str, ...]]] = [
    ("default", None, ()),
    ("default-with-operator", None, (OPERATOR_API,)),
    *[(path.name, path, ()) for path in CI_VALUES],
]


def case_id(case: tuple[str, Path | None, tuple[str, ...]]) -> str:
    return case[0]


def secret_mounts(workload: Manifest) -> dict[str, tuple[str, str]]:
    """mountPath -> (Secret, its only projected key, or * for all) of the Secret volumes of the first container."""
    pod = workload["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts: dict[str, tuple[str, str]] = {}
    for mount in pod["containers"][0]["volumeMounts"]:
        secret = volumes[mount["name"]].get("secret")
        if secret is None:
            continue
        assert mount["readOnly"] is True, mount
        if "items" not in secret:
            mounts[mount["mountPath"]] = (secret["secretName"], "*")
            continue
        [item] = secret["items"]
        assert item["path"] == item["key"]
        mounts[mount["mountPath"]] = (secret["secretName"], item["key"])
    return mounts

