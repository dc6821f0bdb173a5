"""The API's values as the fake server speaks them: resources, Status objects, merge patches, requests seen."""

from __future__ import annotations

import copy
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["DEFAULT_RESOURCES", "JsonObject", "Resource", "SeenRequest", "merge_patch", "status", "truthy"]

JsonObject = dict[str, Any]


@dataclass(frozen=True)
class Resource:
    """One REST resource: `/api/v1` + `pods` -> kind Pod, namespaced."""

    api_prefix: str
    plural: str
    kind: str
    namespaced: bool

    @property
    def api_version(self) -> str:
        return "v1" if self.api_prefix == "/api/v1" else self.api_prefix.removeprefix("/apis/")


DEFAULT_RESOURCES = (
    Resource("/api/v1", "pods", "Pod", True),
    Resource("/api/v1", "namespaces", "Namespace", False),
    Resource("/api/v1", "nodes", "Node", False),
    Resource("/api/v1", "resourcequotas", "ResourceQuota", True),
    Resource("/api/v1", "configmaps", "ConfigMap", True),
)


@dataclass(frozen=True)
class SeenRequest:
    method: str
    path: str
    query: Mapping[str, str]

    @classmethod
    def parse(cls, method: str, target: str) -> SeenRequest:
        """From the request line's method and target (path and query as sent)."""
        parsed = urllib.parse.urlsplit(target)
        return cls(method, parsed.path, dict(urllib.parse.parse_qsl(parsed.query, keep_blank_values=True)))

    @property
    def is_watch(self) -> bool:
        return truthy(self.query.get("watch"))


def truthy(value: str | None) -> bool:
    """Query booleans as Go's strconv.ParseBool reads them (the Python client sends `True`)."""
    return (value or "").lower() in ("1", "t", "true")


def status(code: int, reason: str, message: str) -> JsonObject:
    """A failure Status object, the body the real server sends with every error code."""
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch (used for merge and, approximately, strategic merge patches)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result
