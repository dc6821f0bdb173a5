"""The savings levers: pure functions from measured usage of one team and model to a saving.

Every lever returns a `LeverSaving` whose `share` is the fraction of the
workload's baseline spend the lever would save *on its own*.  Shares are
combined multiplicatively by `gpucost.scorecard.combine`, never summed.
Nothing here does I/O; inputs are plain numbers a reader can check by hand.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "HOURS_PER_MONTH",
    "LEVER_ORDER",
    "Confidence",
    "GpuCandidate",
    "LeverName",
    "LeverSaving",
    "WorkloadKind",
    "WorkloadUsage",
    "caching",
    "commitment",
    "idle_release",
    "quantization",
    "right_size",
    "spot",
]

HOURS_PER_MONTH = 730.0
"""Average hours in a month (8,760 / 12), the unit of every usd_per_month."""

LeverName = Literal["idle_release", "right_size", "caching", "quantization", "spot", "commitment"]
Confidence = Literal["measured", "estimate"]
WorkloadKind = Literal["training", "inference", "unknown"]

LEVER_ORDER: tuple[LeverName, ...] = ("idle_release", "right_size", "caching", "quantization", "spot", "commitment")
"""Combining order: remove waste, then shrink the hardware, then the work, then the price (docs/scorecard.md)."""


@dataclass(frozen=True, slots=True)
class WorkloadUsage:
    """What was measured for one team and model over the window, as hourly averages."""

    team: str
    model: str
    cost_usd_per_hour: float
    """Attributed cost, active + idle."""
    active_usd_per_hour: float
    idle_usd_per_hour: float
    on_demand_share: float = 1.0
    """Fraction of the cost on GPUs priced `on_demand` (not spot, commitment or on-prem)."""
    spot_price_ratio: float | None = None
    """Spot price / on-demand price for the instance type and region; None when unknown."""
    spot_from_catalog_price: bool = False
    """True when the ratio comes from a listed spot price, False when from the cloud's default discount."""
    kind: WorkloadKind = "unknown"
    gpu_model: str | None = None
    """Normalised model key of the GPUs (`A100-80GB`); None when mixed or unknown."""
    peak_memory_gib: float | None = None
    peak_utilization: float | None = None
    inference_share: float = 0.0
    """Fraction of the cost spent serving inference through the middleware."""
    duplicate_ratio: float | None = None
    """Duplicate requests / requests, measured by the middleware; None when not instrumented."""
    min_hourly_usd: float = 0.0
    """Lowest hourly spend over the window (0 when the workload was absent for an hour)."""

    @property
    def baseline_usd_per_month(self) -> float:
        return self.cost_usd_per_hour * HOURS_PER_MONTH


@dataclass(frozen=True, slots=True)
class LeverSaving:
    lever: LeverName
    share: float
    """Fraction of the baseline saved by this lever alone, 0..1."""
    usd_per_month: float
    confidence: Confidence
    risk: str
    detail: str


@dataclass(frozen=True, slots=True)
class GpuCandidate:
    """A GPU (or MIG slice of the current GPU) a workload could move to."""

    name: str
    memory_gib: float
    price_ratio: float
    """Its price / the current GPU's price, per GPU-hour on the same price basis."""
    compute_fraction: float | None = None
    """For a MIG slice: its share of the parent's compute; None for another model."""


def _clamp(value: float) -> float:
    return min(1.0, max(0.0, value))


def _saving(usage: WorkloadUsage, lever: LeverName, share: float, confidence: Confidence,
            risk: str, detail: str) -> LeverSaving:
    share = _clamp(share)
    return LeverSaving(lever, share, share * usage.baseline_usd_per_month, confidence, risk, detail)


def _none(usage: WorkloadUsage, lever: LeverName, why: str, confidence: Confidence = "measured") -> LeverSaving:
    return _saving(usage, lever, 0.0, confidence, "", why)


def idle_release(usage: WorkloadUsage) -> LeverSaving:
    """The idle component: GPUs allocated but not busy, saved by releasing or autoscaling them."""
    if usage.cost_usd_per_hour <= 0:
        return _none(usage, "idle_release", "no spend")
    share = usage.idle_usd_per_hour / usage.cost_usd_per_hour
    return _saving(
        usage, "idle_release", share, "measured",
        "scale-to-zero adds cold-start latency; keep a minimum replica for latency-critical services",
        f"idle cost {usage.idle_usd_per_hour:.2f} USD/h of {usage.cost_usd_per_hour:.2f} USD/h",
    )


def spot(usage: WorkloadUsage) -> LeverSaving:
    """On-demand share of spend x (1 - spot price / on-demand price) for the instance type and region."""
    if usage.spot_price_ratio is None:
        return _none(usage, "spot", "no spot price known for the instance type and region")
    share = usage.on_demand_share * (1.0 - usage.spot_price_ratio)
    if usage.kind == "training":
        risk = "preemption: needs checkpointing and restart; training with checkpoints is a good fit"
    elif usage.kind == "inference":
        risk = ("preemption interrupts serving: only for replicas behind a load balancer with on-demand "
                "headroom, not for latency-critical inference")
    else:
        risk = "preemption with two minutes' notice or less; the workload must tolerate restarts"
    basis = "catalog spot price" if usage.spot_from_catalog_price else "cloud's default spot discount"
    return _saving(
        usage, "spot", share, "measured" if usage.spot_from_catalog_price else "estimate", risk,
        f"{usage.on_demand_share:.0%} of spend on demand; spot/on-demand = {usage.spot_price_ratio:.3f} ({basis})",
    )


def right_size(usage: WorkloadUsage, candidates: Iterable[GpuCandidate], *,
               headroom: float = 0.2, max_utilization_other_model: float = 0.5) -> LeverSaving:
    """The cheapest candidate whose memory and compute fit the measured peaks with `headroom` to spare.

    A MIG slice fits when peak memory and peak utilization (of the whole GPU)
    fit within its memory and compute fraction less the headroom.  Another GPU
    model fits on memory, and only when the measured peak utilization is at
    most `max_utilization_other_model` (its speed differs; benchmark first).
    """
    if usage.peak_memory_gib is None or usage.peak_utilization is None or usage.gpu_model is None:
        return _none(usage, "right_size", "no measured peak memory/utilization or GPU model")
    keep = 1.0 - headroom
    best: GpuCandidate | None = None
    for candidate in candidates:
        if candidate.price_ratio >= 1.0 or usage.peak_memory_gib > candidate.memory_gib * keep:
            continue
        if candidate.compute_fraction is not None:
            fits = usage.peak_utilization <= candidate.compute_fraction * keep
        else:
            fits = usage.peak_utilization <= max_utilization_other_model
        if fits and (best is None or candidate.price_ratio < best.price_ratio):
            best = candidate
    if best is None:
        return _none(usage, "right_size", f"no cheaper GPU fits peak {usage.peak_memory_gib:.1f} GiB, "
                                          f"{usage.peak_utilization:.0%} utilization on {usage.gpu_model}")
    memory_headroom = 1.0 - usage.peak_memory_gib / best.memory_gib
    return _saving(
        usage, "right_size", 1.0 - best.price_ratio, "measured",
        f"benchmark first: {best.name} has {memory_headroom:.0%} memory headroom over the measured peak "
        "and different throughput",
        f"{usage.gpu_model} -> {best.name}: peak {usage.peak_memory_gib:.1f} GiB of {best.memory_gib:.0f} GiB, "
        f"peak utilization {usage.peak_utilization:.0%}, price x{best.price_ratio:.3f}",
    )


def caching(usage: WorkloadUsage) -> LeverSaving:
    """Inference cost x the measured duplicate-request ratio: duplicates a response cache would answer."""
    if usage.duplicate_ratio is None or usage.inference_share <= 0:
        return _none(usage, "caching", "no duplicate-request measurement (GpuCostMiddleware)")
    share = usage.inference_share * usage.duplicate_ratio
    return _saving(
        usage, "caching", share, "measured",
        "stale answers: needs a cache key that covers every input and an expiry suited to the data",
        f"{usage.duplicate_ratio:.1%} of requests were duplicates",
    )


def quantization(usage: WorkloadUsage, speedup: float = 3.0) -> LeverSaving:
    """An estimate: inference active cost x (1 - 1/speedup), from an assumed speed-up (3x for 4-bit)."""
    if usage.inference_share <= 0 or usage.cost_usd_per_hour <= 0 or speedup <= 1.0:
        return _none(usage, "quantization", "no inference spend", "estimate")
    active_share = usage.active_usd_per_hour / usage.cost_usd_per_hour
    share = usage.inference_share * active_share * (1.0 - 1.0 / speedup)
    return _saving(
        usage, "quantization", share, "estimate",
        "accuracy loss: evaluate the quantized model on your own task before serving it",
        f"assumed {speedup:g}x speed-up of inference active cost (not measured)",
    )


def commitment(usage: WorkloadUsage, discount: float = 0.30) -> LeverSaving:
    """The steady baseline (minimum hourly spend over the window) on demand, times a commitment discount."""
    if usage.cost_usd_per_hour <= 0:
        return _none(usage, "commitment", "no spend")
    steady = min(usage.min_hourly_usd, usage.cost_usd_per_hour) * usage.on_demand_share
    share = steady / usage.cost_usd_per_hour * discount
    return _saving(
        usage, "commitment", share, "measured",
        "lock-in: a 1- or 3-year commitment is paid whether or not the GPUs are used",
        f"steady {steady:.2f} USD/h on demand at {discount:.0%} discount",
    )
