"""Size caps on what the exporter keeps from the API server and the kubelet (issue 16).

The raw JSON of the API server goes through a streaming cutter that shortens
any string past MAX_RAW_STRING_BYTES before it is decoded; decoded pods keep
only the label and annotation keys the workload-label mapping and the owner
inference read, with values capped at MAX_VALUE_CHARS; the kubelet's List keeps
only containers holding GPU resources.  Every cut is counted.
"""

from __future__ import annotations

import json

import pytest

from gpucost.attribution import AllocationView, truncation_counts
from gpucost.metrics.names import SOURCE_TRUNCATED, by_name
from gpucost.snapshot import ExporterSnapshot
from gpucost.sources.json_cut import LongStringCutter
from gpucost.sources.kept_metadata import (
    EVERY_KEY,
    MAX_VALUE_CHARS,
    KeptKeys,
    decode_objects,
    kube_object_from_raw,
)
from gpucost.sources.owners import OWNER_LABEL_KEYS
from gpucost.sources.podresources.client import MAX_DEVICE_ID_CHARS, pod_assignments
from gpucost.sources.podresources.generated import api_pb2
from gpucost.sources.workload_labels import WorkloadLabelConfig
from gpucost.truncation import (
    LONG_DEVICE_ID,
    LONG_VALUE,
    OVERSIZED_STRING,
    SOURCE_APISERVER,
    SOURCE_KUBELET,
    TruncationCounter,
    zero_counts,
)

# --- the streaming cutter -------------------------------------------------------------------


def cut(document: bytes, limit: int, chunk: int) -> tuple[bytes, int]:
    cutter = LongStringCutter(limit)
    out = b"".join(cutter.feed(document[start : start + chunk]) for start in range(0, len(document), chunk))
    return out + cutter.finish(), cutter.cut_count


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 7, 64, 1 << 20])
def test_cutter_shortens_long_strings_and_keeps_the_json_valid_however_the_chunks_fall(chunk: int) -> None:
    document = {
        "short": "ok",
        "escaped": 'say \\"hi\\"\n\t' * 3,
        "unicode": "žluťoučký kůň 🐎" * 8,
        "long": "x" * 300,
        "k" * 200: [1, 2.5, None, True, {"nested": 'q"' * 80}],
    }
    raw = json.dumps(document).encode()
    ascii_raw = json.dumps(document, ensure_ascii=True).encode()
    for source in (raw, ascii_raw):
        out, count = cut(source, 32, chunk)
        decoded = json.loads(out)
        assert decoded["short"] == "ok"
        assert count == 5  # escaped, unicode, long, the long key and nested
        assert decoded["long"] == "x" * 32
        assert document["escaped"].startswith(decoded["escaped"])
        assert document["unicode"].startswith(decoded["unicode"])
        long_key = next(key for key in decoded if key.startswith("k"))
        assert long_key == "k" * 32
        assert decoded[long_key][:4] == [1, 2.5, None, True]
        assert decoded[long_key][4]["nested"] != 'q"' * 80
        assert ('q"' * 80).startswith(decoded[long_key][4]["nested"])


def test_cutter_leaves_a_document_without_long_strings_byte_for_byte_alone() -> None:
    raw = b'{"a": "\\u00e9\\"", "b": [1, 2], "c": "' + "é".encode() * 10 + b'"}\n{"d": 1}\n'
    out, count = cut(raw, 64, 3)
    assert (out, count) == (raw, 0)


def test_cutter_never_splits_an_escape_or_a_multibyte_character_at_the_limit() -> None:
    for text in ("ab\\u00e9cdef", 'ab\\"cdefgh', "ab" + "€" * 5):
        for limit in range(1, 9):
            raw = f'["{text}"]'.encode()
            out, _ = cut(raw, limit, 1)
            value = json.loads(out)[0]  # raises on a broken escape or UTF-8
            assert json.loads(raw)[0].startswith(value)


# --- what a decoded pod keeps ------------------------------------------------------------------

CONFIG = WorkloadLabelConfig(
    label_names=("team", "model"),
    sources={"team": ("team", "annotation:example.com/team"), "model": ("label:model",)},
)


def test_kept_keys_follow_the_mapping_and_the_owner_inference() -> None:
    keys = KeptKeys.for_workload_labels(CONFIG)
    assert keys.pods.labels == frozenset({"team", "model", *OWNER_LABEL_KEYS})
    assert keys.pods.annotations == frozenset({"example.com/team"})
    # The namespace fallback looks up every key without its prefix among the namespace's labels.
    assert keys.namespaces.labels == frozenset({"team", "example.com/team", "model"})
    assert keys.namespaces.annotations == frozenset()
    no_fallback = WorkloadLabelConfig(CONFIG.label_names, CONFIG.sources, namespace_fallback=False)
    assert KeptKeys.for_workload_labels(no_fallback).namespaces.labels == frozenset()
    # Without a mapping (the default), every key is kept as before.
    assert KeptKeys().pods == KeptKeys().namespaces == EVERY_KEY


def pod_json(**metadata: object) -> bytes:
    base: dict[str, object] = {"name": "p-0", "namespace": "ml", "uid": "u-1", "resourceVersion": "7"}
    base.update(metadata)
    return json.dumps(
        {"metadata": {"resourceVersion": "9"}, "items": [{"metadata": base, "spec": {"containers": [{}]}}]}
    ).encode()


def test_a_decoded_pod_keeps_only_mapped_keys_with_capped_values_and_counts_the_cuts() -> None:
    counter = TruncationCounter()
    raw = pod_json(
        labels={"team": "t" * 1000, "model": "llama", "noise": "n" * 50, "pod-template-hash": "5d9c"},
        annotations={"example.com/team": "search", "kubectl.kubernetes.io/last-applied-configuration": "{}" * 99},
        ownerReferences=[{"kind": "ReplicaSet", "name": "web-5d9c", "controller": True}],
    )
    page = decode_objects([raw], KeptKeys.for_workload_labels(CONFIG).pods, counter, SOURCE_APISERVER)
    assert page["metadata"]["resourceVersion"] == "9"
    (pod,) = page["items"]
    assert pod.labels == {"team": "t" * MAX_VALUE_CHARS, "model": "llama", "pod-template-hash": "5d9c"}
    assert pod.annotations == {"example.com/team": "search"}
    assert (pod.owner_kind, pod.owner_name) == ("Deployment", "web")
    assert (pod.name, pod.namespace, pod.uid, pod.resource_version) == ("p-0", "ml", "u-1", "7")
    assert counter.snapshot() == {(SOURCE_APISERVER, LONG_VALUE): 1}


def test_the_owner_is_inferred_from_the_full_metadata_before_anything_is_dropped() -> None:
    # A CronJob is recognised by a label value equal to the Job name's stem: that label is not kept.
    raw = pod_json(
        labels={"app": "nightly-report"},
        ownerReferences=[{"kind": "Job", "name": "nightly-report-28900000", "controller": True}],
    )
    (pod,) = decode_objects([raw], KeptKeys.for_workload_labels(CONFIG).pods, TruncationCounter(), "apiserver")["items"]
    assert pod.labels == {}
    assert (pod.owner_kind, pod.owner_name) == ("CronJob", "nightly-report")


def test_a_huge_annotation_is_cut_while_reading_and_counted_once() -> None:
    counter = TruncationCounter()
    raw = pod_json(labels={"team": "a"}, annotations={"evil": "z" * (3 << 20)})
    chunks = [raw[start : start + 65536] for start in range(0, len(raw), 65536)]
    (pod,) = decode_objects(chunks, KeptKeys.for_workload_labels(CONFIG).pods, counter, SOURCE_APISERVER)["items"]
    assert (pod.labels, pod.annotations) == ({"team": "a"}, {})
    assert counter.snapshot() == {(SOURCE_APISERVER, OVERSIZED_STRING): 1}


def test_keep_all_keeps_every_key_but_still_caps_values() -> None:
    counter = TruncationCounter()
    obj = kube_object_from_raw(
        {"metadata": {"name": "n" * 300, "labels": {"a": "1", "b": "2" * 300}}}, EVERY_KEY, counter, "x"
    )
    assert obj.name == "n" * MAX_VALUE_CHARS
    assert obj.labels == {"a": "1", "b": "2" * MAX_VALUE_CHARS}
    assert counter.snapshot() == {("x", LONG_VALUE): 2}


# --- the kubelet ------------------------------------------------------------------------------------


def test_kubelet_list_keeps_only_containers_holding_gpu_resources_and_cuts_long_device_ids() -> None:
    counter = TruncationCounter()
    pod = api_pb2.PodResources(
        name="p",
        namespace="ml",
        containers=[
            api_pb2.ContainerResources(
                name="main",
                devices=[
                    api_pb2.ContainerDevices(resource_name="nvidia.com/gpu", device_ids=["GPU-1", "G" * 5000]),
                    api_pb2.ContainerDevices(resource_name="example.com/nic", device_ids=["eth1"]),
                ],
            ),
            api_pb2.ContainerResources(
                name="sidecar",
                devices=[api_pb2.ContainerDevices(resource_name="example.com/nic", device_ids=["eth2"])],
            ),
        ],
    )
    kept = pod_assignments(pod, lambda resource: resource.startswith("nvidia.com/"), counter)
    assert [(a.container, a.resource, a.device_ids) for a in kept] == [
        ("main", "nvidia.com/gpu", ("GPU-1", "G" * MAX_DEVICE_ID_CHARS))
    ]
    assert counter.snapshot() == {(SOURCE_KUBELET, LONG_DEVICE_ID): 1}


# --- publishing the counts ------------------------------------------------------------------------------


def test_the_counter_is_in_the_metric_table_and_every_known_cut_starts_at_zero() -> None:
    assert by_name("gpucost_exporter_source_truncated_total") is SOURCE_TRUNCATED
    assert SOURCE_TRUNCATED.type == "counter" and SOURCE_TRUNCATED.labels == ("source", "reason")
    zeros = zero_counts()
    assert set(zeros) == {
        (SOURCE_APISERVER, OVERSIZED_STRING),
        (SOURCE_APISERVER, LONG_VALUE),
        (SOURCE_APISERVER, "invalid_quantity"),
        (SOURCE_KUBELET, LONG_DEVICE_ID),
        ("kubelet_resource", "oversized_body"),
        ("kubelet_resource", LONG_VALUE),
    }
    assert set(zeros.values()) == {0}
    assert ExporterSnapshot(1, ()).source_truncated == zeros


def test_truncation_counts_add_up_what_the_providers_report_on_top_of_zeros() -> None:
    class Reporting:
        def __init__(self, counts: dict[tuple[str, str], int]) -> None:
            self.counts = counts

        def truncation_counts(self) -> dict[tuple[str, str], int]:
            return self.counts

    class Silent:
        def current(self) -> AllocationView:
            return AllocationView()

    merged = truncation_counts(
        Reporting({(SOURCE_APISERVER, LONG_VALUE): 2}), Silent(), Reporting({(SOURCE_APISERVER, LONG_VALUE): 1})
    )
    assert merged[(SOURCE_APISERVER, LONG_VALUE)] == 3
    assert merged[(SOURCE_KUBELET, LONG_DEVICE_ID)] == 0
