"""The start-up kubeconfig check refuses the credentials the exporter's client (lightkube) cannot use.

Left to the API server source, each of these would fail every request and be retried for
ever; refused at start they are one line naming the file, the user and what to use instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from gpucost.errors import ConfigError
from gpucost.kubeconfig_check import EXEC_API_VERSIONS, check_kubeconfig


def write_kubeconfig(path: Path, user: dict[str, Any] | None, *, context_user: str | None = "dev") -> str:
    context: dict[str, str] = {"cluster": "dev"}
    if context_user is not None:
        context["user"] = context_user
    document: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "dev", "cluster": {"server": "https://127.0.0.1:6443"}}],
        "contexts": [{"name": "dev", "context": context}],
        "users": [] if user is None else [{"name": "dev", "user": user}],
        "current-context": "dev",
    }
    path.write_text(yaml.safe_dump(document))
    return str(path)


def refusal(path: str) -> str:
    with pytest.raises(ConfigError) as caught:
        check_kubeconfig(path, "", "--kubernetes.kubeconfig")
    assert caught.value.value == path
    return caught.value.problem


@pytest.mark.parametrize("user", [
    {"token": "t"},
    {"tokenFile": "/var/run/secrets/token"},
    {"client-certificate": "/etc/c.crt", "client-key": "/etc/c.key"},
    {"exec": {"apiVersion": EXEC_API_VERSIONS[-1], "command": "aws", "args": ["eks", "get-token"]}},
    {},
])  # fmt: skip
def test_credentials_lightkube_supports_pass(tmp_path: Path, user: dict[str, Any]) -> None:
    check_kubeconfig(write_kubeconfig(tmp_path / "kubeconfig", user), "", "--kubernetes.kubeconfig")


def test_a_context_without_a_user_passes_as_no_credentials(tmp_path: Path) -> None:
    check_kubeconfig(write_kubeconfig(tmp_path / "kubeconfig", None, context_user=None), "", "--kubernetes.kubeconfig")


def test_a_context_naming_a_missing_user_is_refused(tmp_path: Path) -> None:
    problem = refusal(write_kubeconfig(tmp_path / "kubeconfig", None))
    assert "names user 'dev', which is not in its users" in problem


def test_an_auth_provider_user_is_refused_with_what_to_use_instead(tmp_path: Path) -> None:
    problem = refusal(write_kubeconfig(tmp_path / "kubeconfig", {"auth-provider": {"name": "gcp"}}))
    assert "auth-provider" in problem and "exec credential plugin" in problem


def test_an_exec_plugin_of_an_unsupported_version_is_refused_naming_the_supported_ones(tmp_path: Path) -> None:
    plugin = {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": "kubelogin"}}
    problem = refusal(write_kubeconfig(tmp_path / "kubeconfig", plugin))
    assert "'client.authentication.k8s.io/v1'" in problem
    assert all(version in problem for version in EXEC_API_VERSIONS)
