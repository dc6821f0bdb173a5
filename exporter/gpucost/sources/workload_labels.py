"""Map pod labels and annotations to the exporter's workload metric labels.

A workload label (`team`, `model`, ...) takes its value from the first of its
configured pod label or annotation keys that the pod carries; when none does,
the same keys are looked up among the labels of the pod's namespace, so one
`team` label on a namespace covers every pod in it.  Missing values are "".

This module is pure: it imports no Kubernetes client and does no I/O.

Config shape (the `workload_labels` section of the exporter config)::

    workload_labels:
      namespace_fallback: true          # optional, default true
      labels:                           # ordered; replaces the defaults
        team: [team, app.kubernetes.io/team]
        model: ["annotation:gpucost.io/model", model]
        cost_center: cost-center        # one key may be written as a string

A key is a pod label key; `label:<key>` says so explicitly and
`annotation:<key>` reads the pod annotation instead.  The namespace fallback
looks up the key itself (without its `label:`/`annotation:` prefix) among the
namespace's labels.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from gpucost.errors import ConfigError
from gpucost.metrics.names import DEFAULT_WORKLOAD_LABELS, EXPORTER_METRICS
from gpucost.model import PodMeta

__all__ = [
    "DEFAULT_WORKLOAD_LABEL_CONFIG",
    "MAX_LABEL_VALUE_LENGTH",
    "RESERVED_LABEL_NAMES",
    "SourceKey",
    "WorkloadLabelConfig",
    "WorkloadLabelMapper",
    "parse_source_key",
    "parse_workload_label_config",
    "sanitize_label_value",
]

# Annotations are free text; a value longer than this is cut so one odd pod
# cannot blow up series size.  128 code points fits every Kubernetes label
# value (63 chars) and any sensible team or model name.
MAX_LABEL_VALUE_LENGTH = 128

CONFIG_SECTION = "workload_labels"

# Labels the exporter sets itself, plus the target labels Prometheus attaches
# on scrape: a workload label with one of these names would clash with them.
RESERVED_LABEL_NAMES: frozenset[str] = frozenset(
    {label for spec in EXPORTER_METRICS for label in spec.labels}
    | {"namespace", "pod", "container", "uuid", "component", "gpu", "node", "instance", "job", "le"}
)

_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_LABEL_PREFIX = "label:"
_ANNOTATION_PREFIX = "annotation:"

_DEFAULT_SOURCES: dict[str, tuple[str, ...]] = {
    "team": ("team", "app.kubernetes.io/team"),
    "model": ("model", "app.kubernetes.io/name"),
    "model_version": ("model-version",),
    "cost_center": ("cost-center",),
    "business_unit": ("business-unit",),
}


@dataclass(frozen=True, slots=True)
class SourceKey:
    """One place a workload label value can come from: a pod label or a pod annotation."""

    kind: Literal["label", "annotation"]
    key: str


@dataclass(frozen=True)
class WorkloadLabelConfig:
    """Workload label names in metric order, each with its keys in priority order."""

    label_names: tuple[str, ...]
    sources: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    namespace_fallback: bool = True


DEFAULT_WORKLOAD_LABEL_CONFIG = WorkloadLabelConfig(
    label_names=DEFAULT_WORKLOAD_LABELS,
    sources=MappingProxyType({name: _DEFAULT_SOURCES[name] for name in DEFAULT_WORKLOAD_LABELS}),
    namespace_fallback=True,
)


def parse_source_key(text: str) -> SourceKey:
    """`label:k` or plain `k` is pod label k; `annotation:k` is pod annotation k."""
    if text.startswith(_ANNOTATION_PREFIX):
        return SourceKey("annotation", text[len(_ANNOTATION_PREFIX) :])
    if text.startswith(_LABEL_PREFIX):
        return SourceKey("label", text[len(_LABEL_PREFIX) :])
    return SourceKey("label", text)


def parse_workload_label_config(raw: object, file: str) -> WorkloadLabelConfig:
    """Validate the `workload_labels` config section; None means the defaults.

    Raises ConfigError naming `file`, the key path (`workload_labels.labels.team[1]`)
    and the offending value.
    """
    if raw is None:
        return DEFAULT_WORKLOAD_LABEL_CONFIG
    if not isinstance(raw, Mapping):
        raise ConfigError(
            file, CONFIG_SECTION, raw, "must be a mapping with `labels` and `namespace_fallback`"
        )
    # Sorted by their text, but looked up by the key itself: YAML keys may be 1, None or a date.
    unknown = sorted((key for key in raw if key not in ("labels", "namespace_fallback")), key=str)
    if unknown:
        raise ConfigError(
            file,
            f"{CONFIG_SECTION}.{unknown[0]}",
            raw[unknown[0]],
            "unknown key; use labels, namespace_fallback",
        )
    fallback = raw.get("namespace_fallback", True)
    if not isinstance(fallback, bool):
        raise ConfigError(file, f"{CONFIG_SECTION}.namespace_fallback", fallback, "must be true or false")
    if "labels" not in raw:
        return WorkloadLabelConfig(
            DEFAULT_WORKLOAD_LABEL_CONFIG.label_names, DEFAULT_WORKLOAD_LABEL_CONFIG.sources, fallback
        )
    labels = raw["labels"]
    if not isinstance(labels, Mapping):
        raise ConfigError(
            file, f"{CONFIG_SECTION}.labels", labels, "must map a metric label name to pod keys"
        )
    sources: dict[str, tuple[str, ...]] = {}
    for name, keys in labels.items():
        path = f"{CONFIG_SECTION}.labels.{name}"
        _check_label_name(name, file, path)
        sources[name] = _parse_keys(keys, file, path)
    return WorkloadLabelConfig(tuple(sources), MappingProxyType(sources), fallback)


def _check_label_name(name: object, file: str, path: str) -> None:
    if not isinstance(name, str) or not _LABEL_NAME.fullmatch(name):
        raise ConfigError(file, path, name, "is not a valid Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*)")
    if name.startswith("__"):
        raise ConfigError(file, path, name, "label names starting with __ are reserved by Prometheus")
    if name in RESERVED_LABEL_NAMES:
        raise ConfigError(file, path, name, "collides with a label the exporter or Prometheus sets itself")


def _parse_keys(keys: object, file: str, path: str) -> tuple[str, ...]:
    if isinstance(keys, str):
        keys = [keys]
    if not isinstance(keys, list) or not keys:
        raise ConfigError(file, path, keys, "must be a pod label key or a non-empty list of them")
    for index, key in enumerate(keys):
        key_path = f"{path}[{index}]"
        if not isinstance(key, str):
            raise ConfigError(file, key_path, key, "must be a string such as `team` or `annotation:team`")
        bare = parse_source_key(key).key
        if not bare or bare != bare.strip() or any(ch.isspace() for ch in bare):
            raise ConfigError(file, key_path, key, "must name a label or annotation key without spaces")
    return tuple(keys)


def sanitize_label_value(value: str) -> str:
    """A valid Prometheus label value: UTF-8 only, no control characters, at most 128 code points.

    Lone surrogates (which cannot be encoded as UTF-8) and control characters
    (Unicode category Cc: tab, newline, DEL, C1 controls) are removed, then the
    value is cut to MAX_LABEL_VALUE_LENGTH code points.
    """
    if len(value) <= MAX_LABEL_VALUE_LENGTH and value.isascii() and value.isprintable():
        return value
    kept = "".join(ch for ch in value if unicodedata.category(ch) not in ("Cc", "Cs"))
    return kept[:MAX_LABEL_VALUE_LENGTH]


@dataclass(frozen=True, slots=True)
class _CompiledLabel:
    pod_keys: tuple[SourceKey, ...]
    namespace_keys: tuple[str, ...]


class WorkloadLabelMapper:
    """Turns a pod (and its namespace's labels) into workload label values.

    `values()` runs per container per tick, so results are cached by the
    identity of the pod and namespace-label objects: the API-server cache hands
    out a new PodMeta (and a new namespace mapping) whenever one changes, so an
    identical object means an identical answer.  The cached entry holds
    references to both objects, so their ids cannot be reused while cached.
    """

    _CACHE_LIMIT = 4096

    def __init__(self, config: WorkloadLabelConfig = DEFAULT_WORKLOAD_LABEL_CONFIG) -> None:
        self.config = config
        self.label_names = config.label_names
        self._compiled = tuple(
            _CompiledLabel(
                pod_keys=tuple(parse_source_key(key) for key in config.sources.get(name, ())),
                namespace_keys=tuple(parse_source_key(key).key for key in config.sources.get(name, ())),
            )
            for name in config.label_names
        )
        self._empty = ("",) * len(config.label_names)
        self._cache: dict[tuple[int, int], tuple[PodMeta | None, Mapping[str, str], tuple[str, ...]]] = {}

    def values(self, pod: PodMeta | None, namespace_labels: Mapping[str, str]) -> tuple[str, ...]:
        """Workload label values ordered as `config.label_names`; "" where nothing matched."""
        cache_key = (id(pod), id(namespace_labels))
        cached = self._cache.get(cache_key)
        if cached is not None and cached[0] is pod and cached[1] is namespace_labels:
            return cached[2]
        result = self._compute(pod, namespace_labels)
        if len(self._cache) >= self._CACHE_LIMIT:
            # Pods churn; dropping everything now and then is cheaper than LRU bookkeeping per call.
            self._cache.clear()
        self._cache[cache_key] = (pod, namespace_labels, result)
        return result

    def _compute(self, pod: PodMeta | None, namespace_labels: Mapping[str, str]) -> tuple[str, ...]:
        if not self._compiled:
            return self._empty
        use_namespace = self.config.namespace_fallback and bool(namespace_labels)
        return tuple(
            sanitize_label_value(self._first_value(compiled, pod, namespace_labels, use_namespace))
            for compiled in self._compiled
        )

    @staticmethod
    def _first_value(
        compiled: _CompiledLabel,
        pod: PodMeta | None,
        namespace_labels: Mapping[str, str],
        use_namespace: bool,
    ) -> str:
        if pod is not None:
            for source in compiled.pod_keys:
                found = (pod.labels if source.kind == "label" else pod.annotations).get(source.key)
                if found:
                    return found
        if use_namespace:
            for key in compiled.namespace_keys:
                found = namespace_labels.get(key)
                if found:
                    return found
        return ""
