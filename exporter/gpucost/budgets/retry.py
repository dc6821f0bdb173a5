"""Timeouts and retries for cloud calls: one botocore config and one backoff helper.

botocore's `standard` retry mode already retries throttling and 5xx with
jittered backoff; `call_with_backoff` does the same for clients that do not
(the Google REST transport gets its own `Retry`).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["THROTTLING_CODES", "aws_client_config", "call_with_backoff", "is_throttling"]

log = logging.getLogger(__name__)
T = TypeVar("T")

THROTTLING_CODES = frozenset(
    {"Throttling", "ThrottlingException", "TooManyRequestsException", "RequestLimitExceeded", "SlowDown"}
)


def aws_client_config(max_attempts: int = 5, connect_timeout: float = 5.0, read_timeout: float = 20.0) -> Any:
    """A botocore Config with timeouts and standard retries (throttling, 429, 5xx with backoff)."""
    from botocore.config import Config

    return Config(
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        retries={"mode": "standard", "max_attempts": max_attempts},
    )


def is_throttling(error: BaseException) -> bool:
    from botocore.exceptions import ClientError

    if isinstance(error, ClientError):
        code = str(error.response.get("Error", {}).get("Code", ""))
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        return code in THROTTLING_CODES or status in (429, 503)
    return False


def call_with_backoff(
    call: Callable[[], T],
    *,
    retryable: Callable[[BaseException], bool],
    what: str,
    attempts: int = 4,
    base_delay: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except Exception as err:
            if attempt == attempts or not retryable(err):
                raise
            delay = base_delay * (2 ** (attempt - 1)) * (0.5 + random.random())
            log.warning("%s throttled (%s); retry %d/%d in %.1fs", what, err, attempt, attempts - 1, delay)
            sleep(delay)
    raise AssertionError("unreachable")
