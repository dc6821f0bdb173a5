"""A checkpoint belongs to one exporter on one node: it says whose it is, is locked while in use,
and a foreign one is refused rather than exported forever."""

from __future__ import annotations

import json
import logging
import os
import stat
from pathlib import Path

import pytest

from gpucost.engine.ledger import STATE_VERSION, Ledger
from gpucost.engine.split import DeviceTick, Holder, split_device_cost
from gpucost.model import ContainerRef
from gpucost.state import StateFile, StateFileLocked

LABELS = ("team",)
JOB = ContainerRef("ml", "job-1", "main")


def _ledger() -> Ledger:
    ledger = Ledger(LABELS, retention_seconds=600)
    for uuid in ("GPU-a", "GPU-b"):
        ledger.record(split_device_cost(DeviceTick(uuid, 3600.0, 10, 0.5, [Holder(JOB, 1.0)])), {}, 100.0)
    ledger.mark_present(["GPU-a", "GPU-b"], 100.0)
    return ledger


def test_the_checkpoint_records_its_node_and_gpu_set(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    StateFile(path, node_name="node-a").save(_ledger(), 5.0)
    saved = json.loads(path.read_text())
    assert saved["version"] == STATE_VERSION
    assert saved["node"] == "node-a"
    assert saved["gpus_present"] == ["GPU-a", "GPU-b"]


def test_a_checkpoint_from_another_node_is_refused_with_one_line_and_moved_aside(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "state.json"
    StateFile(path, node_name="node-a").save(_ledger(), 5.0)
    content = path.read_text()
    with caplog.at_level(logging.WARNING, logger="gpucost.state"):
        assert StateFile(path, node_name="node-b").load(LABELS, 600) is None
    (line,) = [r.getMessage() for r in caplog.records if r.name == "gpucost.state"]
    assert "node-a" in line and "node-b" in line
    assert not path.exists()
    (moved,) = tmp_path.glob("state.json.corrupt-*")
    assert moved.read_text() == content


def test_the_owning_node_restores_its_own_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    StateFile(path, node_name="node-a").save(_ledger(), 5.0)
    restored = StateFile(path, node_name="node-a").load(LABELS, 600)
    assert restored is not None
    assert sorted(restored[0].gpus) == ["GPU-a", "GPU-b"]


def test_a_version_1_checkpoint_has_no_owner_and_is_restored_on_any_node(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text(json.dumps({
        "format": "gpucost-ledger", "version": 1, "last_tick": 50.0, "workload_label_names": ["team"],
        "gpus": {"GPU-a": [1.0, 1.0, 0.0, 0.0]}, "containers": [], "workloads": [["ml", ["x"], 1.0, 0.0]],
    }))
    restored = StateFile(path, node_name="node-b").load(LABELS, 600)
    assert restored is not None
    assert restored[0].gpus["GPU-a"].cost_usd == 1.0


def test_a_second_lock_on_the_same_checkpoint_fails_until_the_first_is_released(tmp_path: Path) -> None:
    first = StateFile(tmp_path / "state.json")
    second = StateFile(tmp_path / "state.json")
    first.lock()
    with pytest.raises(StateFileLocked) as raised:
        second.lock()
    assert str(tmp_path / "state.json.lock") in str(raised.value)
    first.release()
    second.lock()
    second.release()


def test_orphan_temp_files_of_a_crashed_write_are_removed_at_start(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    StateFile(path).save(_ledger(), 5.0)
    (tmp_path / "state.json.k3j2h1.tmp").write_text("{half a checkp")
    (tmp_path / "other.json.abc.tmp").write_text("not ours")
    assert StateFile(path).load(LABELS, 600) is not None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.json.abc.tmp", "state.json"]


def test_the_directory_is_fsynced_after_the_rename(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced_directories: list[bool] = []
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        synced_directories.append(stat.S_ISDIR(os.fstat(fd).st_mode))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    StateFile(tmp_path / "state.json").save(_ledger(), 5.0)
    assert synced_directories[-1] is True, "the rename is durable only once the directory is synced"


def test_a_failed_write_reports_a_stable_error_without_the_temp_file_name(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.mkdir()
    (path / "occupied").write_text("a directory where the checkpoint should be: the rename fails")
    errors = []
    for _ in range(2):
        with pytest.raises(OSError) as raised:
            StateFile(path).save(_ledger(), 5.0)
        errors.append(str(raised.value))
    assert errors[0] == errors[1]
    assert errors[0].startswith(f"cannot write checkpoint {path}: ")
    assert ".tmp" not in errors[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]
