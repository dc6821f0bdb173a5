"""Credentials read from mounted files (the budget sidecar's, `gpucost export`'s), never from the environment
or the budgets file.

A Secret mounted as a file stays out of `kubectl describe` and the pod spec;
an environment variable does not.  Each reader fails as one line naming the
flag and the path, and registers what it read with `gpucost.logs` so that no
log line (ours or a library's at debug level) can print it.
"""

from __future__ import annotations

import configparser
import json
import os
from pathlib import Path
from typing import Any

from gpucost.errors import UserInputError
from gpucost.logs import register_secret

__all__ = [
    "AWS_CREDENTIALS_FLAG",
    "GCP_CREDENTIALS_FLAG",
    "SLACK_TOKEN_FLAG",
    "check_aws_credentials_file",
    "load_gcp_credentials",
    "read_secret_file",
    "slack_bot_token",
]

SLACK_TOKEN_FLAG = "--slack.bot-token-file"
AWS_CREDENTIALS_FLAG = "--aws.shared-credentials-file"
GCP_CREDENTIALS_FLAG = "--gcp.credentials-file"
# Development only: the chart mounts the token as a file; the variable shows in `kubectl describe`.
SLACK_TOKEN_ENV = "SLACK_BOT_TOKEN"
CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
_MAX_SECRET_BYTES = 1 << 16  # a token or key file is a few kB; anything larger is the wrong file
_MIN_KEY_LINE = 16  # a PEM body line is 64 characters; a short last line ("Aw==") would redact ordinary text


def read_secret_file(flag: str, path: Path) -> str:
    """The file's text without trailing whitespace; one-line UserInputError when unreadable or empty."""
    try:
        with path.open("rb") as handle:
            raw = handle.read(_MAX_SECRET_BYTES + 1)
    except OSError as err:
        raise UserInputError(flag, "", str(path), f"cannot be read ({err.strerror or err})") from err
    if len(raw) > _MAX_SECRET_BYTES:
        raise UserInputError(flag, "", str(path), f"is larger than {_MAX_SECRET_BYTES} bytes")
    try:
        text = raw.decode("utf-8").rstrip()
    except UnicodeDecodeError as err:
        raise UserInputError(flag, "", str(path), "is not UTF-8 text") from err
    if not text:
        raise UserInputError(flag, "", str(path), "is empty")
    return text


def slack_bot_token(token_file: Path | None) -> str:
    """The bot token from `--slack.bot-token-file`, else SLACK_BOT_TOKEN (development), else ""."""
    if token_file is not None:
        token = read_secret_file(SLACK_TOKEN_FLAG, token_file)
    else:
        token = os.environ.get(SLACK_TOKEN_ENV, "").strip()
    if token:
        register_secret(token)
    return token


def check_aws_credentials_file(path: Path) -> Path:
    """Check a shared-credentials file (INI, `aws_access_key_id` ...) and register its values as secrets.

    botocore reads the file itself (the Session's `credentials_file`); reading it here first turns a missing or
    garbled file into one line at start instead of a "no credentials" error at the first API call.
    """
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(read_secret_file(AWS_CREDENTIALS_FLAG, path), source=str(path))
    except configparser.Error as err:
        problem = str(err).splitlines()[0]
        raise UserInputError(AWS_CREDENTIALS_FLAG, "", str(path), f"is not an AWS credentials file: {problem}") from err
    if not any(parser.has_option(section, "aws_access_key_id") for section in parser.sections()):
        raise UserInputError(AWS_CREDENTIALS_FLAG, "", str(path), "has no profile with aws_access_key_id")
    for section in parser.sections():
        for key in ("aws_access_key_id", "aws_secret_access_key", "aws_session_token"):
            if parser.has_option(section, key):
                register_secret(parser.get(section, key))
    return path


def load_gcp_credentials(path: Path) -> Any:
    """Service-account credentials from a JSON key file, for where Workload Identity is not available."""
    text = read_secret_file(GCP_CREDENTIALS_FLAG, path)
    try:
        info = json.loads(text)
    except json.JSONDecodeError as err:
        raise UserInputError(GCP_CREDENTIALS_FLAG, "", str(path), "is not a JSON key file") from err
    if not isinstance(info, dict) or info.get("type") != "service_account":
        raise UserInputError(GCP_CREDENTIALS_FLAG, "", str(path), 'is not a key file of "type": "service_account"')
    for key in ("private_key", "private_key_id"):
        if isinstance(info.get(key), str):
            register_secret(info[key])
            # A PEM key is logged, if at all, line by line or with escaped newlines: register its body lines too.
            for line in info[key].splitlines():
                if len(line) >= _MIN_KEY_LINE and not line.startswith("-----"):
                    register_secret(line)
    from google.oauth2 import service_account

    try:
        return service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
            info, scopes=[CLOUD_PLATFORM_SCOPE]
        )  # google-auth lacks annotations here
    except (ValueError, KeyError) as err:
        raise UserInputError(GCP_CREDENTIALS_FLAG, "", str(path), f"is not a usable key file ({err})") from err
