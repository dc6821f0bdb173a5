"""pid -> pod UID through /proc/<pid>/cgroup, for every kubelet cgroup layout."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from gpucost.sources.procfs import ProcfsPidOwners, parse_pod_uid, pod_uid_for_pid

FIXTURE_PROC = Path(__file__).resolve().parents[1] / "fixtures" / "procfs"

EXPECTED_UIDS = {
    4101: "0f2b6c3a-7d41-4a4e-9a51-3c2d1e0b9f88",
    4102: "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a",
    4103: "3e1a2b4c-5d6e-4f70-8192-a3b4c5d6e7f8",
    4104: "c0ffee00-1234-4abc-9def-0123456789ab",
    4105: "5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8d",
    4106: None,
    4107: "8f14e45fceea167a5a36dedd4bea2543",
    4108: "6b7c8d9e-0f1a-4b2c-9d3e-4f5a6b7c8d9e",
    4109: None,
}


@pytest.fixture
def host_proc(tmp_path: Path) -> Path:
    """A temp proc root holding the recorded cgroup files."""
    root = tmp_path / "proc"
    shutil.copytree(FIXTURE_PROC, root)
    return root


@pytest.mark.parametrize(("pid", "expected"), sorted(EXPECTED_UIDS.items()))
def test_pod_uid_for_pid_reads_the_uid_of_each_cgroup_layout(
    host_proc: Path, pid: int, expected: str | None
) -> None:
    assert pod_uid_for_pid(pid, proc_root=host_proc) == expected


def test_pod_uid_for_pid_accepts_the_proc_root_as_a_string(host_proc: Path) -> None:
    assert pod_uid_for_pid(4101, proc_root=str(host_proc)) == EXPECTED_UIDS[4101]


def test_a_process_that_exited_has_no_pod(host_proc: Path) -> None:
    assert pod_uid_for_pid(99999, proc_root=host_proc) is None


def test_a_process_that_exits_between_calls_stops_resolving(host_proc: Path) -> None:
    assert pod_uid_for_pid(4103, proc_root=host_proc) == EXPECTED_UIDS[4103]
    shutil.rmtree(host_proc / "4103")
    assert pod_uid_for_pid(4103, proc_root=host_proc) is None


def test_the_per_tick_step_answers_the_pods_of_the_asked_pids_leaving_out_the_rest(host_proc: Path) -> None:
    owners = ProcfsPidOwners(host_proc).pod_uids({4101, 4106, 4107, 99999})
    # 4106 is in no pod and 99999 is gone: neither is an error, both are left out.
    assert owners == {4101: EXPECTED_UIDS[4101], 4107: EXPECTED_UIDS[4107]}


def test_an_unexpected_read_error_is_raised_for_the_health_board_to_record(host_proc: Path) -> None:
    (host_proc / "4101" / "cgroup").unlink()
    (host_proc / "4101" / "cgroup").mkdir()  # reading a directory is no "process gone"
    with pytest.raises(IsADirectoryError):
        ProcfsPidOwners(host_proc).pod_uids({4101})


def test_systemd_slice_underscores_become_dashes() -> None:
    text = (
        "0::/kubepods.slice/kubepods-burstable.slice/"
        "kubepods-burstable-pod12345678_9abc_4def_8123_456789abcdef.slice/cri-containerd-ab12.scope\n"
    )
    assert parse_pod_uid(text) == "12345678-9abc-4def-8123-456789abcdef"


def test_cgroupfs_v2_path_is_parsed() -> None:
    text = "0::/kubepods/besteffort/pod12345678-9abc-4def-8123-456789abcdef/0123abcd\n"
    assert parse_pod_uid(text) == "12345678-9abc-4def-8123-456789abcdef"


def test_docker_cri_scope_under_systemd_is_parsed() -> None:
    text = "0::/kubepods.slice/kubepods-podaabbccdd_eeff_4011_8223_445566778899.slice/docker-0011.scope\n"
    assert parse_pod_uid(text) == "aabbccdd-eeff-4011-8223-445566778899"


def test_path_seen_through_a_cgroup_namespace_is_still_parsed() -> None:
    # A process outside the reader's cgroup namespace shows a path relative to it.
    text = (
        "0::/../../kubepods-burstable-pod12345678_9abc_4def_8123_456789abcdef.slice/cri-containerd-1.scope\n"
    )
    assert parse_pod_uid(text) == "12345678-9abc-4def-8123-456789abcdef"


def test_pod_looking_cgroup_outside_kubepods_is_not_a_pod() -> None:
    text = "0::/system.slice/pod12345678-9abc-4def-8123-456789abcdef.service\n"
    assert parse_pod_uid(text) is None


@pytest.mark.parametrize(
    "text",
    [
        "",
        "garbage without colons\n",
        "0::/\n",
        "0::/kubepods.slice/kubepods-burstable.slice\n",
        "0::/kubepods/burstable/podnot-a-uid/abc\n",
        "0::/kubepods/burstable/pod1234/abc\n",
    ],
)
def test_text_without_a_pod_uid_gives_none(text: str) -> None:
    assert parse_pod_uid(text) is None
