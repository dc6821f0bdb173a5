"""Which pod a host process belongs to, from its cgroup path.

Per-process GPU accounting gives host pids; the kubelet puts every container
in a cgroup below its pod's, whose name carries the pod UID.  `parse_pod_uid`
reads the UID out of a `/proc/<pid>/cgroup` text for cgroup v1 and v2 and
both kubelet cgroup drivers:

- cgroupfs: `/kubepods/burstable/pod<uid>/<container id>` (guaranteed pods
  sit directly under `/kubepods/pod<uid>`);
- systemd: `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid>.slice/`
  `cri-containerd-<id>.scope`, where the UID's dashes are underscores
  because systemd reserves `-` as its hierarchy separator.

Static pods have a 32-hex-digit UID without dashes; it is returned as is.
`pod_uid_for_pid` is the thin reader over a host proc root (`--host.proc`);
`ProcfsPidOwners` is the sampler's per-tick step over it (health collector `procfs`).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from pathlib import Path

from gpucost.sources.registry import PROCFS

__all__ = ["DEFAULT_PROC_ROOT", "ProcfsPidOwners", "parse_pod_uid", "pod_uid_for_pid"]

DEFAULT_PROC_ROOT = "/proc"

# One path component naming a pod: `pod<uid>` (cgroupfs) or `...-pod<uid>.slice` (systemd).
_POD_COMPONENT = re.compile(r"^(?:[A-Za-z0-9_.-]+-)?pod(?P<uid>[0-9A-Fa-f_-]+?)(?:\.slice)?$")
_HEX_DIGITS_IN_UID = 32


def parse_pod_uid(cgroup_text: str) -> str | None:
    """The pod UID in a /proc/<pid>/cgroup text, or None for a process outside any pod."""
    for line in cgroup_text.splitlines():
        # `hierarchy-id:controllers:path`; cgroup v2 has one line `0::path`.
        parts = line.strip().split(":", 2)
        if len(parts) != 3:
            continue
        uid = _pod_uid_in_path(parts[2])
        if uid is not None:
            return uid
    return None


def pod_uid_for_pid(pid: int, proc_root: str | Path = DEFAULT_PROC_ROOT) -> str | None:
    """The pod UID of host process `pid`, or None when it is in no pod or already gone."""
    try:
        text = (Path(proc_root) / str(pid) / "cgroup").read_text(encoding="utf-8", errors="replace")
    except (FileNotFoundError, ProcessLookupError, PermissionError, NotADirectoryError):
        # Processes exit between NVML listing them and us reading them; without
        # hostPID the file isn't visible at all.  Either way: no pod known.
        return None
    return parse_pod_uid(text)


class ProcfsPidOwners:
    """The pods of the sampled processes, read from the host's /proc once per tick."""

    name = PROCFS.collector

    def __init__(self, proc_root: str | Path = DEFAULT_PROC_ROOT) -> None:
        self._proc_root = Path(proc_root)

    def pod_uids(self, pids: Collection[int]) -> Mapping[int, str]:
        owners = {pid: pod_uid_for_pid(pid, self._proc_root) for pid in pids}
        return {pid: uid for pid, uid in owners.items() if uid is not None}


def _pod_uid_in_path(path: str) -> str | None:
    components = path.split("/")
    # Only below a kubepods hierarchy: a process's own cgroup named `pod...` elsewhere isn't a pod.
    if not any("kubepods" in component for component in components):
        return None
    for component in components:
        match = _POD_COMPONENT.match(component)
        if match is None:
            continue
        uid = _normalized_uid(match["uid"])
        if uid is not None:
            return uid
    return None


def _normalized_uid(raw: str) -> str | None:
    uid = raw.replace("_", "-").lower()
    hex_digits = uid.replace("-", "")
    if len(hex_digits) != _HEX_DIGITS_IN_UID:
        return None
    if "-" not in uid:
        return uid
    groups = [len(group) for group in uid.split("-")]
    return uid if groups == [8, 4, 4, 4, 12] else None
