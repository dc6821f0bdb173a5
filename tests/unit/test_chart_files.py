"""The Helm chart carries real copies of the rules, dashboards and Alertmanager templates
(`make rules` / `make dashboards` / `make alertmanager-config` write them), and its values
schema names a draft jsonschema recognises."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import jsonschema  # type: ignore[import-untyped, unused-ignore]  # no stubs in the venv

from gpucost.chartfiles import CHART_FILES_DIR, chart_copies, main, sync_chart_files
from gpucost_testing.servers import REPO_ROOT

CHART = REPO_ROOT / "helm" / "gpucost"


def test_nothing_under_helm_is_a_symlink() -> None:
    links = [path for path in (REPO_ROOT / "helm").rglob("*") if path.is_symlink()]
    assert links == []


def test_the_chart_copies_equal_their_sources_byte_for_byte() -> None:
    copies = chart_copies(REPO_ROOT)
    assert {source.parent.name for source in copies.values()} >= {"rules", "dashboards", "templates"}
    for copy, source in copies.items():
        assert copy.read_bytes() == source.read_bytes(), f"{copy} differs from {source}: run make rules"
    shipped = {path for path in (REPO_ROOT / CHART_FILES_DIR).rglob("*") if path.is_file()}
    assert shipped == set(copies), "files under helm/gpucost/files/ without a source (or missing)"


def _layout(root: Path) -> None:
    (root / "rules" / "tests").mkdir(parents=True)
    (root / "rules" / "gpucost.rules.yaml").write_text("groups: []\n")
    (root / "rules" / "tests" / "gpucost.rules.test.yaml").write_text("tests: []\n")
    (root / "dashboards").mkdir()
    (root / "dashboards" / "gpucost-a.json").write_text("{}\n")
    (root / "alertmanager" / "templates").mkdir(parents=True)
    (root / "alertmanager" / "templates" / "gpucost.tmpl").write_text("{{ define \"x\" }}{{ end }}\n")
    (root / "alertmanager" / "alertmanager.yml").write_text("route: {}\n")


def test_sync_copies_what_the_chart_reads_and_drops_stale_copies(tmp_path: Path) -> None:
    _layout(tmp_path)
    stale = tmp_path / CHART_FILES_DIR / "dashboards" / "gpucost-gone.json"
    stale.parent.mkdir(parents=True)
    stale.write_text("{}\n")
    written = sync_chart_files(tmp_path)
    files = tmp_path / CHART_FILES_DIR
    assert sorted(path.relative_to(files).as_posix() for path in written) == [
        "alertmanager/templates/gpucost.tmpl",
        "dashboards/gpucost-a.json",
        "rules/gpucost.rules.yaml",
    ]
    assert not stale.exists()
    assert not (files / "rules" / "tests").exists(), "promtool tests are not shipped"
    assert not (files / "alertmanager" / "alertmanager.yml").exists(), "only the templates are shipped"
    assert main(["--repo", str(tmp_path), "--check"]) == 0
    (tmp_path / "dashboards" / "gpucost-a.json").write_text('{"changed": true}\n')
    assert main(["--repo", str(tmp_path), "--check"]) == 1
    assert main(["--repo", str(tmp_path)]) == 0
    assert (files / "dashboards" / "gpucost-a.json").read_text() == '{"changed": true}\n'


def test_the_values_schema_is_draft_07_for_jsonschema_without_a_warning() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        validator = jsonschema.validators.validator_for(schema)
    assert validator is jsonschema.Draft7Validator
    validator.check_schema(schema)
