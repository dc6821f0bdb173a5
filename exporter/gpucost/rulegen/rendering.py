"""The rule files as text, and writing them: each file's groups in order."""

from __future__ import annotations

from pathlib import Path

import yaml

from gpucost.rulegen.alerts import platform_alerts, team_alerts
from gpucost.rulegen.budget_alerts import budget_alerts
from gpucost.rulegen.inference_rules import INFERENCE_PREAMBLE, inference_groups
from gpucost.rulegen.options import RuleOptions
from gpucost.rulegen.output import dump_rules
from gpucost.rulegen.recording import recording_groups
from gpucost.rulegen.sidecar_rules import SIDECAR_PREAMBLE, sidecar_groups

__all__ = [
    "ALERTS_FILE",
    "GENERATED_FILES",
    "INFERENCE_FILE",
    "RULES_FILE",
    "SIDECAR_FILE",
    "alert_names",
    "render_alerts",
    "render_all",
    "render_inference_rules",
    "render_rules",
    "render_sidecar_rules",
    "write_rule_files",
    "write_rules",
]

RULES_FILE = "gpucost.rules.yaml"
ALERTS_FILE = "gpucost.alerts.yaml"
SIDECAR_FILE = "gpucost.sidecar.rules.yaml"
INFERENCE_FILE = "gpucost.inference.rules.yaml"
GENERATED_FILES = (RULES_FILE, ALERTS_FILE, SIDECAR_FILE, INFERENCE_FILE)


def render_rules(options: RuleOptions) -> str:
    """The recording-rules file as YAML text."""
    return dump_rules({"groups": recording_groups(options)}, "recording")


def render_alerts(options: RuleOptions) -> str:
    """The alerting-rules file as YAML text."""
    document = {
        "groups": [
            {"name": "gpucost.budgets", "rules": budget_alerts(options)},
            {"name": "gpucost.team", "rules": team_alerts(options)},
            {"name": "gpucost.platform", "rules": platform_alerts(options)},
        ]
    }
    return dump_rules(document, "alerting")


def render_sidecar_rules(options: RuleOptions) -> str:
    """The sidecar's rules (fixed-cost allocation, reconciliation drift) as YAML text."""
    return dump_rules({"groups": sidecar_groups(options)}, "sidecar", SIDECAR_PREAMBLE)


def render_inference_rules(options: RuleOptions) -> str:
    """The inference cost-split rules as YAML text; their 5m window is their own (options unused)."""
    del options
    return dump_rules({"groups": inference_groups()}, "inference", INFERENCE_PREAMBLE)


def render_all(options: RuleOptions) -> dict[str, str]:
    """Every generated rule file's text by file name: what `make rules` writes under rules/."""
    return {
        RULES_FILE: render_rules(options),
        ALERTS_FILE: render_alerts(options),
        SIDECAR_FILE: render_sidecar_rules(options),
        INFERENCE_FILE: render_inference_rules(options),
    }


def alert_names(options: RuleOptions | None = None) -> list[str]:
    document = yaml.safe_load(render_alerts(options or RuleOptions()))
    return [rule["alert"] for group in document["groups"] for rule in group["rules"]]


def write_rule_files(options: RuleOptions, out_dir: Path) -> list[Path]:
    """Write every generated rule file under `out_dir`; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in render_all(options).items():
        path = out_dir / name
        path.write_text(text)
        paths.append(path)
    return paths


def write_rules(options: RuleOptions, out_dir: Path) -> list[Path]:
    """Write the cost recording and alerting files under `out_dir`; returns their two paths.

    The demo and the end-to-end tests pair them with the other committed rule files.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / RULES_FILE, out_dir / ALERTS_FILE]
    paths[0].write_text(render_rules(options))
    paths[1].write_text(render_alerts(options))
    return paths
