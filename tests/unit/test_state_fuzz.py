"""Whatever is in the checkpoint file, the exporter starts: a valid restore, or the file moved aside with one warning.

A checkpoint that crashes the reader would crash the exporter on every start
(CrashLoopBackOff until someone deletes the file), so the reader is fuzzed with
random bytes, random JSON documents, mutations of a valid checkpoint and deep
nesting.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpucost.engine.ledger import Ledger
from gpucost.engine.split import DeviceTick, Holder, split_device_cost
from gpucost.model import ContainerRef
from gpucost.state import StateFile

LABELS = ("team", "model")
JOB = ContainerRef("ml", "job-1", "main")
MAX_COUNTER = 1e12


def _valid_state() -> dict[str, Any]:
    ledger = Ledger(LABELS, retention_seconds=600)
    cost = split_device_cost(DeviceTick("GPU-a", 3600.0, 10, 0.5, [Holder(JOB, 1.0)]))
    ledger.record(cost, {JOB: ("research", "llama")}, 100.0)
    ledger.add_energy("GPU-a", 42.0)
    ledger.mark_present(["GPU-a"], 100.0)
    return ledger.to_state(123.0, node_name="node-a")


def _valid_v1_state() -> dict[str, Any]:
    """What version 1 of the exporter wrote (no owner, no GPU last-seen times)."""
    return {
        "format": "gpucost-ledger", "version": 1, "last_tick": 123.0, "workload_label_names": ["team", "model"],
        "gpus": {"GPU-a": [10.0, 5.0, 5.0, 42.0]},
        "containers": [["ml", "job-1", "main", "GPU-a", ["research", "llama"], 2.5, 2.5, 10.0, 100.0]],
        "workloads": [["ml", ["research", "llama"], 2.5, 2.5]],
    }


class _Warnings(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@contextmanager
def _state_warnings() -> Iterator[list[str]]:
    handler = _Warnings()
    logger = logging.getLogger("gpucost.state")
    logger.addHandler(handler)
    try:
        yield handler.lines
    finally:
        logger.removeHandler(handler)


def _assert_restored_or_moved_aside(directory: Path, content: bytes) -> None:
    """The reader's one contract: never an exception; a usable restore, or one warning and the file aside."""
    path = directory / "state.json"
    path.write_bytes(content)
    with _state_warnings() as warnings:
        restored = StateFile(path, node_name="node-a").load(LABELS, 600)
    if restored is None:
        assert len(warnings) == 1, warnings
        assert not path.exists()
        (moved,) = directory.glob("state.json.corrupt-*")
        assert moved.read_bytes() == content
        return
    ledger, last_tick = restored
    assert warnings == []
    assert math.isfinite(last_tick)
    snapshot = ledger.snapshot()
    numbers = [last_tick]
    for gpu in snapshot.gpus.values():
        numbers += [gpu.cost_usd, gpu.allocated_usd, gpu.unallocated_usd, gpu.energy_joules]
    for counters in snapshot.containers.values():
        numbers += [counters.active_usd, counters.idle_usd, counters.gpu_seconds, counters.last_update]
    for key in snapshot.containers:
        assert all(isinstance(v, str) for v in key.workload) and len(key.workload) == len(LABELS)
    for totals in snapshot.workloads.values():
        numbers += [totals.active_usd, totals.idle_usd]
    assert all(math.isfinite(n) and 0.0 <= n <= MAX_COUNTER for n in numbers), numbers
    json.dumps(ledger.to_state(last_tick, node_name="node-a"), allow_nan=False)
    ledger.expire(now=last_tick)


def _moved_aside_with_one_warning(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "state.json"
    path.write_bytes(content)
    with _state_warnings() as warnings:
        assert StateFile(path).load(LABELS, 600) is None
    assert len(warnings) == 1, warnings
    assert not path.exists()
    (moved,) = tmp_path.glob("state.json.corrupt-*")
    assert moved.read_bytes() == content


def _with(**changes: Any) -> bytes:
    state = _valid_state()
    state.update(changes)
    return json.dumps(state).encode()


CORRUPT = {
    "random_bytes": b"\xff\xfe\x00\x9c garbage \xc3\x28",
    "label_names_a_number": _with(workload_label_names=5),
    "label_names_null": _with(workload_label_names=None),
    "label_names_not_strings": _with(workload_label_names=[1, 2]),
    "deep_nesting": b"[" * 200_000,
    "deep_nesting_inside_a_field": _with(node=None).replace(b'"node":null', b'"node":' + b"[" * 200_000),
    "gpus_a_list": _with(gpus=[]),
    "gpu_counters_too_few": _with(gpus={"GPU-a": [1.0]}),
    "gpu_counter_a_string": _with(gpus={"GPU-a": ["1", 0, 0, 0, 0]}),
    "gpu_counter_a_bool": _with(gpus={"GPU-a": [True, 0, 0, 0, 0]}),
    "gpu_counter_nan": b'{"format":"gpucost-ledger","version":1,"last_tick":1,"workload_label_names":[],'
                       b'"gpus":{"GPU-a":[NaN,0,0,0]},"containers":[],"workloads":[]}',
    "gpu_counter_infinity": b'{"format":"gpucost-ledger","version":1,"last_tick":1,"workload_label_names":[],'
                            b'"gpus":{"GPU-a":[Infinity,0,0,0]},"containers":[],"workloads":[]}',
    "gpu_counter_absurd": _with(gpus={"GPU-a": [2e12, 0, 0, 0, 0]}),
    "gpu_counter_huge_integer": _with(gpus={"GPU-a": [10**400, 0, 0, 0, 0]}),
    "container_seconds_absurd": _with(containers=[["ml", "p", "c", "GPU-a", ["", ""], 0, 0, 5e12, 0]]),
    "container_negative": _with(containers=[["ml", "p", "c", "GPU-a", ["", ""], -1, 0, 0, 0]]),
    "container_name_a_number": _with(containers=[["ml", 7, "c", "GPU-a", ["", ""], 0, 0, 0, 0]]),
    "container_workload_a_string": _with(containers=[["ml", "p", "c", "GPU-a", "ab", 0, 0, 0, 0]]),
    "container_workload_wrong_length": _with(containers=[["ml", "p", "c", "GPU-a", ["x"], 0, 0, 0, 0]]),
    "workload_row_a_dict": _with(workloads=[{"ns": "ml"}]),
    "last_tick_null": _with(last_tick=None),
    "last_tick_a_string": _with(last_tick="123"),
    "node_a_number": _with(node=5),
    "gpus_present_a_string": _with(gpus_present="GPU-a"),
    "top_level_a_list": b"[1, 2, 3]",
    "huge_number_literal": b"1" * 5000,
}


@pytest.mark.parametrize("case", sorted(CORRUPT))
def test_a_malformed_checkpoint_is_moved_aside_with_one_warning(tmp_path: Path, case: str) -> None:
    _moved_aside_with_one_warning(tmp_path, CORRUPT[case])


@pytest.mark.parametrize("state", [_valid_state, _valid_v1_state])
def test_a_valid_checkpoint_of_either_version_restores(tmp_path: Path, state: Any) -> None:
    path = tmp_path / "state.json"
    path.write_text(json.dumps(state()))
    restored = StateFile(path, node_name="node-a").load(LABELS, 600)
    assert restored is not None
    ledger, last_tick = restored
    assert last_tick == 123.0
    assert ledger.gpus["GPU-a"].cost_usd == pytest.approx(10.0)
    assert ledger.gpus["GPU-a"].energy_joules == 42.0
    (key,) = ledger.containers
    assert key.workload == ("research", "llama")


# --- fuzzing ------------------------------------------------------------------------------------------

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=20,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON document, as the keys and indexes leading to it."""
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _paths(child, (*prefix, index))
    return found


def _replace(document: Any, path: tuple[Any, ...], new: Any, delete: bool) -> Any:
    if not path:
        return new
    parent = document
    for step in path[:-1]:
        parent = parent[step]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = new
    return document


@FUZZ
@given(st.binary(max_size=600))
def test_random_bytes_never_crash_the_reader(content: bytes) -> None:
    with tempfile.TemporaryDirectory() as directory:
        _assert_restored_or_moved_aside(Path(directory), content)


@FUZZ
@given(json_values)
def test_random_json_documents_never_crash_the_reader(document: Any) -> None:
    with tempfile.TemporaryDirectory() as directory:
        _assert_restored_or_moved_aside(Path(directory), json.dumps(document).encode())


@FUZZ
@given(st.data(), st.sampled_from([_valid_state, _valid_v1_state]))
def test_mutations_of_a_valid_checkpoint_never_crash_the_reader(data: st.DataObject, make: Any) -> None:
    document = make()
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        path = data.draw(st.sampled_from(_paths(document)), label="path")
        delete = bool(path) and data.draw(st.booleans(), label="delete")
        document = _replace(copy.deepcopy(document), path, data.draw(json_values, label="value"), delete)
    with tempfile.TemporaryDirectory() as directory:
        _assert_restored_or_moved_aside(Path(directory), json.dumps(document).encode())


@FUZZ
@given(st.integers(500, 300_000), st.sampled_from(["[", '{"a":', '{"gpus":']))
def test_deep_nesting_never_crashes_the_reader(depth: int, opener: str) -> None:
    with tempfile.TemporaryDirectory() as directory:
        _assert_restored_or_moved_aside(Path(directory), (opener * depth).encode())
