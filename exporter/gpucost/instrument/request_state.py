"""What the app tells the middleware about one request: tokens, duplicates, model.

The middleware puts one `RequestRecord` into the ASGI scope under `SCOPE_KEY`;
frameworks that copy the scope copy the reference, so the app's calls reach the
same record.  Each function takes the scope or any request object with a
`.scope` (Starlette, FastAPI) and returns False, doing nothing, when the
middleware is not installed, so app code never fails for want of instrumentation.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

__all__ = ["SCOPE_KEY", "RequestRecord", "mark_duplicate", "record_of", "record_tokens", "set_model"]

SCOPE_KEY = "gpucost.request"


class RequestRecord:
    """Mutable per-request state; lives only as long as the request."""

    __slots__ = ("completion_tokens", "duplicate", "model", "model_version", "prompt_tokens")

    def __init__(self) -> None:
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.duplicate = False
        self.model: str | None = None
        self.model_version: str | None = None


def record_of(request_or_scope: object) -> RequestRecord | None:
    scope = request_or_scope if isinstance(request_or_scope, MutableMapping) else None
    if scope is None:
        scope = getattr(request_or_scope, "scope", None)
        if not isinstance(scope, MutableMapping):
            return None
    record: Any = scope.get(SCOPE_KEY)
    return record if isinstance(record, RequestRecord) else None


def record_tokens(request_or_scope: object, *, prompt: int = 0, completion: int = 0) -> bool:
    """Add token counts to the request (may be called several times, e.g. per streamed chunk)."""
    if prompt < 0 or completion < 0:
        raise ValueError(f"token counts must not be negative (got prompt={prompt}, completion={completion})")
    record = record_of(request_or_scope)
    if record is None:
        return False
    record.prompt_tokens += prompt
    record.completion_tokens += completion
    return True


def mark_duplicate(request_or_scope: object) -> bool:
    """Mark the request as a repeat of one seen recently (the app's own cache key)."""
    record = record_of(request_or_scope)
    if record is None:
        return False
    record.duplicate = True
    return True


def set_model(request_or_scope: object, model: str, model_version: str | None = None) -> bool:
    """Set the request's model (and version) from trusted app code, e.g. the route."""
    if not model or model_version == "":
        raise ValueError("model and model_version must be non-empty label values")
    record = record_of(request_or_scope)
    if record is None:
        return False
    record.model = model
    if model_version is not None:
        record.model_version = model_version
    return True
