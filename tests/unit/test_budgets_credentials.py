"""Credential files of the budget sidecar: what a good file yields, how a bad one fails, and that every value
read is registered for redaction."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from gpucost import logs
from gpucost.credentials import (
    check_aws_credentials_file,
    load_gcp_credentials,
    read_secret_file,
    slack_bot_token,
)
from gpucost.errors import UserInputError

SERVICE_ACCOUNT = "gpucost-budgets@example-project.iam.gserviceaccount.com"


@pytest.fixture(autouse=True)
def _forget_secrets() -> Iterator[None]:
    yield
    logs.forget_secrets()


def _key_file(path: Path) -> tuple[Path, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    info = {
        "type": "service_account",
        "project_id": "example-project",
        "private_key_id": "0123456789abcdef0123456789abcdef01234567",
        "private_key": pem,
        "client_email": SERVICE_ACCOUNT,
        "client_id": "1234567890",
        "token_uri": "https://oauth2.googleapis.com/token",
    }
    path.write_text(json.dumps(info))
    return path, pem


def test_gcp_key_file_gives_service_account_credentials_and_its_key_is_never_logged(tmp_path: Path) -> None:
    path, pem = _key_file(tmp_path / "key.json")
    credentials = load_gcp_credentials(path)
    assert credentials.service_account_email == SERVICE_ACCOUNT
    body = [line for line in pem.splitlines() if not line.startswith("-----")]
    assert logs.redact(f"key {pem.rstrip()}") == f"key {logs.REDACTED}"
    escaped = logs.redact(f"key {pem!r} id 0123456789abcdef0123456789abcdef01234567")  # newlines as \\n
    assert not [line for line in body if line in escaped]
    assert escaped.endswith(f"id {logs.REDACTED}")


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("{not json", "is not a JSON key file"),
        ('{"type": "authorized_user"}', '"type": "service_account"'),
    ],
)
def test_a_bad_gcp_key_file_is_one_line_naming_flag_and_path(tmp_path: Path, content: str, problem: str) -> None:
    path = tmp_path / "key.json"
    path.write_text(content)
    with pytest.raises(UserInputError) as raised:
        load_gcp_credentials(path)
    line = raised.value.one_line()
    assert line.startswith("--gcp.credentials-file: ") and problem in line and str(path) in line


def test_aws_credentials_file_values_are_registered_and_a_file_without_keys_is_refused(tmp_path: Path) -> None:
    good = tmp_path / "credentials"
    good.write_text(
        "[default]\naws_access_key_id = AKIAGPUCOSTUNIT0001\naws_secret_access_key = notAKeyShape/secret+1\n"
    )
    assert check_aws_credentials_file(good) == good
    assert logs.redact("secret notAKeyShape/secret+1 here") == f"secret {logs.REDACTED} here"
    bad = tmp_path / "config"
    bad.write_text("[profile x]\nregion = us-east-1\n")
    with pytest.raises(UserInputError, match="no profile with aws_access_key_id"):
        check_aws_credentials_file(bad)
    garbled = tmp_path / "garbled"
    garbled.write_text("aws_access_key_id = before any section\n")
    with pytest.raises(UserInputError, match="is not an AWS credentials file"):
        check_aws_credentials_file(garbled)


def test_slack_token_file_is_stripped_registered_and_the_environment_is_only_a_fallback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-from-the-environment")
    token_file = tmp_path / "token"
    token_file.write_text("not-a-slack-shaped-token-42\r\n")
    assert slack_bot_token(token_file) == "not-a-slack-shaped-token-42"  # the file wins over the variable
    assert slack_bot_token(None) == "xoxb-from-the-environment"
    monkeypatch.delenv("SLACK_BOT_TOKEN")
    assert slack_bot_token(None) == ""
    assert logs.redact("token=not-a-slack-shaped-token-42") == f"token={logs.REDACTED}"


def test_an_oversized_or_binary_secret_file_is_refused(tmp_path: Path) -> None:
    big = tmp_path / "big"
    big.write_bytes(b"x" * 70_000)
    with pytest.raises(UserInputError, match="larger than"):
        read_secret_file("--slack.bot-token-file", big)
    binary = tmp_path / "binary"
    binary.write_bytes(b"\xff\xfe\x00token")
    with pytest.raises(UserInputError, match="not UTF-8"):
        read_secret_file("--slack.bot-token-file", binary)
    logging.getLogger(__name__).debug("nothing registered from refused files")
