"""The gpucost-budgets sidecar's flags parsed the way its CLI parses them, for the settings tests.

NO_CLOUDS is the cloud settings with no flag given; `one_line_error` runs the CLI and returns the
single line a bad flag must print (exit code 2).
"""

from __future__ import annotations

import pytest

from gpucost.budgets.cli import build_parser, main
from gpucost.budgets.settings import (
    AwsSettings,
    CloudSettings,
    CommandConfig,
    GcpSettings,
    SidecarConfig,
    config_from_args,
)

__all__ = ["NO_CLOUDS", "clear_environment_defaults", "config_of", "one_line_error", "serve_config"]

NO_CLOUDS = CloudSettings(
    aws=AwsSettings(enabled=False, account_id="", region="us-east-1", shared_credentials_file=None),
    gcp=GcpSettings(
        billing_account="", projects=(), pubsub_topic="", api_endpoint=None, region="us-central1", credentials_file=None
    ),
)


def clear_environment_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    # --aws.region defaults to AWS_REGION; a token in the environment turns on serve's digest job.
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)


def config_of(*argv: str) -> CommandConfig:
    """The typed config of a command line (the subcommand first)."""
    return config_from_args(build_parser().parse_args(list(argv)))


def serve_config(*argv: str) -> SidecarConfig:
    """The typed config of `serve` with these flags."""
    config = config_of("serve", *argv)
    assert isinstance(config, SidecarConfig)
    return config


def one_line_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """The one line the CLI prints for bad flags, having checked it exits 2 and prints nothing else."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]
