"""The Helm chart's budget sidecar, rendered by the real helm binary: off by default, cloud identities,
credentials and the Slack token as mounted Secret files (never environment variables), and flags
the sidecar's own CLI accepts.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import pytest
import yaml

from gpucost.budgets.spec import parse_budget_file
from gpucost_testing.helm_render import (
    CHART,
    RENDER_CASES,
    Manifest,
    case_id,
    exporter_container,
    of_kind,
    one,
    render,
    secret_mounts,
)

pytestmark = pytest.mark.integration


def test_the_budget_sidecar_is_off_by_default() -> None:
    names = {m["metadata"]["name"] for m in render()}
    assert not any(name.endswith("-budgets") for name in names)


def test_the_aws_sidecar_uses_irsa_a_secret_reference_and_a_valid_budgets_file(tmp_path: Path) -> None:
    manifests = render(CHART / "ci" / "budgets-aws-values.yaml")
    deployment = one(manifests, "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["gpucost-budgets"]
    assert container["args"][0] == "serve"
    assert "--aws.enabled" in container["args"]
    assert "--web.listen-address=:9836" in container["args"]
    assert "--slack.bot-token-file=/var/run/secrets/slack/bot-token" in container["args"]
    assert secret_mounts(deployment) == {"/var/run/secrets/slack": ("gpucost-slack", "bot-token")}
    assert "SLACK_BOT_TOKEN" not in {e["name"] for e in container["env"]}
    assert all("value" not in e or not re.search("(?i)secret|token|key", e["name"]) for e in container["env"])
    accounts = {m["metadata"]["name"]: m for m in of_kind(manifests, "ServiceAccount")}
    sidecar_account = accounts[deployment["spec"]["template"]["spec"]["serviceAccountName"]]
    assert "eks.amazonaws.com/role-arn" in sidecar_account["metadata"]["annotations"]
    pod_context = deployment["spec"]["template"]["spec"]["securityContext"]
    assert pod_context["runAsNonRoot"] is True
    budgets_map = next(m for m in of_kind(manifests, "ConfigMap") if "budgets.yaml" in m["data"])
    budget_file = parse_budget_file(yaml.safe_load(budgets_map["data"]["budgets.yaml"]), "budgets.yaml")
    assert [b.name for b in budget_file.budgets] == ["research-monthly", "platform-inference"]
    role = one(manifests, "Role")
    assert role["metadata"]["namespace"] == "inference"
    assert role["rules"][0] == {"apiGroups": [""], "resources": ["resourcequotas"],
                                "verbs": ["get", "create", "delete"]}


def test_the_gcp_sidecar_uses_workload_identity_and_an_existing_configmap() -> None:
    manifests = render(CHART / "ci" / "budgets-gcp-values.yaml")
    deployment = one(manifests, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    args = pod["containers"][0]["args"]
    assert "--gcp.billing-account=0123AB-4567CD-89EF01" in args
    assert "--gcp.pubsub-topic=projects/ml-prod/topics/gpucost-budgets" in args
    assert "--gcp.billing-export-table=ml-billing.billing_export.gcp_billing_export_v1_0123AB_4567CD_89EF01" in args
    assert "--gcp.billing-export-label=k8s-label/team" in args
    assert not any(a.startswith("--gcp.bigquery-project") for a in args), "defaults to the table's project"
    assert {v["name"]: v for v in pod["volumes"]}["budgets"]["configMap"]["name"] == "team-budgets"
    assert not any("budgets.yaml" in m["data"] for m in of_kind(manifests, "ConfigMap"))
    accounts = {m["metadata"]["name"]: m for m in of_kind(manifests, "ServiceAccount")}
    assert "iam.gke.io/gcp-service-account" in accounts[pod["serviceAccountName"]]["metadata"]["annotations"]
    assert not of_kind(manifests, "Role")
    exporter_pod = one(manifests, "DaemonSet")["spec"]["template"]["spec"]
    assert "nodeSelector" not in exporter_pod
    assert "NVIDIA_VISIBLE_DEVICES" not in {e["name"] for e in exporter_container(manifests)["env"]}


def test_key_file_credentials_are_mounted_files_passed_by_flag() -> None:
    manifests = render(CHART / "ci" / "budgets-keyfile-values.yaml")
    deployment = one(manifests, "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert "envFrom" not in container
    assert secret_mounts(deployment) == {
        "/var/run/secrets/aws": ("gpucost-aws", "credentials"),
        "/var/run/secrets/gcp": ("gpucost-gcp", "credentials.json"),
    }
    assert "--aws.shared-credentials-file=/var/run/secrets/aws/credentials" in container["args"]
    assert "--gcp.credentials-file=/var/run/secrets/gcp/credentials.json" in container["args"]
    assert "GOOGLE_APPLICATION_CREDENTIALS" not in {e["name"] for e in container["env"]}
    assert "--dry-run" in container["args"]


def test_secret_keys_are_configurable() -> None:
    manifests = render(CHART / "ci" / "budgets-keyfile-values.yaml", sets=(
        "budgets.aws.existingSecretKey=aws-ini",
        "budgets.slack.existingSecret=bot",
        "budgets.slack.existingSecretKey=t",
    ))
    deployment = one(manifests, "Deployment")
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--aws.shared-credentials-file=/var/run/secrets/aws/aws-ini" in args
    assert "--slack.bot-token-file=/var/run/secrets/slack/t" in args
    assert secret_mounts(deployment)["/var/run/secrets/slack"] == ("bot", "t")


@pytest.mark.parametrize("values", sorted((CHART / "ci").glob("budgets-*-values.yaml")), ids=lambda p: p.name)
def test_the_sidecar_accepts_every_flag_the_chart_passes(values: Path) -> None:
    from gpucost.budgets.cli import build_parser as budgets_parser

    args = one(render(values), "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
    parsed = budgets_parser().parse_args(args)
    for flag, dest in (("--slack.bot-token-file=", "slack_bot_token_file"),
                       ("--aws.shared-credentials-file=", "aws_shared_credentials_file"),
                       ("--gcp.credentials-file=", "gcp_credentials_file")):
        passed = [a.removeprefix(flag) for a in args if a.startswith(flag)]
        assert [str(getattr(parsed, dest))] == passed if passed else getattr(parsed, dest) is None


def _workloads(manifests: Sequence[Manifest]) -> list[Manifest]:
    return [m for m in manifests if m["kind"] in {"DaemonSet", "Deployment"}]


@pytest.mark.parametrize("case", RENDER_CASES, ids=case_id)
def test_no_secret_reaches_a_container_through_its_environment(case: tuple[str, Path | None, tuple[str, ...]]) -> None:
    # Env vars show in `kubectl describe` and in every child process (checkov CKV_K8S_35): mount files.
    _, values, apis = case
    for workload in _workloads(render(values, api_versions=apis)):
        for container in workload["spec"]["template"]["spec"]["containers"]:
            assert not [e for e in container.get("env", []) if "secretKeyRef" in e.get("valueFrom", {})], container
            assert not [s for s in container.get("envFrom", []) if "secretRef" in s], container


@pytest.mark.parametrize("values", sorted((CHART / "ci").glob("budgets-*-values.yaml")), ids=lambda p: p.name)
def test_the_budget_sidecar_has_a_liveness_probe_on_healthz(values: Path) -> None:
    container = one(render(values), "Deployment")["spec"]["template"]["spec"]["containers"][0]
    probe = container["livenessProbe"]["httpGet"]
    assert (probe["path"], probe["port"]) == ("/healthz", "http")
