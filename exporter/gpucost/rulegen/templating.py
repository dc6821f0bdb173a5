"""Alert text helpers: Prometheus template snippets and the shape of one alerting rule."""

from __future__ import annotations

from typing import Any

from gpucost.rulegen.options import RuleOptions

__all__ = ["alert", "go_quote", "usd_from_query"]

_THOUSANDS = ' | reReplaceAll "^(-?[0-9]+)([0-9]{3})" "${1},${2}"'


def go_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def usd_from_query(query: str, *args: str) -> str:
    """Template text: run `query` (printf format with args) and print the first value as 16,000.00."""
    printf_args = " ".join(args)
    return (
        f"{{{{ with printf {go_quote(query)} {printf_args} | query }}}}"
        f'{{{{ . | first | value | printf "%.2f"{_THOUSANDS * 4} }}}}{{{{ end }}}}'
    )


def _runbook(options: RuleOptions, alert_name: str) -> str:
    return f"{options.runbook_base_url}#{alert_name.lower()}"


def alert(
    options: RuleOptions,
    name: str,
    expr: str,
    duration: str,
    labels: dict[str, str],
    summary: str,
    description: str,
    extra_annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    annotations = dict(extra_annotations or {})
    annotations["summary"] = summary
    annotations["description"] = description
    annotations["runbook_url"] = _runbook(options, name)
    return {"alert": name, "expr": expr, "for": duration, "labels": labels, "annotations": annotations}
