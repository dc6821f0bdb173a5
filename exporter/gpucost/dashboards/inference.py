"""Dashboard 4, inference unit economics: cost per request and token by model and business unit.

Every panel reads the series of rules/gpucost.inference.rules.yaml, which need an app
instrumented with GpuCostMiddleware (docs/instrumentation.md); without one they are empty.
"""

from __future__ import annotations

from gpucost.dashboards.common import CLUSTER, Board, Query, table_panel, timeseries_panel
from gpucost.dashboards.tables import DEFAULT_RATE_WINDOW, RecordedNames

__all__ = ["UID", "build"]

UID = "gpucost-inference"
MODELS = f'{CLUSTER}, model=~"$model"'
NO_INSTRUMENTATION = "no inference app is instrumented with GpuCostMiddleware"


def _per_business_unit(rec: RecordedNames, counter: str, scale: str) -> str:
    """Inference cost per hour / counter per hour, by business unit (no recorded series at this level)."""
    return (
        f"sum by (business_unit) ({rec.select('inference_model_cost_rate', MODELS)})"
        f" / (sum by (business_unit) (rate({counter}{{{MODELS}}}[$__rate_interval])) * 3600 > 0) * {scale}"
    )


def build(rate_window: str = DEFAULT_RATE_WINDOW) -> Board:
    board = Board(
        uid=UID,
        title="GPU cost: inference unit economics",
        description="Cost per 1K requests and per 1M tokens by model and business unit, duplicate requests, "
        "daily cost per business unit. Needs GpuCostMiddleware in the serving app.",
        variables=("cluster", "model"),
        rate_window=rate_window,
    )
    # The inference rules keep their own 5m window whatever `rate_window` is; the table knows.
    rec = board.recorded
    board.row("Unit cost by model")
    board.add(
        timeseries_panel(
            "Cost per 1K requests by model",
            "GPU cost of the serving pods split by the requests' GPU-time share, divided by requests served, x 1000 "
            f"({rec('inference_cost_per_1k_requests')}).",
            "currencyUSD",
            [Query(rec.select("inference_cost_per_1k_requests", MODELS), "{{model}} {{model_version}}")],
        ),
        w=12, h=8, empty_when_healthy=NO_INSTRUMENTATION,
    )
    board.add(
        timeseries_panel(
            "Cost per 1M tokens by model",
            "GPU cost split to the model divided by prompt + completion tokens reported, x 1,000,000 "
            f"({rec('inference_cost_per_1m_tokens')}).",
            "currencyUSD",
            [Query(rec.select("inference_cost_per_1m_tokens", MODELS), "{{model}} {{model_version}}")],
        ),
        w=12, h=8, empty_when_healthy=NO_INSTRUMENTATION,
    )
    board.row("By business unit")
    board.add(
        timeseries_panel(
            "Cost per 1K requests by business unit",
            f"Inference cost per hour of each business unit ({rec('inference_model_cost_rate')}) "
            "divided by its requests per hour (rate of gpucost_inference_requests_total), x 1000.",
            "currencyUSD",
            [Query(_per_business_unit(rec, "gpucost_inference_requests_total", "1000"), "{{business_unit}}")],
        ),
        w=8, h=8, empty_when_healthy=NO_INSTRUMENTATION,
    )
    board.add(
        timeseries_panel(
            "Cost per 1M tokens by business unit",
            "Inference cost per hour of each business unit divided by its tokens per hour "
            "(rate of gpucost_inference_tokens_total), x 1,000,000.",
            "currencyUSD",
            [Query(_per_business_unit(rec, "gpucost_inference_tokens_total", "1e6"), "{{business_unit}}")],
        ),
        w=8, h=8, empty_when_healthy=NO_INSTRUMENTATION,
    )
    board.add(
        timeseries_panel(
            "Inference cost by business unit (USD/h)",
            "GPU cost per hour of the serving pods split by business unit, active and idle together "
            f"({rec('inference_model_cost_rate')}); \"none\" is time no request used.",
            "currencyUSD",
            [Query(f"sum by (business_unit) ({rec.select('inference_model_cost_rate', MODELS)})", "{{business_unit}}")],
            stacked=True,
        ),
        w=8, h=8, empty_when_healthy=NO_INSTRUMENTATION,
    )
    board.add(
        timeseries_panel(
            "Duplicate-request share",
            "Requests the app marked as repeats of a recent request (gpucost_inference_duplicate_requests_total) "
            "divided by all requests (gpucost_inference_requests_total), per model: money a cache could save.",
            "percentunit",
            [
                Query(
                    f"sum by (model) (rate(gpucost_inference_duplicate_requests_total{{{MODELS}}}[$__rate_interval]))"
                    f" / (sum by (model) (rate(gpucost_inference_requests_total{{{MODELS}}}[$__rate_interval])) > 0)",
                    "{{model}}",
                )
            ],
            steps=((None, "green"), (0.1, "orange"), (0.3, "red")),
        ),
        w=12, h=8, empty_when_healthy=NO_INSTRUMENTATION,
    )
    board.add(
        table_panel(
            "Cost per business unit per day",
            "One row per day and business unit: GPU cost of the serving pods over the day, each 5-minute window "
            f"split by the business units' GPU-time shares in it ({rec('inference_daily_cost')} "
            "sampled once a day; windows without requests are business_unit=\"none\"). Active and "
            "idle cost together.",
            "currencyUSD",
            [
                Query(
                    f"sum by (business_unit) ({rec.select('inference_daily_cost', MODELS)})",

                    table=True,
                    interval="1d",
                )
            ],
            renames={"Value": "USD per day", "Time": "day"},
            hidden=(),
        ),
        w=12, h=8, empty_when_healthy=NO_INSTRUMENTATION,
    )
    return board
