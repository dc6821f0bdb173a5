"""The inference metrics the middleware exposes on the app's own registry.

No per-request labels: model, model_version and business_unit are bounded by
configuration, status is the HTTP status class (`2xx` ... `5xx`).
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter

__all__ = [
    "DUPLICATES",
    "GPU_SHARE_SECONDS",
    "REQUESTS",
    "TOKENS",
    "InferenceMetrics",
    "LabelChildren",
    "status_class",
]

REQUESTS = "gpucost_inference_requests_total"
GPU_SHARE_SECONDS = "gpucost_inference_gpu_share_seconds_total"
TOKENS = "gpucost_inference_tokens_total"
DUPLICATES = "gpucost_inference_duplicate_requests_total"

_BASE_LABELS = ("model", "model_version", "business_unit")
_STATUS_CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx")


def status_class(status: int) -> str:
    """`2xx` for 200..299 and so on; anything out of 100..599 counts as `5xx`."""
    index = status // 100 - 1
    return _STATUS_CLASSES[index] if 0 <= index < len(_STATUS_CLASSES) else "5xx"


@dataclass(frozen=True, slots=True)
class LabelChildren:
    """The counter children of one (model, model_version, business_unit), resolved once."""

    share_seconds: Counter
    prompt_tokens: Counter
    completion_tokens: Counter
    duplicates: Counter
    requests_by_status: dict[str, Counter]


class InferenceMetrics:
    """Counters registered on `registry`, with a cache of label children for the hot path."""

    def __init__(self, registry: CollectorRegistry) -> None:
        # prometheus_client appends `_total` to counter names itself.
        self.requests = Counter(
            REQUESTS.removesuffix("_total"),
            "Inference requests served, by HTTP status class (an exception counts as 5xx).",
            (*_BASE_LABELS, "status"),
            registry=registry,
        )
        self.share_seconds = Counter(
            GPU_SHARE_SECONDS.removesuffix("_total"),
            "GPU-time share of requests: wall time divided by the requests in flight, integrated exactly.",
            _BASE_LABELS,
            registry=registry,
        )
        self.tokens = Counter(
            TOKENS.removesuffix("_total"),
            "Tokens the app reported for its requests; kind is prompt or completion.",
            (*_BASE_LABELS, "kind"),
            registry=registry,
        )
        self.duplicates = Counter(
            DUPLICATES.removesuffix("_total"),
            "Requests marked as repeats of a recent request (app cache key or body hash).",
            _BASE_LABELS,
            registry=registry,
        )
        self._children: dict[tuple[str, str, str], LabelChildren] = {}

    def children(self, model: str, model_version: str, business_unit: str) -> LabelChildren:
        key = (model, model_version, business_unit)
        found = self._children.get(key)
        if found is None:
            found = LabelChildren(
                share_seconds=self.share_seconds.labels(*key),
                prompt_tokens=self.tokens.labels(*key, "prompt"),
                completion_tokens=self.tokens.labels(*key, "completion"),
                duplicates=self.duplicates.labels(*key),
                requests_by_status={},
            )
            self._children[key] = found
        return found

    def requests_child(self, children: LabelChildren, key: tuple[str, str, str], status: str) -> Counter:
        child = children.requests_by_status.get(status)
        if child is None:
            child = self.requests.labels(*key, status)
            children.requests_by_status[status] = child
        return child
