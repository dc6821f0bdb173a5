"""Generate the gpucost Prometheus recording and alerting rules from one set of options.

Every file under `rules/` is the default output of `write_rules(RuleOptions(), Path("rules"))`;
a test fails when one drifts. The modules: `options` (RuleOptions), `promql` (building
blocks), `recording` (cost, month-to-date and run series), `budget_alerts`, `alerts` (team and
platform), `templating` (alert text), `output` (YAML) and `rendering` (files). Recorded names
come from `gpucost.contract.recorded`, budget tiers from `gpucost.contract.tiers`.
The method behind every series is documented in docs/rules.md.
"""

from __future__ import annotations

from gpucost.rulegen.options import RuleOptions, duration_seconds
from gpucost.rulegen.rendering import (
    ALERTS_FILE,
    GENERATED_FILES,
    INFERENCE_FILE,
    RULES_FILE,
    SIDECAR_FILE,
    alert_names,
    render_alerts,
    render_all,
    render_inference_rules,
    render_rules,
    render_sidecar_rules,
    write_rule_files,
    write_rules,
)

__all__ = [
    "ALERTS_FILE",
    "GENERATED_FILES",
    "INFERENCE_FILE",
    "RULES_FILE",
    "SIDECAR_FILE",
    "RuleOptions",
    "alert_names",
    "duration_seconds",
    "render_alerts",
    "render_all",
    "render_inference_rules",
    "render_rules",
    "render_sidecar_rules",
    "write_rule_files",
    "write_rules",
]
