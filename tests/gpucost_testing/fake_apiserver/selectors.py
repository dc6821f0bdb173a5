"""Field and label selectors, and delete preconditions, evaluated against stored objects."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .objects import JsonObject

__all__ = ["matches", "precondition_conflict"]


def _field_value(obj: JsonObject, dotted: str) -> str:
    current: Any = obj
    for part in dotted.split("."):
        if not isinstance(current, dict):
            return ""
        current = current.get(part)
    return "" if current is None else str(current)


def _fields_match(obj: JsonObject, field_selector: str) -> bool:
    """`a.b=v`, `a.b==v`, `a.b!=v`, comma-separated, all must hold."""
    for term in filter(None, field_selector.split(",")):
        if "!=" in term:
            path, value = term.split("!=", 1)
            if _field_value(obj, path) == value:
                return False
        else:
            path, value = term.replace("==", "=").split("=", 1)
            if _field_value(obj, path) != value:
                return False
    return True


def _labels_match(obj: JsonObject, label_selector: str) -> bool:
    """`k=v`, `k==v`, `k!=v`, `k` (present), `!k` (absent), comma-separated, all must hold."""
    labels = obj.get("metadata", {}).get("labels") or {}
    for term in filter(None, label_selector.split(",")):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key) == value:
                return False
        elif "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            if labels.get(key) != value:
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


def matches(obj: JsonObject, field_selector: str, label_selector: str) -> bool:
    return _fields_match(obj, field_selector) and _labels_match(obj, label_selector)


def precondition_conflict(obj: JsonObject, preconditions: Mapping[str, Any]) -> bool:
    """True when a delete's uid or resourceVersion precondition names another version of the object."""
    metadata = obj.get("metadata") or {}
    return any(
        preconditions.get(field) not in (None, "") and preconditions.get(field) != metadata.get(field)
        for field in ("uid", "resourceVersion")
    )
