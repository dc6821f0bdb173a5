"""How long each rule group takes to evaluate, read from a running Prometheus or vmalert.

Both answer `/api/v1/rules`, which says when each group last ran.  Prometheus reports the
group's `evaluationTime` there.  vmalert 1.79 has no group figure in that answer, and its
per-rule `evaluationTime` is not the query's time (about 0.17 s for every rule of a group
whose whole iteration took 0.09 s, against 2 ms queries), so its group figures come from
its own `vmalert_iteration_duration_seconds` summary instead.  A group counts as measured
once its `lastEvaluation` has moved past the first one seen: the first evaluation is the
cold one (pages not yet in the cache), and the worst seen, cold one included, is reported
beside the typical one.
"""

from __future__ import annotations

import re
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from gpucost.durations import parse_duration
from gpucost_testing.servers import http_get_json

__all__ = [
    "bench_rule_files",
    "parse_vmalert_iterations",
    "query",
    "recorded_names",
    "vmalert_iteration_seconds",
    "wait_for_two_evaluations",
]

NEVER = "0001-"
_ITERATION = re.compile(
    r"^vmalert_iteration_duration_seconds(?P<suffix>_sum|_count)?\{(?P<labels>[^}]*)\} (?P<value>\S+)$")
_LABEL = re.compile(r'(\w+)="([^"]*)"')


def query(base_url: str, expr: str) -> list[dict[str, Any]]:
    """Instant query against Prometheus or VictoriaMetrics (same API)."""
    answer = http_get_json(base_url + "/api/v1/query", {"query": expr}, timeout=120.0)
    result: list[dict[str, Any]] = answer["data"]["result"]
    return result


def bench_rule_files(
    sources: Sequence[Path], out_dir: Path, interval_seconds: int
) -> tuple[list[Path], dict[str, str]]:
    """Copies of the rule files with every group's `interval` set to `interval_seconds`.

    What a group costs to evaluate does not depend on how often it runs, but a group on a
    5-minute interval needs up to ten minutes to evaluate twice.  Returns the copies and the
    intervals that were changed (`group: "5m -> 30s"`), which the result reports.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    copies: list[Path] = []
    changed: dict[str, str] = {}
    for source in sources:
        document = yaml.safe_load(source.read_text())
        for group in document.get("groups", []):
            own = group.get("interval")
            if own is not None and parse_duration(str(own)) != interval_seconds:
                changed[f"{source.name}:{group['name']}"] = f"{own} -> {interval_seconds}s"
            group["interval"] = f"{interval_seconds}s"
        copy = out_dir / source.name
        copy.write_text(yaml.safe_dump(document, sort_keys=False, allow_unicode=True))
        copies.append(copy)
    return copies, changed


def recorded_names(files: Sequence[Path]) -> list[str]:
    names: list[str] = []
    for path in files:
        for group in yaml.safe_load(path.read_text()).get("groups", []):
            for rule in group.get("rules", []):
                if "record" in rule and rule["record"] not in names:
                    names.append(rule["record"])
    return names


def vmalert_iteration_seconds(base_url: str) -> dict[str, dict[str, float]]:
    """Per `file:group`, vmalert's mean and longest iteration so far (from its /metrics summary)."""
    with urllib.request.urlopen(base_url + "/metrics", timeout=30) as response:
        return parse_vmalert_iterations(response.read().decode())


def parse_vmalert_iterations(text: str) -> dict[str, dict[str, float]]:
    """`vmalert_iteration_duration_seconds` lines to {file:group: {mean, max}}; max is the window's quantile 1."""
    figures: dict[str, dict[str, float]] = {}
    for line in text.splitlines():
        match = _ITERATION.match(line)
        if match is None:
            continue
        labels = dict(_LABEL.findall(match.group("labels")))
        key = f"{Path(labels['file']).name}:{labels['group']}"
        entry = figures.setdefault(key, {})
        suffix, quantile = match.group("suffix") or "", labels.get("quantile")
        if suffix == "" and quantile == "1":
            entry["max"] = float(match.group("value"))
        elif suffix in ("_sum", "_count"):
            entry[suffix[1:]] = float(match.group("value"))
    return {key: {"mean": e["sum"] / e["count"], "max": e.get("max", e["sum"] / e["count"])}
            for key, e in figures.items() if e.get("count")}


def wait_for_two_evaluations(base_url: str, timeout: float) -> dict[str, dict[str, Any]]:
    """Poll `/api/v1/rules` until every group has evaluated at least twice; per group, its figures."""
    first: dict[str, str] = {}
    done: dict[str, dict[str, Any]] = {}
    seen_max: dict[str, float] = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        groups = http_get_json(base_url + "/api/v1/rules", timeout=120.0)["data"]["groups"]
        for group in groups:
            key = f"{Path(group['file']).name}:{group['name']}"
            last = str(group["lastEvaluation"])
            if last.startswith(NEVER):
                continue
            # vmalert leaves this out: its caller reads vmalert_iteration_seconds() instead.
            seconds = float(group.get("evaluationTime", 0.0))
            seen_max[key] = max(seen_max.get(key, 0.0), seconds)
            first.setdefault(key, last)
            if last != first[key]:
                done[key] = {
                    "evaluation_seconds": round(seconds, 4),
                    "max_seen_evaluation_seconds": round(seen_max[key], 4),
                    "last_evaluation": last,
                    "rules": len(group["rules"]),
                    "rule_errors": [r["lastError"] for r in group["rules"] if r.get("lastError")],
                }
        if groups and len(done) == len(groups):
            return done
        time.sleep(1.0)
    raise TimeoutError(f"rule groups not evaluated twice within {timeout:.0f} s: {sorted(set(first) - set(done))}")
