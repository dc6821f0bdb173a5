"""The Helm chart, rendered by the real helm binary (gpucost_testing/helm_render.py): lint and schemas.

Every `ci/*-values.yaml` is linted with --strict, rendered, and each manifest is validated against
the Kubernetes OpenAPI schema of two releases (kubernetes-validate, offline).  The Prometheus
Operator's kinds have no schema there, so they are checked against the minimal schemas below.
What the chart ships is checked in the sibling modules: test_helm_chart_contents.py (rules,
dashboards, Alertmanager), test_helm_chart_exporter.py (the DaemonSet, scraping, TLS),
test_helm_chart_budget_sidecar.py and test_helm_chart_values.py (values, schema and docs).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped, unused-ignore]  # no stubs in the venv
import kubernetes_validate
import pytest

from gpucost_testing.helm_render import CHART, CI_VALUES, OPERATOR_API, RENDER_CASES, case_id, render, run_helm

pytestmark = pytest.mark.integration

KUBERNETES_VERSIONS = ("1.29", "1.33")
REQUIRED_CI_FILES = {
    "minimal-values.yaml",
    "operator-values.yaml",
    "per-process-values.yaml",
    "budgets-aws-values.yaml",
    "budgets-gcp-values.yaml",
    "tls-values.yaml",
}


# --- Minimal schemas for the Prometheus Operator's kinds (their key fields only). ---------------

_OBJECT_META = {
    "type": "object",
    "required": ["name", "namespace"],
    "properties": {
        "name": {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "maxLength": 63},
        "namespace": {"type": "string"},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}
_RELABELING = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "sourceLabels": {"type": "array", "items": {"type": "string"}},
        "targetLabel": {"type": "string"},
        "regex": {"type": "string"},
        "replacement": {"type": "string"},
        "action": {"enum": ["replace", "keep", "drop", "labeldrop", "labelkeep", "labelmap", "hashmod"]},
        "separator": {"type": "string"},
    },
}
_SECRET_KEY = {
    "type": "object",
    "required": ["name", "key"],
    "additionalProperties": False,
    "properties": {"name": {"type": "string"}, "key": {"type": "string"}},
}
_SAFE_TLS_CONFIG = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "ca": {"type": "object"},
        "cert": {"type": "object"},
        "keySecret": _SECRET_KEY,
        "serverName": {"type": "string"},
        "insecureSkipVerify": {"type": "boolean"},
    },
}
_BASIC_AUTH = {
    "type": "object",
    "additionalProperties": False,
    "required": ["username", "password"],
    "properties": {"username": _SECRET_KEY, "password": _SECRET_KEY},
}
_ENDPOINT = {
    "type": "object",
    "required": ["port", "scheme", "interval", "relabelings"],
    "properties": {
        "port": {"type": "string"},
        "path": {"type": "string"},
        "scheme": {"enum": ["http", "https"]},
        "tlsConfig": _SAFE_TLS_CONFIG,
        "basicAuth": _BASIC_AUTH,
        "interval": {"type": "string", "pattern": "^[0-9]+[smh]$"},
        "scrapeTimeout": {"type": "string", "pattern": "^[0-9]+[smh]$"},
        "honorLabels": {"type": "boolean"},
        "relabelings": {"type": "array", "items": _RELABELING},
        "metricRelabelings": {"type": "array", "items": _RELABELING},
    },
}
_SELECTOR = {
    "type": "object",
    "required": ["matchLabels"],
    "properties": {"matchLabels": {"type": "object", "minProperties": 1}},
}
_MATCHER = {
    "type": "object",
    "required": ["name", "value", "matchType"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string"},
        "value": {"type": "string"},
        "matchType": {"enum": ["=", "!=", "=~", "!~"]},
    },
}


def _crd(api_version: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {"apiVersion": {"const": api_version}, "metadata": _OBJECT_META, "spec": spec},
    }


OPERATOR_SCHEMAS: dict[str, dict[str, Any]] = {
    "ServiceMonitor": _crd("monitoring.coreos.com/v1", {
        "type": "object",
        "required": ["selector", "endpoints"],
        "properties": {"selector": _SELECTOR, "endpoints": {"type": "array", "minItems": 1, "items": _ENDPOINT}},
    }),
    "PodMonitor": _crd("monitoring.coreos.com/v1", {
        "type": "object",
        "required": ["selector", "podMetricsEndpoints"],
        "properties": {
            "selector": _SELECTOR,
            "podMetricsEndpoints": {"type": "array", "minItems": 1, "items": _ENDPOINT},
        },
    }),
    "PrometheusRule": _crd("monitoring.coreos.com/v1", {
        "type": "object",
        "required": ["groups"],
        "properties": {"groups": {"type": "array", "minItems": 1, "items": {
            "type": "object",
            "required": ["name", "rules"],
            "properties": {
                "name": {"type": "string", "minLength": 1},
                "interval": {"type": "string"},
                "rules": {"type": "array", "minItems": 1, "items": {
                    "type": "object",
                    "required": ["expr"],
                    "oneOf": [{"required": ["record"]}, {"required": ["alert"]}],
                    "properties": {
                        "expr": {"type": "string", "minLength": 1},
                        "for": {"type": "string"},
                        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
                    },
                }},
            },
        }}},
    }),
    "AlertmanagerConfig": _crd("monitoring.coreos.com/v1alpha1", {
        "type": "object",
        "required": ["route", "receivers"],
        "properties": {
            "route": {
                "type": "object",
                "required": ["receiver"],
                "properties": {"receiver": {"type": "string"}, "matchers": {"type": "array", "items": _MATCHER}},
            },
            "receivers": {"type": "array", "items": {
                "type": "object",
                "required": ["name"],
                "properties": {
                    "name": {"type": "string"},
                    "slackConfigs": {"type": "array", "items": {
                        "type": "object",
                        "required": ["apiURL"],
                        "properties": {"apiURL": _SECRET_KEY, "sendResolved": {"type": "boolean"}},
                    }},
                },
            }},
            "inhibitRules": {"type": "array", "items": {
                "type": "object",
                "properties": {
                    "sourceMatch": {"type": "array", "items": _MATCHER},
                    "targetMatch": {"type": "array", "items": _MATCHER},
                },
            }},
        },
    }),
}

# --- lint and schemas ---------------------------------------------------------------------------


def test_the_ci_values_files_cover_every_required_feature() -> None:
    assert {path.name for path in CI_VALUES} >= REQUIRED_CI_FILES


@pytest.mark.parametrize("values", [None, *CI_VALUES], ids=lambda v: v.name if v else "default")
def test_helm_lint_strict_passes(values: Path | None) -> None:
    args = ["lint", "--strict", str(CHART)] + (["-f", str(values)] if values else [])
    result = run_helm(args)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("case", RENDER_CASES, ids=case_id)
@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_rendered_manifest_is_valid_for_the_kubernetes_version(
    case: tuple[str, Path | None, tuple[str, ...]], version: str
) -> None:
    _, values, apis = case
    manifests = render(values, api_versions=apis)
    assert manifests
    for manifest in manifests:
        where = f"{manifest['kind']}/{manifest['metadata']['name']}"
        if manifest["kind"] in OPERATOR_SCHEMAS:
            jsonschema.validate(manifest, OPERATOR_SCHEMAS[manifest["kind"]])
            continue
        try:
            kubernetes_validate.validate(manifest, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{where} is not valid for Kubernetes {version}: {exc.message}")


def test_operator_objects_render_only_where_the_cluster_serves_them() -> None:
    without = {m["kind"] for m in render()}
    with_operator = {m["kind"] for m in render(api_versions=(OPERATOR_API,))}
    assert not without & set(OPERATOR_SCHEMAS)
    assert {"ServiceMonitor", "PrometheusRule"} <= with_operator
    assert "AlertmanagerConfig" not in with_operator  # needs Slack secrets: opt-in
