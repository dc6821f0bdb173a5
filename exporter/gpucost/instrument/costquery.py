"""Training-run cost from the exporter's counters: PromQL text and answer parsing, no I/O.

Every query is an instant query at the run's end with `@ end` and a range equal
to the run's duration, so `increase()` covers exactly [start, end] of the pods'
counters (Prometheus extrapolates to the window edges; for linear cost counters
that is exact).  The HTTP and the answers' parsing live in `gpucost.promapi`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from gpucost.errors import NoData, UserInputError
from gpucost.promapi.answers import Sample

__all__ = [
    "JobRangePlan",
    "PodSelector",
    "QueryPlan",
    "RunLabels",
    "TimeRange",
    "TrainingCost",
    "joined_label",
    "promql_string",
    "run_labels",
    "summarize",
]

COST = "gpucost_container_gpu_cost_usd_total"
SECONDS = "gpucost_container_gpu_seconds_total"
GPU_INFO = "gpucost_gpu_info"
GPU_PRICE = "gpucost_gpu_price_usd_per_hour"
_DNS_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


def promql_string(text: str) -> str:
    """`text` as a double-quoted PromQL string literal."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _regex_literal(text: str) -> str:
    """Escape RE2 metacharacters (Kubernetes names only contain '.' among them)."""
    return re.sub(r"([.^$*+?()\[\]{}|\\])", r"\\\1", text)


@dataclass(frozen=True, slots=True)
class PodSelector:
    """The run's pods: a namespace and an anchored RE2 regex over pod names."""

    namespace: str
    pod_regex: str

    def __post_init__(self) -> None:
        if not _DNS_NAME.match(self.namespace):
            raise UserInputError("", "namespace", self.namespace, "is not a Kubernetes namespace name")
        if not self.pod_regex:
            raise UserInputError("", "pod_regex", self.pod_regex, "must not be empty")

    @classmethod
    def for_job(cls, namespace: str, job: str) -> PodSelector:
        """Pods of the Job `job`: the Job controller names them `<job>-<5 random characters>`
        (`<job>-<index>-<5 random characters>` for indexed Jobs), so a Job called
        `<job>-eval` in the same namespace is not picked up."""
        if not _DNS_NAME.match(job):
            raise UserInputError("", "job", job, "is not a Kubernetes Job name")
        return cls(namespace, _regex_literal(job) + "-([0-9]+-)?[a-z0-9]{5}")

    @classmethod
    def parse_job(cls, namespaced_name: str) -> PodSelector:
        """`NAMESPACE/NAME`, as the CLI takes it."""
        namespace, slash, name = namespaced_name.partition("/")
        if not slash or not namespace or not name:
            raise UserInputError("", "--job", namespaced_name, "must be NAMESPACE/NAME")
        return cls.for_job(namespace, name)

    def matchers(self) -> str:
        return f"namespace={promql_string(self.namespace)},pod=~{promql_string(self.pod_regex)}"


@dataclass(frozen=True, slots=True)
class TimeRange:
    """[start, end] in Unix seconds."""

    start: float
    end: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.start) and math.isfinite(self.end)) or self.end <= self.start:
            raise UserInputError("", "end", self.end, f"must be after start ({self.start})")

    @property
    def seconds(self) -> float:
        return self.end - self.start

    def range_selector(self) -> str:
        return f"[{max(1, round(self.seconds * 1000))}ms] @ {self.end:.3f}"


@dataclass(frozen=True, slots=True)
class QueryPlan:
    """The instant queries (all evaluated at `time_range.end`) for one run."""

    pods: PodSelector
    time_range: TimeRange

    def _window(self, metric: str, extra: str = "") -> str:
        return f"{metric}{{{self.pods.matchers()}{extra}}}{self.time_range.range_selector()}"

    def cost_by_component(self) -> str:
        return f"sum by (component) (increase({self._window(COST)}))"

    def gpu_seconds(self) -> str:
        return f"sum(increase({self._window(SECONDS)}))"

    def pod_labels(self) -> str:
        return f"group by (uuid, team, model, node_instance_type) (last_over_time({self._window(COST)}))"

    def gpu_info(self, uuids: Sequence[str]) -> str:
        return self._device_query(GPU_INFO, "gpu_model", uuids)

    def gpu_pricing(self, uuids: Sequence[str]) -> str:
        return self._device_query(GPU_PRICE, "pricing", uuids)

    def _device_query(self, metric: str, label: str, uuids: Sequence[str]) -> str:
        regex = "|".join(_regex_literal(uuid) for uuid in sorted(set(uuids)))
        selector = f"{metric}{{uuid=~{promql_string(regex)}}}{self.time_range.range_selector()}"
        return f"group by (uuid, {label}) (last_over_time({selector}))"


@dataclass(frozen=True, slots=True)
class RunLabels:
    """What the pods' series say about the run: devices and workload labels."""

    uuids: tuple[str, ...]
    team: str | None
    model: str | None
    instance_type: str | None


@dataclass(frozen=True, slots=True)
class TrainingCost:
    """The run's GPU cost over its time range, ready to log."""

    time_range: TimeRange
    active_cost_usd: float
    idle_cost_usd: float
    gpu_seconds: float
    num_gpus: int
    gpu_model: str | None
    pricing: str | None
    instance_type: str | None
    team: str | None
    model: str | None
    epochs: int | None = None

    @property
    def total_cost_usd(self) -> float:
        return self.active_cost_usd + self.idle_cost_usd

    @property
    def gpu_hours(self) -> float:
        return self.gpu_seconds / 3600

    @property
    def duration_minutes(self) -> float:
        return self.time_range.seconds / 60

    @property
    def gpu_efficiency(self) -> float | None:
        """Share of the cost that paid for busy GPU time (active / total)."""
        total = self.total_cost_usd
        return self.active_cost_usd / total if total > 0 else None

    @property
    def cost_per_epoch(self) -> float | None:
        return self.total_cost_usd / self.epochs if self.epochs else None

    def metrics(self) -> dict[str, float]:
        values: dict[str, float | None] = {
            "training_cost_usd": self.total_cost_usd,
            "idle_cost_usd": self.idle_cost_usd,
            "gpu_hours": self.gpu_hours,
            "duration_minutes": self.duration_minutes,
            "gpu_efficiency": self.gpu_efficiency,
            "cost_per_epoch": self.cost_per_epoch,
        }
        return {name: value for name, value in values.items() if value is not None}

    def params(self) -> dict[str, str]:
        values = {
            "instance_type": self.instance_type,
            "gpu_model": self.gpu_model,
            "num_gpus": str(self.num_gpus),
            "pricing": self.pricing,
        }
        return {name: value for name, value in values.items() if value}

    def tags(self) -> dict[str, str]:
        values = {"team": self.team, "model": self.model}
        return {name: value for name, value in values.items() if value}


def run_labels(series: Sequence[Sample]) -> RunLabels:
    if not series:
        raise NoData("no gpucost_container_gpu_cost_usd_total series for these pods in this time range")

    uuids = tuple(sorted({s.labels["uuid"] for s in series if s.labels.get("uuid")}))
    return RunLabels(
        uuids,
        joined_label(series, "team"),
        joined_label(series, "model"),
        joined_label(series, "node_instance_type"),
    )


def joined_label(series: Sequence[Sample], label: str) -> str | None:
    values = sorted({s.labels[label] for s in series if s.labels.get(label)})
    return ",".join(values) or None


def summarize(
    time_range: TimeRange,
    *,
    cost_by_component: Sequence[Sample],
    gpu_seconds: Sequence[Sample],
    labels: RunLabels,
    gpu_info: Sequence[Sample],
    gpu_pricing: Sequence[Sample],
    epochs: int | None = None,
    instance_type: str | None = None,
) -> TrainingCost:
    """Combine the parsed answers of a `QueryPlan` into one `TrainingCost`."""
    by_component = {s.labels.get("component", ""): s.value for s in cost_by_component}
    return TrainingCost(
        time_range=time_range,
        active_cost_usd=by_component.get("active", 0.0),
        idle_cost_usd=by_component.get("idle", 0.0),
        gpu_seconds=sum(s.value for s in gpu_seconds),
        num_gpus=len(labels.uuids),
        gpu_model=joined_label(gpu_info, "gpu_model"),
        pricing=joined_label(gpu_pricing, "pricing"),
        instance_type=instance_type or labels.instance_type,
        team=labels.team,
        model=labels.model,
        epochs=epochs,
    )


@dataclass(frozen=True, slots=True)
class JobRangePlan:
    """Queries that find a finished Job's time range: its cost series' first and last sample.

    `timestamp()` of a selector is the sample's own time, so the last sample is
    exact; the first is found within `step` and then read from the raw samples.
    The subquery only evaluates at multiples of `step`, so samples newer than the
    last step are read with a plain instant query (`latest_sample`).
    """

    pods: PodSelector
    lookback_seconds: int = 7 * 86400
    step_seconds: int = 60

    def _timestamps(self, fn: str, now: float) -> str:
        inner = f"timestamp({COST}{{{self.pods.matchers()}}})"
        return f"{fn}({fn}_over_time({inner}[{self.lookback_seconds}s:{self.step_seconds}s] @ {now:.3f}))"

    def first_sample_coarse(self, now: float) -> str:
        return self._timestamps("min", now)

    def last_sample(self, now: float) -> str:
        return self._timestamps("max", now)

    def latest_sample(self, now: float) -> str:
        return f"max(timestamp({COST}{{{self.pods.matchers()}}} @ {now:.3f}))"

    def raw_samples_before(self, at: float) -> str:
        return f"{COST}{{{self.pods.matchers()}}}[{self.step_seconds + 1}s] @ {at:.3f}"

