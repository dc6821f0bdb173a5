"""The README values table generator: rows from the schema, defaults from values.yaml."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gpucost.helmdocs import TABLE_END, TABLE_START, main, render_readme, render_table, value_docs

SCHEMA = {
    "type": "object",
    "properties": {
        "image": {
            "type": "object",
            "description": "Image.",
            "properties": {
                "tag": {"type": "string", "description": "Tag | version."},
                "pullPolicy": {"type": "string", "enum": ["Always", "Never"], "description": "Policy."},
            },
        },
        "resources": {"type": "object", "description": "Free-form resources."},
        "replicas": {"type": ["integer", "null"], "description": "Count."},
    },
}


def test_each_schema_leaf_is_a_row_with_its_default_from_values() -> None:
    values = {"image": {"tag": "1.0", "pullPolicy": "Never"}, "resources": {"limits": {"cpu": "1"}}}
    docs = value_docs(SCHEMA, values)
    assert [(d.key, d.type, d.default) for d in docs] == [
        ("image.tag", "string", '"1.0"'),
        ("image.pullPolicy", '"Always" \\| "Never"', '"Never"'),
        ("resources", "object", '{"limits":{"cpu":"1"}}'),
        ("replicas", "integer \\| null", ""),
    ]


def test_pipes_in_descriptions_are_escaped_so_the_table_keeps_its_columns() -> None:
    table = render_table(value_docs(SCHEMA, {}))
    row = next(line for line in table.splitlines() if line.startswith("| `image.tag`"))
    assert "Tag \\| version." in row
    assert row.count(" | ") == 3


def _chart(tmp_path: Path, readme: str) -> Path:
    (tmp_path / "values.schema.json").write_text(json.dumps(SCHEMA))
    (tmp_path / "values.yaml").write_text("image:\n  tag: '2'\n")
    (tmp_path / "README.md").write_text(readme)
    return tmp_path


def test_check_fails_until_the_table_is_regenerated(tmp_path: Path) -> None:
    chart = _chart(tmp_path, f"# chart\n\n{TABLE_START}\n| stale |\n{TABLE_END}\ntail\n")
    assert main(["--chart", str(chart), "--check"]) == 1
    assert main(["--chart", str(chart)]) == 0
    assert main(["--chart", str(chart), "--check"]) == 0
    text = (chart / "README.md").read_text()
    assert "| stale |" not in text
    assert '| `image.tag` | string | `"2"` | Tag \\| version. |' in text
    assert text.endswith(f"{TABLE_END}\ntail\n")


def test_a_readme_without_markers_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    chart = _chart(tmp_path, "# no table\n")
    assert main(["--chart", str(chart)]) == 2
    assert "lacks the markers" in capsys.readouterr().err
    with pytest.raises(ValueError, match="lacks the markers"):
        render_readme("# no table\n", chart)
