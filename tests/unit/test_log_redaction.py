"""Credentials never reach the log: the filter `setup_logging` puts on the root handler."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from gpucost import logs

ACCESS_KEY = "AKIAGPUCOSTTESTKEY01"  # AKIA + 16, the shape of an AWS access key id
SESSION_KEY = "ASIAGPUCOSTSESSION01"
SIGNATURE = "0f" * 32
SLACK_TOKEN = "xoxb-1234567890-0987654321-AbCdEfGhIjKlMnOpQrStUvWx"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYFAKEKEY123"


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    logs.setup_logging("debug")
    stream = io.StringIO()
    root.handlers[0].setStream(stream)  # type: ignore[attr-defined]
    yield stream
    root.handlers[:] = saved_handlers
    root.setLevel(saved_level)
    logs.forget_secrets()


def test_sigv4_authorization_header_logged_by_botocore_is_redacted(captured: io.StringIO) -> None:
    headers = {
        "Authorization": (
            f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/20261128/us-east-1/budgets/aws4_request, "
            f"SignedHeaders=host;x-amz-date, Signature={SIGNATURE}"
        ).encode(),
        "X-Amz-Security-Token": b"FwoGZXIvYXdzEBYaDFAKESESSIONTOKEN//////////wEaDK",
    }
    logging.getLogger("botocore.endpoint").debug("Sending http request: <AWSPreparedRequest headers=%s>", headers)
    logging.getLogger("botocore.auth").debug("Signature:\n%s", SIGNATURE)
    text = captured.getvalue()
    assert "Sending http request" in text
    for leaked in (ACCESS_KEY, SIGNATURE, "FAKESESSIONTOKEN", "AWS4-HMAC-SHA256 Credential"):
        assert leaked not in text, leaked
    assert logs.REDACTED in text


def test_bare_access_key_ids_slack_and_bearer_tokens_are_redacted(captured: io.StringIO) -> None:
    log = logging.getLogger("gpucost.budgets")
    log.info("keys %s and %s", ACCESS_KEY, SESSION_KEY)
    log.info("slack client with token=%s", SLACK_TOKEN)
    log.info("GET / headers={'authorization': 'Bearer eyJhbGciOiJSUzI1NiJ9.payload.sig'}")
    text = captured.getvalue()
    for leaked in (ACCESS_KEY, SESSION_KEY, SLACK_TOKEN, "xoxb-", "eyJhbGciOiJSUzI1NiJ9"):
        assert leaked not in text, leaked
    assert text.count("keys ") == 1  # the event itself is kept, only the secret goes


def test_registered_secrets_are_redacted_anywhere_even_in_an_error(captured: io.StringIO) -> None:
    logs.register_secret(SECRET_KEY)
    logs.register_secret("")  # an empty value must not redact everything
    log = logging.getLogger("tests.a_library_logger")  # any logger: the filter sits on the root handler
    log.debug("secret in a message: %r", {"aws_secret_access_key": SECRET_KEY})
    try:
        raise RuntimeError(f"bad key {SECRET_KEY}")
    except RuntimeError:
        log.exception("request failed")
    text = captured.getvalue()
    assert SECRET_KEY not in text
    assert "secret in a message" in text and "request failed" in text and "bad key" in text


def test_redact_leaves_ordinary_text_alone() -> None:
    line = "aws budget plan: create gpucost-research-monthly (80000 USD), Signature of nothing"
    assert logs.redact(line) == line
