"""One version everywhere: pyproject's `project.version`, the chart's `appVersion`, the image tag the
chart deploys by default and the version label the Dockerfile stamps on the image.

A release bumps pyproject.toml; this test says which of the others still lags behind.
"""

from __future__ import annotations

import re
import shutil
import tomllib
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART = Path("helm/gpucost")
# The chart's image helper: `default .Chart.AppVersion .Values.image.tag` is what makes an empty
# `image.tag` mean "the appVersion".
TAG_DEFAULTS_TO_APP_VERSION = re.compile(r"default\s+\.Chart\.AppVersion\s+\.Values\.image\.tag")
DOCKERFILE_VERSION_ARG = re.compile(r"^ARG VERSION=(\S+)\s*$", re.MULTILINE)


def versions_out_of_step(root: Path) -> list[str]:
    """One line per place whose version differs from pyproject's; empty when all agree."""
    version = tomllib.loads((root / "pyproject.toml").read_text())["project"]["version"]
    problems: list[str] = []

    app_version = str(yaml.safe_load((root / CHART / "Chart.yaml").read_text())["appVersion"])
    if app_version != version:
        problems.append(f"{CHART}/Chart.yaml appVersion is {app_version!r}, pyproject.toml says {version!r}")

    tag = str(yaml.safe_load((root / CHART / "values.yaml").read_text())["image"].get("tag") or "")
    if tag == "":
        helpers = (root / CHART / "templates/_helpers.tpl").read_text()
        if not TAG_DEFAULTS_TO_APP_VERSION.search(helpers):
            problems.append(f"{CHART}/values.yaml image.tag is empty but the image template does not default it "
                            "to .Chart.AppVersion")
    elif tag != version:
        problems.append(f"{CHART}/values.yaml image.tag is {tag!r}, pyproject.toml says {version!r}")

    match = DOCKERFILE_VERSION_ARG.search((root / "Dockerfile").read_text())
    if match is None:
        problems.append("Dockerfile has no `ARG VERSION=<default>` for the image's version label")
    elif match.group(1) != version:
        problems.append(f"Dockerfile ARG VERSION defaults to {match.group(1)!r}, pyproject.toml says {version!r}")
    return problems


def _copy_of_versioned_files(destination: Path) -> Path:
    for relative in ("pyproject.toml", "Dockerfile", CHART / "Chart.yaml", CHART / "values.yaml",
                     CHART / "templates/_helpers.tpl"):
        (destination / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / relative, destination / relative)
    return destination


def test_pyproject_chart_app_version_image_tag_and_dockerfile_agree() -> None:
    assert versions_out_of_step(REPO_ROOT) == []


def test_a_lagging_app_version_is_reported(tmp_path: Path) -> None:
    root = _copy_of_versioned_files(tmp_path)
    pyproject = root / "pyproject.toml"
    pyproject.write_text(re.sub(r'(?m)^version = "[^"]+"', 'version = "99.0.0"', pyproject.read_text(), count=1))
    problems = versions_out_of_step(root)
    assert any("Chart.yaml appVersion" in line and "'99.0.0'" in line for line in problems), problems
    assert any("Dockerfile ARG VERSION" in line for line in problems), problems


def test_a_pinned_image_tag_must_match_too(tmp_path: Path) -> None:
    root = _copy_of_versioned_files(tmp_path)
    values_file = root / CHART / "values.yaml"
    values = yaml.safe_load(values_file.read_text())
    values["image"]["tag"] = "0.0.1-old"
    values_file.write_text(yaml.safe_dump(values))
    assert any("image.tag is '0.0.1-old'" in line for line in versions_out_of_step(root))


def test_an_empty_tag_needs_the_template_default(tmp_path: Path) -> None:
    root = _copy_of_versioned_files(tmp_path)
    helpers = root / CHART / "templates/_helpers.tpl"
    helpers.write_text(TAG_DEFAULTS_TO_APP_VERSION.sub(".Values.image.tag", helpers.read_text()))
    assert any("does not default it" in line for line in versions_out_of_step(root))
