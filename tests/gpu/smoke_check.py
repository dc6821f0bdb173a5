"""Check a running gpucost exporter on a real GPU machine by scraping /metrics.

Standard library only: it runs under a bare python3 on the GPU machine.
Scrapes twice `--interval` seconds apart, times a few more scrapes, and checks:

- every device in gpucost_gpu_info has a uuid and a gpu_model;
- every device's price is resolved, or explicitly `pricing="unpriced"`;
- gpucost_gpu_utilization_ratio is within 0..1;
- gpucost_gpu_energy_joules_total increases (where NVML reports energy);
- gpucost_gpu_cost_usd_total increases for priced devices;
- conservation: container cost (all components) + unallocated == device cost, per uuid;
- the median scrape takes under --max-scrape-ms.

Prints one line per check and exits 0 when all pass, 1 otherwise.
The metric names mirror exporter/gpucost/metrics/names.py (a unit test keeps them equal).
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

GPU_INFO = "gpucost_gpu_info"
GPU_PRICE = "gpucost_gpu_price_usd_per_hour"
GPU_UTILIZATION = "gpucost_gpu_utilization_ratio"
GPU_ENERGY = "gpucost_gpu_energy_joules_total"
GPU_COST = "gpucost_gpu_cost_usd_total"
GPU_UNALLOCATED_COST = "gpucost_gpu_unallocated_cost_usd_total"
CONTAINER_COST = "gpucost_container_gpu_cost_usd_total"
PRICING_KINDS = ("on_demand", "spot", "commitment", "on_prem", "unpriced")
CONSERVATION_RELATIVE_TOLERANCE = 1e-6


@dataclass(frozen=True)
class Series:
    name: str
    labels: Mapping[str, str]
    value: float


@dataclass(frozen=True)
class CheckResult:
    name: str
    passed: bool
    detail: str


class ExpositionError(ValueError):
    """A line of the text exposition could not be parsed."""


@dataclass
class Snapshot:
    """One scrape, indexed by metric name."""

    series: list[Series] = field(default_factory=list)

    def named(self, name: str) -> list[Series]:
        return [one for one in self.series if one.name == name]

    def by_uuid(self, name: str) -> dict[str, float]:
        return {one.labels.get("uuid", ""): one.value for one in self.named(name)}


# -- parsing ----------------------------------------------------------------------


def parse_exposition(text: str) -> Snapshot:
    """Parse the Prometheus text format (0.0.4): comments skipped, label escapes decoded."""
    snapshot = Snapshot()
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        try:
            snapshot.series.append(_parse_line(stripped))
        except (ValueError, IndexError) as error:
            raise ExpositionError(f"line {number}: {error}: {line!r}") from error
    return snapshot


def _parse_line(line: str) -> Series:
    brace = line.find("{")
    space = line.find(" ")
    if brace != -1 and (space == -1 or brace < space):
        name = line[:brace]
        labels, rest = _parse_labels(line, brace + 1)
    else:
        name, rest = line[:space], line[space:]
        labels = {}
    fields = rest.split()
    if not name or not fields:
        raise ValueError("missing metric name or value")
    return Series(name=name, labels=labels, value=_parse_value(fields[0]))


def _parse_labels(line: str, position: int) -> tuple[dict[str, str], str]:
    labels: dict[str, str] = {}
    while True:
        while line[position] in " ,":
            position += 1
        if line[position] == "}":
            return labels, line[position + 1 :]
        equals = line.index("=", position)
        key = line[position:equals].strip()
        if line[equals + 1] != '"':
            raise ValueError(f"label {key} value is not quoted")
        position = equals + 2
        value_chars: list[str] = []
        while line[position] != '"':
            if line[position] == "\\":
                escaped = line[position + 1]
                value_chars.append({"n": "\n", "\\": "\\", '"': '"'}.get(escaped, "\\" + escaped))
                position += 2
            else:
                value_chars.append(line[position])
                position += 1
        labels[key] = "".join(value_chars)
        position += 1


def _parse_value(text: str) -> float:
    special = {"+Inf": math.inf, "-Inf": -math.inf, "NaN": math.nan}
    return special[text] if text in special else float(text)


# -- checks --------------------------------------------------------------------------


def check_devices(snapshot: Snapshot) -> CheckResult:
    infos = snapshot.named(GPU_INFO)
    missing = [one.labels for one in infos if not one.labels.get("uuid") or not one.labels.get("gpu_model")]
    passed = bool(infos) and not missing
    detail = f"{len(infos)} devices" + (f"; without uuid or gpu_model: {missing}" if missing else "")
    return CheckResult("devices listed with uuid and gpu_model", passed, detail)


def priced_uuids(snapshot: Snapshot) -> set[str]:
    return {one.labels["uuid"] for one in snapshot.named(GPU_PRICE) if one.labels.get("pricing") != "unpriced"}


def check_prices(snapshot: Snapshot) -> CheckResult:
    uuids = {one.labels["uuid"] for one in snapshot.named(GPU_INFO) if one.labels.get("uuid")}
    prices = {one.labels.get("uuid", ""): one for one in snapshot.named(GPU_PRICE)}
    problems = []
    for uuid in sorted(uuids):
        price = prices.get(uuid)
        if price is None:
            problems.append(f"{uuid}: no price series")
        elif price.labels.get("pricing") not in PRICING_KINDS:
            problems.append(f"{uuid}: pricing={price.labels.get('pricing')!r}")
        elif price.labels["pricing"] != "unpriced" and not price.value > 0:
            problems.append(f"{uuid}: priced at {price.value}")
    kinds = sorted({one.labels.get("pricing", "") for one in prices.values()})
    return CheckResult("price resolved or explicitly unpriced", not problems, "; ".join(problems) or f"pricing {kinds}")


def check_utilization(snapshot: Snapshot) -> CheckResult:
    values = snapshot.by_uuid(GPU_UTILIZATION)
    outside = {uuid: value for uuid, value in values.items() if not 0.0 <= value <= 1.0}
    passed = bool(values) and not outside
    detail = (
        f"out of range: {outside}" if outside else f"{len(values)} series, max {max(values.values(), default=0):.3f}"
    )
    return CheckResult("utilization within 0..1", passed, detail)


def check_increasing(first: Snapshot, second: Snapshot, name: str, uuids: Iterable[str] | None = None) -> CheckResult:
    before, after = first.by_uuid(name), second.by_uuid(name)
    wanted = set(before) & set(after) if uuids is None else set(uuids)
    flat = sorted(uuid for uuid in wanted if not after.get(uuid, -math.inf) > before.get(uuid, math.inf))
    passed = bool(wanted) and not flat
    if not wanted:
        detail = "no series to compare"
    elif flat:
        detail = f"not increasing: {flat}"
    else:
        detail = f"{len(wanted)} series increased"
    return CheckResult(f"{name} increasing", passed, detail)


def check_conservation(snapshot: Snapshot) -> CheckResult:
    container_cost: dict[str, float] = {}
    for one in snapshot.named(CONTAINER_COST):
        uuid = one.labels.get("uuid", "")
        container_cost[uuid] = container_cost.get(uuid, 0.0) + one.value
    unallocated = snapshot.by_uuid(GPU_UNALLOCATED_COST)
    problems = []
    gpu_cost = snapshot.by_uuid(GPU_COST)
    for uuid, total in sorted(gpu_cost.items()):
        attributed = container_cost.get(uuid, 0.0) + unallocated.get(uuid, 0.0)
        if abs(attributed - total) > CONSERVATION_RELATIVE_TOLERANCE * max(abs(total), 1e-9):
            problems.append(f"{uuid}: containers+unallocated {attributed!r} != device {total!r}")
    strays = sorted(set(container_cost) - set(gpu_cost))
    problems.extend(f"{uuid}: container cost for a device without a cost series" for uuid in strays)
    passed = bool(gpu_cost) and not problems
    return CheckResult("conservation per device", passed, "; ".join(problems) or f"{len(gpu_cost)} devices balance")


def check_scrape_time(durations_seconds: Sequence[float], max_milliseconds: float) -> CheckResult:
    median_ms = statistics.median(durations_seconds) * 1000 if durations_seconds else math.inf
    return CheckResult(
        f"median scrape under {max_milliseconds:g} ms",
        median_ms < max_milliseconds,
        f"median {median_ms:.2f} ms over {len(durations_seconds)} scrapes",
    )


def run_checks(
    first: Snapshot, second: Snapshot, scrape_durations: Sequence[float], max_scrape_ms: float = 10.0
) -> list[CheckResult]:
    # NVML measures energy for whole boards only: a MIG slice's counter stays flat.
    mig_slices = {one.labels["uuid"] for one in second.named(GPU_INFO) if one.labels.get("parent_uuid")}
    with_energy = set(first.by_uuid(GPU_ENERGY)) & set(second.by_uuid(GPU_ENERGY))
    energy = check_increasing(first, second, GPU_ENERGY, with_energy - mig_slices)
    if energy.detail == "no series to compare":
        energy = CheckResult(energy.name, True, "NVML reports no energy counter on these devices")
    # A MIG parent's own cost is its uncarved capacity only, which may be none.
    mig_parents = {one.labels.get("parent_uuid", "") for one in second.named(GPU_INFO)} - {""}
    priced = priced_uuids(second) - mig_parents
    cost = check_increasing(first, second, GPU_COST, priced)
    if not priced:
        cost = CheckResult(cost.name, True, "every device is unpriced: no cost to count")
    return [
        check_devices(second),
        check_prices(second),
        check_utilization(second),
        energy,
        cost,
        check_conservation(second),
        check_scrape_time(scrape_durations, max_scrape_ms),
    ]


# -- scraping ------------------------------------------------------------------------


def scrape(url: str, timeout: float = 5.0) -> tuple[str, float]:
    began = time.perf_counter()
    with urllib.request.urlopen(url, timeout=timeout) as response:
        body = response.read().decode("utf-8")
    return body, time.perf_counter() - began


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="the exporter's /metrics URL")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between the two compared scrapes")
    parser.add_argument("--timed-scrapes", type=int, default=7, help="extra scrapes timed for the median")
    parser.add_argument("--max-scrape-ms", type=float, default=10.0)
    options = parser.parse_args(argv)

    first_text, first_duration = scrape(options.url)
    time.sleep(options.interval)
    second_text, second_duration = scrape(options.url)
    durations = [first_duration, second_duration]
    for _ in range(options.timed_scrapes):
        durations.append(scrape(options.url)[1])
    results = run_checks(parse_exposition(first_text), parse_exposition(second_text), durations, options.max_scrape_ms)
    for result in results:
        print(f"{'PASS' if result.passed else 'FAIL'}  {result.name}: {result.detail}")
    failed = [result for result in results if not result.passed]
    print(f"smoke: {len(results) - len(failed)}/{len(results)} checks passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
