"""The GPU smoke check's parser and checks, on text expositions shaped like the exporter's."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from gpucost.metrics import names

SMOKE_CHECK = Path(__file__).resolve().parents[1] / "gpu" / "smoke_check.py"


def load_smoke_check() -> ModuleType:
    spec = importlib.util.spec_from_file_location("smoke_check", SMOKE_CHECK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["smoke_check"] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


smoke = load_smoke_check()

GPU_A = "GPU-0a6b3c1e-8d2f-4e57-9a10-3b7c5d9e0f10"
GPU_B = "GPU-1b7c4d2f-9e30-4f68-8b21-4c8d6e0f1a21"
TRAINER = 'namespace="research",pod="llama-0",container="trainer"'
WORKLOAD = 'team="research",model="llama \\"70b\\"",model_version="",cost_center="",business_unit=""'


def exposition(seconds: float, *, unallocated_b: float | None = None, utilization_a: float = 0.9) -> str:
    """Two priced GPUs; A held by one training container, B idle; cost grows $3/h."""
    cost = 3.0 * seconds / 3600
    active, idle = cost * 0.9, cost * 0.1
    unallocated = cost if unallocated_b is None else unallocated_b
    return f"""\
# HELP gpucost_gpu_info GPU or MIG device seen by NVML; always 1.
# TYPE gpucost_gpu_info gauge
gpucost_gpu_info{{uuid="{GPU_A}",gpu="0",gpu_model="NVIDIA H200",parent_uuid="",mig_profile=""}} 1.0
gpucost_gpu_info{{uuid="{GPU_B}",gpu="1",gpu_model="NVIDIA H200",parent_uuid="",mig_profile=""}} 1.0
# TYPE gpucost_gpu_price_usd_per_hour gauge
gpucost_gpu_price_usd_per_hour{{uuid="{GPU_A}",pricing="on_demand"}} 3.0
gpucost_gpu_price_usd_per_hour{{uuid="{GPU_B}",pricing="on_demand"}} 3.0
gpucost_gpu_utilization_ratio{{uuid="{GPU_A}"}} {utilization_a}
gpucost_gpu_utilization_ratio{{uuid="{GPU_B}"}} 0.0
gpucost_gpu_energy_joules_total{{uuid="{GPU_A}"}} {1000 + 400 * seconds}
gpucost_gpu_energy_joules_total{{uuid="{GPU_B}"}} {500 + 70 * seconds}
gpucost_gpu_cost_usd_total{{uuid="{GPU_A}"}} {cost!r}
gpucost_gpu_cost_usd_total{{uuid="{GPU_B}"}} {cost!r}
gpucost_gpu_unallocated_cost_usd_total{{uuid="{GPU_A}"}} 0.0
gpucost_gpu_unallocated_cost_usd_total{{uuid="{GPU_B}"}} {unallocated!r}
gpucost_container_gpu_cost_usd_total{{{TRAINER},uuid="{GPU_A}",component="active",{WORKLOAD}}} {active!r}
gpucost_container_gpu_cost_usd_total{{{TRAINER},uuid="{GPU_A}",component="idle",{WORKLOAD}}} {idle!r}
gpucost_exporter_last_sample_timestamp_seconds 1.764e+09
"""


def results_by_name(results: list[object]) -> dict[str, object]:
    return {result.name: result for result in results}  # type: ignore[attr-defined]


def test_smoke_check_metric_names_match_the_exporter_metric_table() -> None:
    assert names.GPU_INFO.name == smoke.GPU_INFO
    assert names.GPU_PRICE.name == smoke.GPU_PRICE
    assert names.GPU_UTILIZATION.name == smoke.GPU_UTILIZATION
    assert names.GPU_ENERGY.name == smoke.GPU_ENERGY
    assert names.GPU_COST.name == smoke.GPU_COST
    assert names.GPU_UNALLOCATED_COST.name == smoke.GPU_UNALLOCATED_COST
    assert names.CONTAINER_COST.name == smoke.CONTAINER_COST
    assert "uuid" in names.CONTAINER_COST.labels and "gpu_model" in names.GPU_INFO.labels


def test_parser_reads_names_labels_escapes_and_values() -> None:
    snapshot = smoke.parse_exposition(exposition(60))
    containers = snapshot.named("gpucost_container_gpu_cost_usd_total")
    assert len(containers) == 2
    assert containers[0].labels["model"] == 'llama "70b"'
    assert containers[0].labels["uuid"] == GPU_A
    assert snapshot.named("gpucost_exporter_last_sample_timestamp_seconds")[0].value == 1.764e9
    assert snapshot.by_uuid("gpucost_gpu_utilization_ratio") == {GPU_A: 0.9, GPU_B: 0.0}


def test_parser_rejects_a_malformed_line_naming_its_number() -> None:
    with pytest.raises(smoke.ExpositionError, match="line 2"):
        smoke.parse_exposition('ok 1\nbroken{uuid="x} 1\n')


def test_a_healthy_exporter_passes_every_check() -> None:
    results = smoke.run_checks(
        smoke.parse_exposition(exposition(60)), smoke.parse_exposition(exposition(65)), [0.002, 0.003, 0.004]
    )
    assert [result.detail for result in results if not result.passed] == []
    assert len(results) == 7


def test_conservation_fails_when_unallocated_cost_is_missing() -> None:
    results = results_by_name(
        smoke.run_checks(
            smoke.parse_exposition(exposition(60)),
            smoke.parse_exposition(exposition(65, unallocated_b=0.0)),
            [0.001],
        )
    )
    conservation = results["conservation per device"]
    assert not conservation.passed  # type: ignore[attr-defined]
    assert GPU_B in conservation.detail  # type: ignore[attr-defined]


def test_cost_and_energy_must_increase_between_scrapes() -> None:
    same = smoke.parse_exposition(exposition(60))
    results = results_by_name(smoke.run_checks(same, same, [0.001]))
    assert not results["gpucost_gpu_energy_joules_total increasing"].passed  # type: ignore[attr-defined]
    assert not results["gpucost_gpu_cost_usd_total increasing"].passed  # type: ignore[attr-defined]


def test_unpriced_devices_pass_without_cost_growth_but_need_the_explicit_label() -> None:
    unpriced = exposition(60).replace('pricing="on_demand"} 3.0', 'pricing="unpriced"} 0.0')
    snapshot = smoke.parse_exposition(unpriced)
    results = results_by_name(smoke.run_checks(snapshot, snapshot, [0.001]))
    assert results["price resolved or explicitly unpriced"].passed  # type: ignore[attr-defined]
    assert results["gpucost_gpu_cost_usd_total increasing"].passed  # type: ignore[attr-defined]
    no_price = "\n".join(line for line in exposition(60).splitlines() if GPU_B not in line or "price" not in line)
    price_check = smoke.check_prices(smoke.parse_exposition(no_price))
    assert not price_check.passed and GPU_B in price_check.detail


def test_utilization_outside_zero_to_one_fails() -> None:
    results = results_by_name(
        smoke.run_checks(
            smoke.parse_exposition(exposition(60)),
            smoke.parse_exposition(exposition(65, utilization_a=1.7)),
            [0.001],
        )
    )
    assert not results["utilization within 0..1"].passed  # type: ignore[attr-defined]


def test_slow_scrapes_fail_on_the_median() -> None:
    assert smoke.check_scrape_time([0.004, 0.005, 0.030], 10.0).passed
    assert not smoke.check_scrape_time([0.004, 0.015, 0.030], 10.0).passed
    assert not smoke.check_scrape_time([], 10.0).passed


def test_an_empty_exposition_fails_the_device_check() -> None:
    assert not smoke.check_devices(smoke.parse_exposition("")).passed


def test_mig_slices_are_not_expected_to_count_energy_nor_mig_parents_cost() -> None:
    slice_uuid = "MIG-3a4b5c6d-7e8f-5091-a2b3-c4d5e6f70801"
    extra = (
        f'gpucost_gpu_info{{uuid="{slice_uuid}",gpu="0/mig2",gpu_model="NVIDIA H200",'
        f'parent_uuid="{GPU_A}",mig_profile="3g.71gb"}} 1.0\n'
        f'gpucost_gpu_energy_joules_total{{uuid="{slice_uuid}"}} 0.0\n'
    )
    frozen_parent_cost = 'gpucost_gpu_cost_usd_total{{uuid="{GPU_A}"}} {cost!r}'
    first = smoke.parse_exposition(exposition(60) + extra)
    later = exposition(65).replace(
        frozen_parent_cost.format(GPU_A=GPU_A, cost=3.0 * 65 / 3600),
        frozen_parent_cost.format(GPU_A=GPU_A, cost=3.0 * 60 / 3600),
    )
    results = results_by_name(smoke.run_checks(first, smoke.parse_exposition(later + extra), [0.001]))
    assert results["gpucost_gpu_energy_joules_total increasing"].passed  # type: ignore[attr-defined]
    assert results["gpucost_gpu_cost_usd_total increasing"].passed  # type: ignore[attr-defined]
