"""The ledger's counters only grow, survive restarts through the state file, and expire on time."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gpucost.engine.ledger import Ledger
from gpucost.engine.node_ledger import NodeLedgerSnapshot
from gpucost.engine.node_tick import NodeTickInputs, split_node_tick
from gpucost.engine.split import DeviceTick, Holder, split_device_cost
from gpucost.model import ContainerRef, ContainerResources, NodeResourceView
from gpucost.state import StateFile

LABELS = ("team", "model")
JOB = ContainerRef("ml", "job-1", "main")


def _ledger_with_one_tick(now: float = 100.0) -> Ledger:
    ledger = Ledger(LABELS, retention_seconds=600)
    cost = split_device_cost(DeviceTick("GPU-a", 3600.0, 10, 0.5, [Holder(JOB, 1.0)]))
    ledger.record(cost, {JOB: ("research", "llama")}, now)
    return ledger


def test_allocated_plus_unallocated_equals_cost_per_gpu_after_each_record() -> None:
    ledger = _ledger_with_one_tick()
    ledger.record(split_device_cost(DeviceTick("GPU-a", 3600.0, 5, 0.0, [])), {}, 105.0)
    gpu = ledger.gpus["GPU-a"]
    assert gpu.cost_usd == pytest.approx(15.0)
    assert gpu.allocated_usd + gpu.unallocated_usd == pytest.approx(gpu.cost_usd, rel=1e-12)


def test_container_series_expire_after_retention_but_workload_and_gpu_totals_stay() -> None:
    ledger = _ledger_with_one_tick(now=100.0)
    assert ledger.expire(now=650.0) == 0
    assert ledger.expire(now=701.0) == 1
    assert not ledger.containers
    assert sum(w.active_usd + w.idle_usd for w in ledger.workloads.values()) == pytest.approx(10.0)
    assert ledger.gpus["GPU-a"].allocated_usd == pytest.approx(10.0)


def test_missing_workload_values_become_empty_strings() -> None:
    ledger = Ledger(LABELS)
    ledger.record(split_device_cost(DeviceTick("GPU-a", 3600.0, 1, 1.0, [Holder(JOB, 1.0)])), {}, 1.0)
    (key,) = ledger.containers
    assert key.workload == ("", "")


def test_state_file_round_trip_restores_every_counter(tmp_path: Path) -> None:
    ledger = _ledger_with_one_tick()
    ledger.add_energy("GPU-a", 42.0)
    state = StateFile(tmp_path / "state.json")
    state.save(ledger, last_tick=123.5)
    restored = state.load(LABELS, 600)
    assert restored is not None
    again, last_tick = restored
    assert last_tick == 123.5
    assert again.snapshot() == ledger.snapshot()


def test_a_label_name_change_carries_values_by_name(tmp_path: Path) -> None:
    state = StateFile(tmp_path / "state.json")
    state.save(_ledger_with_one_tick(), last_tick=1.0)
    restored = state.load(("model", "cost_center"), 600)
    assert restored is not None
    (key,) = restored[0].containers
    assert key.workload == ("llama", "")


@pytest.mark.parametrize(
    "content",
    ["{not json", json.dumps({"format": "something-else"}), json.dumps({"format": "gpucost-ledger", "version": 99}),
     json.dumps({"format": "gpucost-ledger", "version": 1, "last_tick": 1, "gpus": {"GPU-a": [-1, 0, 0, 0]},
                 "containers": [], "workloads": []}),
     "\udcff".encode("utf-8", "surrogateescape").decode("latin-1")],
)
def test_corrupt_or_foreign_state_file_is_moved_aside_never_fatal(tmp_path: Path, content: str) -> None:
    path = tmp_path / "state.json"
    path.write_text(content)
    assert StateFile(path).load(LABELS, 600) is None
    assert not path.exists()
    moved = list(tmp_path.glob("state.json.corrupt-*"))
    assert len(moved) == 1
    assert moved[0].read_text() == content


def test_missing_state_file_starts_from_zero(tmp_path: Path) -> None:
    assert StateFile(tmp_path / "absent.json").load(LABELS, 600) is None


def test_save_is_atomic_and_leaves_no_temp_files(tmp_path: Path) -> None:
    state = StateFile(tmp_path / "sub" / "state.json")
    state.save(_ledger_with_one_tick(), 1.0)
    state.save(_ledger_with_one_tick(), 2.0)
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["state.json"]


def test_a_gpu_that_is_gone_expires_after_the_retention_and_present_ones_stay() -> None:
    ledger = Ledger(LABELS, retention_seconds=600)
    for uuid in ("GPU-a", "GPU-b"):
        ledger.record(split_device_cost(DeviceTick(uuid, 3600.0, 10, 0.5, [])), {}, 100.0)
        ledger.add_energy(uuid, 5.0)
    ledger.mark_present(["GPU-a", "GPU-b"], 100.0)
    ledger.mark_present(["GPU-a"], 200.0)  # GPU-b was removed from the node
    ledger.expire(now=650.0)
    assert sorted(ledger.gpus) == ["GPU-a", "GPU-b"], "scrapes still need the gone GPU's final values"
    ledger.mark_present(["GPU-a"], 701.0)
    ledger.expire(now=701.0)
    assert sorted(ledger.gpus) == ["GPU-a"]


def test_gpu_presence_survives_a_restart_so_a_gone_gpu_still_expires(tmp_path: Path) -> None:
    ledger = Ledger(LABELS, retention_seconds=600)
    for uuid in ("GPU-a", "GPU-b"):
        ledger.record(split_device_cost(DeviceTick(uuid, 3600.0, 10, 0.5, [])), {}, 100.0)
    ledger.mark_present(["GPU-a"], 100.0)
    state = StateFile(tmp_path / "state.json")
    state.save(ledger, last_tick=100.0)
    restored = state.load(LABELS, 600)
    assert restored is not None
    again = restored[0]
    assert again.snapshot() == ledger.snapshot()
    again.expire(now=701.0)
    assert sorted(again.gpus) == ["GPU-a"]


# --- whole-node counters (state version 3) ------------------------------------------------------------

WEB = ContainerRef("shop", "web-1", "server")


def _ledger_with_node_costs(now: float = 100.0) -> Ledger:
    ledger = _ledger_with_one_tick(now)
    gpu = split_device_cost(DeviceTick("GPU-a", 3600.0, 10, 0.5, [Holder(JOB, 1.0)]))
    claims = NodeResourceView({"cpu": 8.0, "memory": 64e9}, (
        ContainerResources(JOB, requests={"cpu": 2.0, "memory": 16e9}),
        ContainerResources(WEB, requests={"cpu": 1.0}, usage={"cpu": 3.0, "memory": 1e9}),
    ))
    prices = {"cpu": 720.0, "memory": 360.0, "storage": 0.0}
    costs = split_node_tick(10, NodeTickInputs(prices, claims), [gpu])
    ledger.record_node(costs, {JOB: ("research", "llama"), WEB: ("shop", "")}, now)
    return ledger


def test_node_counters_add_up_per_resource_and_container_series_expire_but_workload_and_node_stay() -> None:
    ledger = _ledger_with_node_costs(now=100.0)
    node = ledger.node
    assert node.resources["cpu"].cost_usd == pytest.approx(2.0)
    assert node.resources["cpu"].unallocated_usd == pytest.approx(2.0 * 3 / 8)  # 2 + max(1, 3) of 8 cores claimed
    assert node.resources["gpu"].cost_usd == pytest.approx(10.0)
    ledger.expire(now=701.0)
    assert not ledger.node.containers
    for resource, counters in ledger.node.resources.items():
        workloads = sum(cost for key, cost in ledger.node.workloads.items() if key.resource == resource)
        assert workloads + counters.unallocated_usd == pytest.approx(counters.cost_usd), resource


def test_state_file_round_trip_restores_the_node_counters(tmp_path: Path) -> None:
    ledger = _ledger_with_node_costs()
    state = StateFile(tmp_path / "state.json")
    state.save(ledger, last_tick=123.5)
    restored = state.load(LABELS, 600)
    assert restored is not None
    assert restored[0].snapshot() == ledger.snapshot()
    assert restored[0].node.resources["memory"].cost_usd > 0.0


def test_a_version_2_state_file_restores_with_the_node_counters_at_zero(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text(json.dumps({
        "format": "gpucost-ledger", "version": 2, "node": "", "gpus_present": ["GPU-a"], "last_tick": 123.0,
        "workload_label_names": ["team", "model"], "gpus": {"GPU-a": [10.0, 5.0, 5.0, 42.0, 100.0]},
        "containers": [["ml", "job-1", "main", "GPU-a", ["research", "llama"], 2.5, 2.5, 10.0, 100.0]],
        "workloads": [["ml", ["research", "llama"], 2.5, 2.5]],
    }))
    restored = StateFile(path).load(LABELS, 600)
    assert restored is not None
    ledger, last_tick = restored
    assert last_tick == 123.0 and ledger.gpus["GPU-a"].cost_usd == 10.0
    assert ledger.node.snapshot() == NodeLedgerSnapshot()
    ledger.record_node(split_node_tick(1, NodeTickInputs({"cpu": 3600.0}), []), {}, 124.0)
    assert ledger.node.resources["cpu"].cost_usd == pytest.approx(1.0)


def test_a_version_3_state_file_naming_an_unknown_resource_is_moved_aside(tmp_path: Path) -> None:
    document = _ledger_with_node_costs().to_state(1.0)
    document["node_costs"]["fpga"] = [1.0, 0.0]
    path = tmp_path / "state.json"
    path.write_text(json.dumps(document))
    assert StateFile(path).load(LABELS, 600) is None
    assert list(tmp_path.glob("state.json.corrupt-*"))


def test_node_container_series_carry_their_workload_values_across_a_label_change(tmp_path: Path) -> None:
    state = StateFile(tmp_path / "state.json")
    state.save(_ledger_with_node_costs(), last_tick=1.0)
    restored = state.load(("model",), 600)
    assert restored is not None
    assert {key.workload for key in restored[0].node.containers if key.container == JOB} == {("llama",)}
