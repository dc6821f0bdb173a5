"""Every budgets file in the repository validates with the real `gpucost budgets validate`.

Budgets files are found, not listed: every YAML file of the repository, and
every fenced `yaml` block of its markdown, whose top level has a `budgets`
list (or whose file name says `budget`) is one; a Helm values file's
`budgets.spec` (over the chart's defaults, as Helm merges them) is the budgets
file the chart renders into its ConfigMap; the test writes it to a file.  A new example cannot escape.

Fixtures meant to fail are named `tests/fixtures/budgets/invalid-*.yaml`; they
must be exactly the ones in `INVALID_FIXTURES`, and each must fail with its error.
Docs blocks meant to fail (shown with their error in a transcript that
test_docs_examples.py checks) must be exactly those in `INVALID_DOC_FILES`.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
BUDGET_FIXTURES = REPO_ROOT / "tests" / "fixtures" / "budgets"
CHART_VALUES = REPO_ROOT / "helm" / "gpucost" / "values.yaml"
INVALID_PREFIX = "invalid-"
# Fixtures meant to fail, with the error each must produce (after `FILE: `).
INVALID_FIXTURES = {
    "invalid-amount-usd.yaml": "budgets[0].amount_usd: unknown key; the monthly amount is `monthly_usd`",
    "invalid-team-less-scope.yaml": "budgets[0].scope.team: is required",
}
# `DOC#NAME` of the docs' `# file: NAME` blocks meant to fail.
INVALID_DOC_FILES = frozenset({"docs/budgets.md#old-budgets.yaml"})
# Directories that hold no file of the repository (see .gitignore): tools, environments, caches, build output.
NOT_IN_REPOSITORY = frozenset(
    {".git", ".venv", ".tools", ".whl", ".hypothesis", ".mypy_cache", ".ruff_cache", ".pytest_cache",
     "__pycache__", "build", "dist", "node_modules"}
)
# Files every discovery must find; guards the discovery itself against finding nothing.
KNOWN_EXAMPLES = frozenset(
    {
        "examples/budgets.yaml",
        "alertmanager/examples/budgets.yaml",
        "examples/gpucost_demo/budgets.yaml",
        "tests/fixtures/budgets/valid.yaml",
        "helm/gpucost/values.yaml",
        "helm/gpucost/ci/budgets-aws-values.yaml",
        "helm/gpucost/ci/budgets-keyfile-values.yaml",
    }
)
_YAML_FENCE = re.compile(r"^```ya?ml[ \t]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
_BUDGETS_KEY_LINE = re.compile(r"^\s*budgets:", re.MULTILINE)
_FILE_MARK = re.compile(r"\A# file: (\S+)")


@dataclass(frozen=True)
class BudgetsExample:
    """One budgets file: on disk (`path`), or the text the repository implies (`text`: a docs block, a chart spec)."""

    where: str
    path: Path | None = None
    text: str = ""

    def file_in(self, directory: Path) -> Path:
        if self.path is not None:
            return self.path
        written = directory / "budgets.yaml"
        written.write_text(self.text, encoding="utf-8")
        return written


def _repository_files(suffixes: tuple[str, ...]) -> Iterator[Path]:
    for directory, subdirectories, files in os.walk(REPO_ROOT):
        subdirectories[:] = sorted(
            name for name in subdirectories if name not in NOT_IN_REPOSITORY and not name.endswith(".egg-info")
        )
        yield from (Path(directory) / name for name in sorted(files) if name.endswith(suffixes))


def _relative(path: Path) -> str:
    return path.relative_to(REPO_ROOT).as_posix()


def _parsed(text: str) -> object:
    """The YAML document, or None where the text is no single YAML document (a Helm template, a snippet)."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return None


def _merged(defaults: object, overrides: object) -> object:
    """Helm's merge of values: mappings merge key by key, anything else (lists too) is replaced."""
    if not (isinstance(defaults, Mapping) and isinstance(overrides, Mapping)):
        return overrides
    merged = dict(defaults)
    for key, value in overrides.items():
        merged[key] = _merged(defaults[key], value) if key in defaults else value
    return merged


def _chart_budgets(document: object) -> Mapping[str, object] | None:
    """The `budgets:` section of a Helm values document (a mapping there, where a budgets file has a list)."""
    budgets = document.get("budgets") if isinstance(document, Mapping) else None
    return budgets if isinstance(budgets, Mapping) else None


def _example(where: str, text: str, path: Path | None, named_budgets: bool) -> BudgetsExample | None:
    document = _parsed(text)
    chart_budgets = _chart_budgets(document)
    if chart_budgets is not None:
        defaults = _chart_budgets(_parsed(CHART_VALUES.read_text(encoding="utf-8"))) or {}
        spec = _merged(defaults.get("spec", {}), chart_budgets.get("spec", {}))
        return BudgetsExample(where, text=yaml.safe_dump(spec, sort_keys=False))
    is_budgets_list = isinstance(document, Mapping) and isinstance(document.get("budgets"), list)
    # A file that says it is a budgets file is one even when it does not parse: validate must say why.
    if is_budgets_list or named_budgets or (document is None and _BUDGETS_KEY_LINE.search(text)):
        return BudgetsExample(where, path=path, text=text)
    return None


def _examples_in_files() -> Iterator[BudgetsExample]:
    for path in _repository_files((".yaml", ".yml")):
        if path.parent == BUDGET_FIXTURES and path.name.startswith(INVALID_PREFIX):
            continue
        # promtool unit-test files (rules/tests/*.test.yaml) may say "budgets" in their name: they test rules.
        named = "budget" in path.name and "templates" not in path.parts and not path.name.endswith(".test.yaml")
        example = _example(_relative(path), path.read_text(encoding="utf-8"), path, named)
        if example is not None:
            yield example


def _examples_in_markdown() -> Iterator[BudgetsExample]:
    for doc in _repository_files((".md",)):
        text = doc.read_text(encoding="utf-8")
        for block in _YAML_FENCE.finditer(text):
            if not _BUDGETS_KEY_LINE.search(block.group(1)):
                continue
            marked = _FILE_MARK.match(block.group(1))
            line = text.count("\n", 0, block.start()) + 1
            # Named by its `# file:` mark where it has one: stable under edits above it, unlike a line number.
            where = f"#{marked.group(1)}" if marked else f":{line}"
            example = _example(f"{_relative(doc)}{where}", block.group(1), None, named_budgets=False)
            if example is not None:
                yield example


DOC_EXAMPLES = list(_examples_in_markdown())
INVALID_DOC_EXAMPLES = [example for example in DOC_EXAMPLES if example.where in INVALID_DOC_FILES]
EXAMPLES = [
    *_examples_in_files(),
    *(example for example in DOC_EXAMPLES if example.where not in INVALID_DOC_FILES),
]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], capture_output=True, text=True, check=False, timeout=60, cwd=REPO_ROOT
    )


def _validate(path: Path) -> subprocess.CompletedProcess[str]:
    return _run("gpucost.cli.admin", "budgets", "validate", str(path))


def _alertmanager_teams(path: Path) -> subprocess.CompletedProcess[str]:
    # Bot mode: the file is read all the same, and a file without teams (the chart's default) is no error.
    return _run("gpucost.alerting", "--teams-from", str(path), "--mode", "bot")


def test_discovery_finds_every_known_kind_of_budgets_file() -> None:
    found = {example.where for example in EXAMPLES}
    assert sorted(KNOWN_EXAMPLES - found) == []
    assert any(where.startswith("docs/") for where in found), "the budgets block of a docs page was not found"


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda example: example.where)
def test_every_budgets_file_in_the_repository_validates(tmp_path: Path, example: BudgetsExample) -> None:
    budgets_file = example.file_in(tmp_path)
    result = _validate(budgets_file)
    assert result.returncode == 0, f"{example.where}: {result.stderr}"
    assert result.stderr == ""
    assert result.stdout.splitlines()[-1].startswith(f"{budgets_file}: ok (")
    # The Alertmanager generator reads the same format, so it takes every example too.
    generated = _alertmanager_teams(budgets_file)
    assert generated.returncode == 0, f"{example.where}: {generated.stderr}"


def test_the_invalid_fixtures_on_disk_are_exactly_the_listed_ones() -> None:
    on_disk = {path.name for path in BUDGET_FIXTURES.iterdir() if path.name.startswith(INVALID_PREFIX)}
    assert on_disk == set(INVALID_FIXTURES)


@pytest.mark.parametrize("name", sorted(INVALID_FIXTURES))
def test_each_invalid_fixture_fails_with_its_error_in_one_line(name: str) -> None:
    fixture = BUDGET_FIXTURES / name
    for result, prefix in ((_validate(fixture), "gpucost-budgets: "), (_alertmanager_teams(fixture), "error: ")):
        assert result.returncode == 2, result.stdout + result.stderr
        assert result.stderr.startswith(f"{prefix}{fixture}: {INVALID_FIXTURES[name]}")
        assert result.stderr.count("\n") == 1


def test_the_invalid_docs_blocks_are_exactly_the_listed_ones() -> None:
    assert {example.where for example in INVALID_DOC_EXAMPLES} == INVALID_DOC_FILES


@pytest.mark.parametrize("example", INVALID_DOC_EXAMPLES, ids=lambda example: example.where)
def test_each_invalid_docs_block_fails_in_one_line(tmp_path: Path, example: BudgetsExample) -> None:
    result = _validate(example.file_in(tmp_path))
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.count("\n") == 1
