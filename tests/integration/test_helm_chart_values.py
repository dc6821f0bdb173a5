"""The Helm chart's values: the schema rejects bad values with a clear message, every value is in the
schema and commented in values.yaml, the README's table is generated, and the ports match the CLIs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from gpucost.helmdocs import render_readme
from gpucost_testing.helm_render import CHART, run_helm

pytestmark = pytest.mark.integration


BAD_VALUES = [
    pytest.param({"exporter": {"config": {"pricing": {"gpu_models": {"H100-80GB": -2.5}}}}},
                 "/exporter/config/pricing/gpu_models/H100-80GB", "exclusiveMinimum: got -2.5, want 0",
                 id="negative-price"),
    pytest.param({"exporter": {"sharing": {"mode": "vgpu"}}}, "/exporter/sharing/mode", "value must be one of",
                 id="unknown-sharing-mode"),
    pytest.param({"exporter": {"port": "metrics"}}, "/exporter/port", "got string, want integer", id="wrong-type"),
    pytest.param({"exporter": {"securityContext": {"privileged": True}}}, "/exporter/securityContext/privileged",
                 "value must be false", id="privileged"),
    pytest.param({"exporter": {"unknownKey": 1}}, "/exporter", "additional properties 'unknownKey' not allowed",
                 id="unknown-key"),
    pytest.param({"budgets": {"aws": {"secretAccessKey": "abc"}}}, "/budgets/aws", "additional properties",
                 id="inline-secret"),
    pytest.param({"budgets": {"enforcement": {"enabled": True}}}, "/budgets/enforcement/namespaces", "minItems",
                 id="enforcement-without-namespaces"),
    pytest.param({"exporter": {"config": {"sample_interval": "often"}}}, "/exporter/config/sample_interval",
                 "does not match pattern", id="bad-duration"),
    pytest.param({"budgets": {"gcp": {"billingExportTable": "billing_export"}}}, "/budgets/gcp/billingExportTable",
                 "does not match pattern", id="export-table-without-project"),
]


@pytest.mark.parametrize(("values", "where", "message"), BAD_VALUES)
def test_bad_values_are_rejected_by_the_schema_with_a_clear_message(
    values: dict[str, Any], where: str, message: str, tmp_path: Path
) -> None:
    values_file = tmp_path / "bad-values.yaml"
    values_file.write_text(yaml.safe_dump(values))
    result = run_helm(["template", "gpucost", str(CHART), "-f", str(values_file)])
    assert result.returncode != 0
    assert "values don't meet the specifications of the schema" in result.stderr
    line = next((ln for ln in result.stderr.splitlines() if f"at '{where}'" in ln), "")
    assert message in line, result.stderr


def _schema_leaves(schema: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    properties = schema.get("properties")
    if prefix and not properties:
        yield prefix
        return
    for name, child in (properties or {}).items():
        assert child.get("description"), f"{'.'.join((*prefix, name))} has no description in the schema"
        yield from _schema_leaves(child, (*prefix, name))


def _commented_keys(text: str) -> Iterator[tuple[tuple[str, ...], bool]]:
    """(key path, has a comment directly above) for every key line of values.yaml."""
    stack: list[tuple[int, str]] = []
    previous = ""
    for line in text.splitlines():
        stripped = line.strip()
        match = re.match(r"^( *)([A-Za-z_][\w.-]*):", line)
        if match:
            indent = len(match.group(1))
            while stack and stack[-1][0] >= indent:
                stack.pop()
            stack.append((indent, match.group(2)))
            yield tuple(name for _, name in stack), previous.startswith("#")
        if stripped:
            previous = stripped


def test_every_value_is_in_the_schema_and_commented_in_values_yaml() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    leaves = set(_schema_leaves(schema))
    declared_objects = {leaf[:n] for leaf in leaves for n in range(1, len(leaf))}
    for path, commented in _commented_keys((CHART / "values.yaml").read_text()):
        inside_leaf = any(path[: len(leaf)] == leaf and len(path) > len(leaf) for leaf in leaves)
        if inside_leaf:
            continue  # keys inside a free-form object (resources, securityContext ...) document as one
        assert path in leaves or path in declared_objects, f"{'.'.join(path)} is missing from values.schema.json"
        assert commented, f"{'.'.join(path)} in values.yaml has no comment above it"


def test_the_readme_values_table_is_generated_from_the_schema() -> None:
    readme = (CHART / "README.md").read_text()
    assert render_readme(readme, CHART) == readme, "run: python -m gpucost.helmdocs"


def test_the_exporter_and_sidecar_ports_match_their_cli_defaults() -> None:
    from gpucost.budgets.cli import build_parser as budgets_parser
    from gpucost.config import DEFAULT_LISTEN_ADDRESS

    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert f":{values['exporter']['port']}" == DEFAULT_LISTEN_ADDRESS
    serve = budgets_parser().parse_args(["serve"])
    assert serve.listen_address == f":{values['budgets']['port']}"
