"""The etcd under the tests' real API server: started on ephemeral ports, read and compacted through its v3 HTTP API.

`RealApiServer` (gpucost_testing.real_apiserver) runs one of these per session and
exposes `etcd_revision()` and `compact_etcd()`; they are here because they talk to
etcd directly, past the API server.
"""

from __future__ import annotations

import base64
import json
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gpucost_testing.processes import free_port
from gpucost_testing.servers import ManagedProcess

__all__ = ["compact_etcd", "etcd_revision", "start_etcd"]


def start_etcd(binary: str, workdir: Path) -> ManagedProcess:
    """A single-member etcd with its data under `workdir`, healthy when this returns."""
    client_port, peer_port = free_port(), free_port()
    client, peer = f"http://127.0.0.1:{client_port}", f"http://127.0.0.1:{peer_port}"
    argv = [
        binary,
        "--name=gpucost-test",
        f"--data-dir={workdir / 'etcd-data'}",
        f"--listen-client-urls={client}",
        f"--advertise-client-urls={client}",
        f"--listen-peer-urls={peer}",
        f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster=gpucost-test={peer}",
        "--initial-cluster-state=new",
        "--logger=zap",
        "--log-level=warn",
    ]
    etcd = ManagedProcess("etcd", argv, workdir / "etcd.log", port=client_port).start()
    try:
        etcd.wait_http("/health", timeout=60)
    except BaseException:
        etcd.stop()
        raise
    return etcd


def _call(etcd_url: str, path: str, body: Mapping[str, Any]) -> Any:
    request = urllib.request.Request(
        etcd_url + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def etcd_revision(etcd_url: str) -> int:
    """etcd's current revision (what resourceVersions are made of)."""
    # Any range answers with the store's revision in its header; this key need not exist.
    answer = _call(etcd_url, "/v3/kv/range", {"key": base64.b64encode(b"/registry/").decode(), "limit": 1})
    return int(answer["header"]["revision"])


def compact_etcd(etcd_url: str) -> int:
    """Compact so that a watch from any resourceVersion handed out so far is 410 Gone; the new revision.

    A watch from resourceVersion R starts at etcd revision R+1, and etcd still serves a
    watch that starts exactly at the compacted revision: compacting at the current
    revision would leave the newest R watchable.  Two writes to a key outside the API
    server's prefix first move the revision past every R it knows.
    """
    marker = base64.b64encode(b"/gpucost-test/compaction-marker").decode()
    for _ in range(2):
        _call(etcd_url, "/v3/kv/put", {"key": marker, "value": base64.b64encode(b"x").decode()})
    revision = etcd_revision(etcd_url)
    _call(etcd_url, "/v3/kv/compaction", {"revision": str(revision), "physical": True})
    return revision
