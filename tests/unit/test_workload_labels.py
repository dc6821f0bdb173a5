"""The workload-label mapping: pod labels/annotations and namespace labels to metric label values."""

from __future__ import annotations

from types import MappingProxyType

import pytest

from gpucost.errors import ConfigError
from gpucost.metrics.names import DEFAULT_WORKLOAD_LABELS
from gpucost.model import PodMeta
from gpucost.sources.workload_labels import (
    DEFAULT_WORKLOAD_LABEL_CONFIG,
    MAX_LABEL_VALUE_LENGTH,
    WorkloadLabelConfig,
    WorkloadLabelMapper,
    parse_workload_label_config,
    sanitize_label_value,
)

FILE = "/etc/gpucost/config.yaml"


def pod(labels: dict[str, str] | None = None, annotations: dict[str, str] | None = None) -> PodMeta:
    return PodMeta("ml", "trainer-0", uid="u1", labels=labels or {}, annotations=annotations or {})


def mapped(
    mapper: WorkloadLabelMapper, meta: PodMeta | None, namespace_labels: dict[str, str] | None = None
) -> dict[str, str]:
    return dict(zip(mapper.label_names, mapper.values(meta, namespace_labels or {}), strict=True))


# --- defaults and priority -------------------------------------------------------


def test_default_config_produces_the_contract_labels_in_order() -> None:
    assert DEFAULT_WORKLOAD_LABEL_CONFIG.label_names == DEFAULT_WORKLOAD_LABELS
    assert parse_workload_label_config(None, FILE) == DEFAULT_WORKLOAD_LABEL_CONFIG


def test_default_mapping_reads_the_documented_pod_labels() -> None:
    labels = {
        "team": "search",
        "model": "llama-3-70b",
        "model-version": "v7",
        "cost-center": "cc-1234",
        "business-unit": "ads",
    }
    assert WorkloadLabelMapper().values(pod(labels), {}) == ("search", "llama-3-70b", "v7", "cc-1234", "ads")


def test_first_configured_key_wins_over_later_keys() -> None:
    mapper = WorkloadLabelMapper()
    both = pod({"team": "search", "app.kubernetes.io/team": "platform"})
    only_second = pod({"app.kubernetes.io/team": "platform"})
    assert mapped(mapper, both)["team"] == "search"
    assert mapped(mapper, only_second)["team"] == "platform"


def test_model_falls_back_to_app_kubernetes_io_name() -> None:
    assert mapped(WorkloadLabelMapper(), pod({"app.kubernetes.io/name": "whisper"}))["model"] == "whisper"


def test_missing_values_become_empty_strings() -> None:
    assert WorkloadLabelMapper().values(pod({"unrelated": "x"}), {}) == ("",) * 5


def test_empty_pod_label_counts_as_missing_and_the_next_key_is_tried() -> None:
    meta = pod({"team": "", "app.kubernetes.io/team": "platform"})
    assert mapped(WorkloadLabelMapper(), meta)["team"] == "platform"


def test_annotation_keys_read_annotations_and_plain_keys_read_labels() -> None:
    config = parse_workload_label_config(
        {"labels": {"model": ["annotation:gpucost.io/model", "label:model"], "team": "team"}}, FILE
    )
    mapper = WorkloadLabelMapper(config)
    annotated = pod(
        labels={"model": "from-label", "team": "a"}, annotations={"gpucost.io/model": "from-annotation"}
    )
    label_only = pod(labels={"model": "from-label"}, annotations={"team": "annotation-is-not-a-label"})
    assert mapped(mapper, annotated) == {"model": "from-annotation", "team": "a"}
    assert mapped(mapper, label_only) == {"model": "from-label", "team": ""}


# --- namespace fallback ------------------------------------------------------------


def test_namespace_team_label_covers_pods_without_one() -> None:
    mapper = WorkloadLabelMapper()
    assert mapped(mapper, pod({"model": "m"}), {"team": "research"})["team"] == "research"


def test_pod_label_wins_over_namespace_label() -> None:
    assert mapped(WorkloadLabelMapper(), pod({"team": "search"}), {"team": "research"})["team"] == "search"


def test_namespace_fallback_uses_the_key_without_its_annotation_prefix() -> None:
    config = parse_workload_label_config({"labels": {"cost_center": ["annotation:cost-center"]}}, FILE)
    assert WorkloadLabelMapper(config).values(pod(), {"cost-center": "cc-9"}) == ("cc-9",)


def test_unknown_pod_still_gets_its_namespace_labels() -> None:
    assert mapped(WorkloadLabelMapper(), None, {"team": "research"})["team"] == "research"
    assert WorkloadLabelMapper().values(None, {}) == ("",) * 5


def test_namespace_fallback_can_be_switched_off() -> None:
    config = parse_workload_label_config({"namespace_fallback": False}, FILE)
    assert config.label_names == DEFAULT_WORKLOAD_LABELS
    assert mapped(WorkloadLabelMapper(config), pod(), {"team": "research"})["team"] == ""


# --- caching ---------------------------------------------------------------------------


def test_repeated_calls_with_the_same_objects_return_the_cached_tuple() -> None:
    mapper = WorkloadLabelMapper()
    meta = pod({"team": "search"})
    namespace_labels = MappingProxyType({"team": "research"})
    first = mapper.values(meta, namespace_labels)
    assert mapper.values(meta, namespace_labels) is first


def test_a_changed_pod_object_is_mapped_afresh() -> None:
    mapper = WorkloadLabelMapper()
    assert mapped(mapper, pod({"team": "a"}))["team"] == "a"
    assert mapped(mapper, pod({"team": "b"}))["team"] == "b"


# --- sanitisation ---------------------------------------------------------------------------


def test_plain_values_pass_through_unchanged() -> None:
    assert sanitize_label_value("llama-3.1_70B/instruct") == "llama-3.1_70B/instruct"
    assert sanitize_label_value("Équipe Données") == "Équipe Données"


def test_control_characters_are_removed() -> None:
    assert sanitize_label_value("team\nalpha\t\x00\x7f\x85") == "teamalpha"


def test_lone_surrogates_that_are_not_utf8_are_removed() -> None:
    cleaned = sanitize_label_value("ml\udcffteam")
    assert cleaned == "mlteam"
    cleaned.encode("utf-8")


def test_values_are_capped_at_128_characters() -> None:
    assert MAX_LABEL_VALUE_LENGTH == 128
    assert sanitize_label_value("x" * 500) == "x" * 128
    assert sanitize_label_value("é" * 200) == "é" * 128


def test_mapper_sanitises_annotation_values() -> None:
    config = parse_workload_label_config({"labels": {"model": ["annotation:model"]}}, FILE)
    meta = pod(annotations={"model": "gpt\n" + "y" * 300})
    (value,) = WorkloadLabelMapper(config).values(meta, {})
    assert value == ("gpt" + "y" * 300)[:128]


# --- config parsing and validation --------------------------------------------------------------


def test_configured_labels_replace_the_defaults_in_the_given_order() -> None:
    config = parse_workload_label_config(
        {"labels": {"project": ["project", "annotation:project"], "team": "squad"}}, FILE
    )
    assert config == WorkloadLabelConfig(
        label_names=("project", "team"),
        sources={"project": ("project", "annotation:project"), "team": ("squad",)},
        namespace_fallback=True,
    )


def test_an_empty_label_mapping_means_no_workload_labels() -> None:
    config = parse_workload_label_config({"labels": {}}, FILE)
    assert config.label_names == ()
    assert WorkloadLabelMapper(config).values(pod({"team": "x"}), {"team": "y"}) == ()


@pytest.mark.parametrize(
    ("raw", "key_path", "value"),
    [
        ({"labels": {"1team": ["team"]}}, "workload_labels.labels.1team", "1team"),
        ({"labels": {"team-name": ["team"]}}, "workload_labels.labels.team-name", "team-name"),
        ({"labels": {"__team": ["team"]}}, "workload_labels.labels.__team", "__team"),
        ({"labels": {"namespace": ["team"]}}, "workload_labels.labels.namespace", "namespace"),
        ({"labels": {"pod": ["team"]}}, "workload_labels.labels.pod", "pod"),
        ({"labels": {"container": ["team"]}}, "workload_labels.labels.container", "container"),
        ({"labels": {"uuid": ["team"]}}, "workload_labels.labels.uuid", "uuid"),
        ({"labels": {"component": ["team"]}}, "workload_labels.labels.component", "component"),
        ({"labels": {"gpu": ["team"]}}, "workload_labels.labels.gpu", "gpu"),
        ({"labels": {"node": ["team"]}}, "workload_labels.labels.node", "node"),
    ],
)
def test_invalid_or_reserved_label_names_are_rejected_with_their_key_path(
    raw: dict[str, object], key_path: str, value: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_workload_label_config(raw, FILE)
    assert caught.value.file == FILE
    assert caught.value.key_path == key_path
    assert caught.value.value == value
    assert FILE in str(caught.value) and key_path in str(caught.value)


@pytest.mark.parametrize(
    ("raw", "key_path"),
    [
        ({"labels": {"team": []}}, "workload_labels.labels.team"),
        ({"labels": {"team": 7}}, "workload_labels.labels.team"),
        ({"labels": {"team": ["team", 3]}}, "workload_labels.labels.team[1]"),
        ({"labels": {"team": ["team", "annotation:"]}}, "workload_labels.labels.team[1]"),
        ({"labels": {"team": ["my team"]}}, "workload_labels.labels.team[0]"),
        ({"labels": ["team"]}, "workload_labels.labels"),
        ({"namespace_fallback": "yes"}, "workload_labels.namespace_fallback"),
        ({"lables": {}}, "workload_labels.lables"),
        (["team"], "workload_labels"),
    ],
)
def test_malformed_sections_are_rejected_with_their_key_path(raw: object, key_path: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_workload_label_config(raw, FILE)
    assert caught.value.key_path == key_path
    assert caught.value.file == FILE
