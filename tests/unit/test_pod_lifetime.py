"""A pod's lifetime from its status, and its metadata kept after the API server deleted it."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

from gpucost.kube import ApiServerMetadataProvider
from gpucost.model import PodMeta
from gpucost.sources.apiserver import ApiServerSource, pod_meta_from_object
from gpucost.sources.kept_metadata import parse_kube_time, pod_lifetime

T0 = datetime(2025, 11, 28, 10, 0, 0, tzinfo=UTC).timestamp()


def _time(seconds: float) -> str:
    return datetime.fromtimestamp(T0 + seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _pod(containers: list[dict[str, Any]], init: list[dict[str, Any]] | None = None,
         deletion: str | None = None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": "job", "namespace": "ml", "uid": "uid-1"}
    if deletion is not None:
        metadata["deletionTimestamp"] = deletion
    status: dict[str, Any] = {"phase": "Running", "containerStatuses": containers}
    if init is not None:
        status["initContainerStatuses"] = init
    return {"metadata": metadata, "status": status}


def test_the_start_is_the_earliest_container_start_init_containers_included() -> None:
    pod = _pod(
        [{"name": "main", "state": {"running": {"startedAt": _time(20)}}}],
        init=[{"name": "fetch", "state": {"terminated": {"startedAt": _time(5), "finishedAt": _time(19)}}}],
    )
    meta = pod_meta_from_object(pod)
    assert (meta.started_at, meta.finished_at, meta.deleted_at) == (T0 + 5, None, None)


def test_the_end_is_known_only_once_every_container_has_ended() -> None:
    running = _pod([
        {"name": "a", "state": {"terminated": {"startedAt": _time(0), "finishedAt": _time(30)}}},
        {"name": "b", "state": {"running": {"startedAt": _time(1)}}},
    ])
    assert pod_lifetime(running).finished_at is None
    ended = _pod([
        {"name": "a", "state": {"terminated": {"startedAt": _time(0), "finishedAt": _time(30)}}},
        {"name": "b", "state": {"terminated": {"startedAt": _time(1), "finishedAt": _time(54)}}},
    ])
    assert pod_lifetime(ended).finished_at == T0 + 54


def test_a_restarted_container_keeps_its_first_start_from_the_last_state() -> None:
    pod = _pod([{"name": "main", "state": {"running": {"startedAt": _time(40)}},
                 "lastState": {"terminated": {"startedAt": _time(3), "finishedAt": _time(39)}}}])
    assert pod_lifetime(pod).started_at == T0 + 3


def test_the_deletion_timestamp_is_kept() -> None:
    assert pod_lifetime(_pod([], deletion=_time(60))).deleted_at == T0 + 60


@pytest.mark.parametrize("value", ["yesterday", "", 17, None, "2025-13-45T99:00:00Z", {"a": 1}])
def test_a_malformed_time_is_unknown_not_an_error(value: object) -> None:
    assert parse_kube_time(value) is None
    pod = _pod([{"name": "main", "state": {"running": {"startedAt": value}}}], deletion=value)  # type: ignore[arg-type]
    assert pod_lifetime(pod).started_at is None


@pytest.mark.parametrize("status", [None, "Running", {"containerStatuses": "x"}, {"containerStatuses": [1, None]}])
def test_a_malformed_status_gives_no_lifetime(status: object) -> None:
    lifetime = pod_lifetime({"metadata": {"name": "job"}, "status": status})
    assert (lifetime.started_at, lifetime.finished_at) == (None, None)


class FakeSource:
    """The part of ApiServerSource the metadata provider reads."""

    healthy = True
    synced = True
    last_error = ""

    def __init__(self) -> None:
        self.live: dict[tuple[str, str], PodMeta] = {}
        self.namespaces: dict[str, Mapping[str, str]] = {}

    def start(self) -> None:
        return None

    def node(self) -> None:
        return None

    def pods(self) -> list[PodMeta]:
        return list(self.live.values())

    def pod(self, namespace: str, name: str) -> PodMeta | None:
        return self.live.get((namespace, name))

    def namespace_labels(self, namespace: str) -> Mapping[str, str]:
        return self.namespaces.get(namespace, {})


def _provider(source: FakeSource, retention: float = 600.0) -> ApiServerMetadataProvider:
    return ApiServerMetadataProvider(source, retention_seconds=retention)  # type: ignore[arg-type]


def test_a_deleted_pods_labels_are_served_while_asked_for_then_dropped_after_the_retention() -> None:
    source = FakeSource()
    job = PodMeta("ml", "job", "uid-1", labels={"team": "research", "model": "llama"})
    source.live[("ml", "job")] = job
    source.namespaces["ml"] = {"cost_center": "cc-7"}
    provider = _provider(source, retention=60.0)
    provider.refresh(0.0)
    assert provider.pod("ml", "job") is job, "the same object while unchanged"
    assert provider.namespace_labels("ml") == {"cost_center": "cc-7"}
    del source.live[("ml", "job")]
    del source.namespaces["ml"]
    for now in range(1, 300, 10):  # asked for every 10 s, as the sampler does while the kubelet lists it
        provider.refresh(float(now))
        assert provider.pod("ml", "job") is job
        assert provider.namespace_labels("ml") == {"cost_center": "cc-7"}
    provider.refresh(300.0 + 61.0)
    assert provider.pod("ml", "job") is None
    assert provider.namespace_labels("ml") == {}


def test_a_pod_deleted_before_anyone_asked_is_still_known_from_the_last_refresh() -> None:
    source = FakeSource()
    source.live[("ml", "blink")] = PodMeta("ml", "blink", "uid-2", labels={"team": "batch"})
    provider = _provider(source)
    provider.refresh(0.0)
    source.live.clear()
    provider.refresh(1.0)
    kept = provider.pod("ml", "blink")
    assert kept is not None and kept.labels == {"team": "batch"}


def test_a_live_namespace_whose_labels_were_removed_is_served_without_them() -> None:
    source = FakeSource()
    source.live[("ml", "job")] = PodMeta("ml", "job", "uid-1")
    source.namespaces["ml"] = {"team": "research"}
    provider = _provider(source)
    provider.refresh(0.0)
    assert provider.namespace_labels("ml") == {"team": "research"}
    source.namespaces["ml"] = {}
    provider.refresh(1.0)
    assert provider.namespace_labels("ml") == {}


def test_a_restart_does_not_move_the_pods_start_later() -> None:
    source = FakeSource()
    source.live[("ml", "job")] = PodMeta("ml", "job", "uid-1", started_at=100.0)
    provider = _provider(source)
    provider.refresh(0.0)
    restarted = PodMeta("ml", "job", "uid-1", started_at=150.0)
    source.live[("ml", "job")] = restarted
    provider.refresh(1.0)
    served = provider.pod("ml", "job")
    assert served is not None and served.started_at == 100.0
    assert provider.pod("ml", "job") is served, "the same object while unchanged"
    source.live[("ml", "job")] = PodMeta("ml", "job", "uid-9", started_at=200.0)  # a new pod, same name
    provider.refresh(2.0)
    fresh = provider.pod("ml", "job")
    assert fresh is not None and fresh.started_at == 200.0


def test_the_real_source_class_has_what_the_provider_reads() -> None:
    for name in ("start", "node", "pods", "pod", "namespace_labels", "healthy", "synced", "last_error"):
        assert hasattr(ApiServerSource, name), name
