"""The rules of rules/gpucost.inference.rules.yaml: inference cost split by the app's share-seconds.

These series keep their own 5m window whatever the cost rules' rate window: the app's
share counters and the split are documented in docs/instrumentation.md with it.
"""

from __future__ import annotations

from typing import Any

from gpucost.contract.recorded import by_key

__all__ = ["INFERENCE_PREAMBLE", "inference_groups"]

INFERENCE_PREAMBLE = """\
# Inference cost split: each inference pod's measured GPU cost (from the exporter's
# gpucost_container_gpu_cost_usd_total, active and idle kept apart) is split across
# model, model_version and business_unit by the share-seconds the app's
# GpuCostMiddleware counted (gpucost_inference_gpu_share_seconds_total).
#
# The app's /metrics must be scraped with the target labels `namespace` and `pod`
# (kubernetes_sd relabeling: __meta_kubernetes_namespace -> namespace,
# __meta_kubernetes_pod_name -> pod); see docs/instrumentation.md.
# The exporter's workload labels (model, business_unit, ...) are aggregated away
# before the join, so the app's own model and business_unit labels win.
# Split series sum to the pod's cost; a pod that served no request in the
# window keeps its cost under model="none", business_unit="none".
#
# gpucost.inference.daily: the 5-minute split integrated over the day. The subquery reads it
# at every minute mark ($/h / 60 = $ of that minute); a 5-minute average read every minute
# counts each minute's cost five times with weight 1/5, so the day's sum is the day's cost,
# lagging by the window's half (about 2.5 minutes), whatever the cost group's interval (up to
# the 5m lookback). Each window's cost is split by that window's shares; a window in which a
# pod served nothing stays under model="none". Reading the aggregated split, not every pod's
# counters over a day, keeps this group's cost independent of pod churn (docs/benchmarks.md).
"""

Rule = dict[str, Any]


def _name(key: str) -> str:
    return by_key(key).name()


def _record(key: str, expr: str) -> Rule:
    return {"record": _name(key), "expr": expr}


def _share_rules() -> list[Rule]:
    seconds = _name("inference_share_seconds_rate")
    return [
        _record(
            "inference_share_seconds_rate",
            "sum by (namespace, pod, model, model_version, business_unit) (\n"
            "  rate(gpucost_inference_gpu_share_seconds_total[5m])\n"
            ")\n",
        ),
        _record(
            "inference_share_ratio",
            f"{seconds}\n"
            "  / on (namespace, pod) group_left ()\n"
            "(\n"
            f"  sum by (namespace, pod) ({seconds}) > 0\n"
            ")\n",
        ),
        _record(
            "inference_pod_cost_rate",
            "sum by (namespace, pod, component) (rate(gpucost_container_gpu_cost_usd_total[5m])) * 3600\n"
            "  and on (namespace, pod)\n"
            f"{seconds}\n",
        ),
    ]


def _split_expr() -> str:
    # One join per component: group_left needs one pod-cost series per (namespace, pod).
    share = _name("inference_share_ratio")
    pod = _name("inference_pod_cost_rate")
    joins = [
        "(\n"
        f"  {share}\n"
        "    * on (namespace, pod) group_left (component)\n"
        f'  {pod}{{component="{component}"}}\n'
        ")\n"
        for component in ("active", "idle")
    ]
    unsplit = (
        "label_replace(\n"
        "  label_replace(\n"
        "    label_replace(\n"
        f"      {pod}\n"
        "        unless on (namespace, pod)\n"
        f"      {share},\n"
        '      "model", "none", "", ""),\n'
        '    "model_version", "none", "", ""),\n'
        '  "business_unit", "none", "", "")\n'
    )
    return "or\n".join([*joins, unsplit])


def _per_unit(key: str, counter: str, scale: str) -> Rule:
    model_rate = _name("inference_model_cost_rate")
    return _record(
        key,
        f"sum by (model, model_version) ({model_rate})\n"
        "  / on (model, model_version)\n"
        f"(sum by (model, model_version) (rate({counter}[5m])) * 3600 > 0)\n"
        f"  * {scale}\n",
    )


def _cost_rules() -> list[Rule]:
    return [
        _record("inference_split_cost_rate", _split_expr()),
        _record(
            "inference_model_cost_rate",
            "sum by (model, model_version, business_unit, component) (\n"
            f"  {_name('inference_split_cost_rate')}\n"
            ")\n",
        ),
        _per_unit("inference_cost_per_1k_requests", "gpucost_inference_requests_total", "1000"),
        _per_unit("inference_cost_per_1m_tokens", "gpucost_inference_tokens_total", "1e6"),
    ]


def inference_groups() -> list[dict[str, Any]]:
    daily = _record("inference_daily_cost", f"sum_over_time({_name('inference_model_cost_rate')}[1d:1m]) / 60\n")
    return [
        {"name": "gpucost.inference.share", "interval": "1m", "rules": _share_rules()},
        {"name": "gpucost.inference.cost", "interval": "1m", "rules": _cost_rules()},
        {"name": "gpucost.inference.daily", "interval": "5m", "rules": [daily]},
    ]
