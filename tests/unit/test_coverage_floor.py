"""`make test` measures coverage with a floor, and the README states the floor that pyproject enforces."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def _fail_under() -> float:
    config = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return float(config["tool"]["coverage"]["report"]["fail_under"])


def test_make_test_runs_pytest_with_coverage_of_the_product_package() -> None:
    makefile = (REPO_ROOT / "Makefile").read_text(encoding="utf-8")
    config = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))

    assert re.search(r"^COV_ARGS \?= --cov\b", makefile, re.MULTILINE)
    assert re.search(r"^\t\$\(PY\) -m pytest \$\(PYTEST_ARGS\) \$\(COV_ARGS\)$", makefile, re.MULTILINE)
    assert config["tool"]["coverage"]["run"]["source"] == ["gpucost"]
    assert _fail_under() > 0


def test_the_readme_development_section_states_the_enforced_floor_and_a_measured_total() -> None:
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Development", 1)[1].split("\n## ", 1)[0]
    floor = re.search(r"fail_under`, \*\*(\d+) %\*\*", section)
    measured = re.search(r"measured\s+\*\*(\d+(?:\.\d+)?) %\*\*", section)

    assert floor is not None and float(floor.group(1)) == _fail_under()
    assert measured is not None and float(measured.group(1)) >= _fail_under()
