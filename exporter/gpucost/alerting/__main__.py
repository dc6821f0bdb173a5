"""`python -m gpucost.alerting`: write an alertmanager.yml for gpucost's alerts.

    python -m gpucost.alerting --teams-from budgets.yaml --mode webhook \\
        --secrets-dir /etc/alertmanager/secrets --out alertmanager/alertmanager.yml
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from gpucost.alerting.amconfig import SLACK_CHAT_POST_MESSAGE, DeliveryMode, Settings, render_config
from gpucost.alerting.teams import TeamChannel, default_channel, read_budget_teams, validate_team
from gpucost.errors import ConfigError

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m gpucost.alerting", description="Generate gpucost's Alertmanager configuration."
    )
    teams = parser.add_mutually_exclusive_group()
    teams.add_argument("--teams-from", type=Path, metavar="BUDGETS_YAML", help="read teams from budgets.yaml")
    teams.add_argument("--team", action="append", default=[], help="a team (repeatable)")
    parser.add_argument("--mode", choices=[m.value for m in DeliveryMode], default=DeliveryMode.BOT.value)
    parser.add_argument("--secrets-dir", default="/etc/alertmanager/secrets", help="token/URL files")
    parser.add_argument("--templates-dir", default="/etc/alertmanager/templates", help="gpucost.tmpl dir")
    parser.add_argument("--slack-api-url", default=SLACK_CHAT_POST_MESSAGE, help="bot mode only")
    parser.add_argument("--platform-channel", default="#gpucost-platform")
    parser.add_argument("--out", type=Path, help="output file (default: stdout)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.teams_from is not None:
            teams = read_budget_teams(args.teams_from)
        else:
            names = [validate_team(name, key_path="--team") for name in args.team]
            teams = tuple(TeamChannel(name, default_channel(name)) for name in sorted(set(names)))
        mode = DeliveryMode(args.mode)
        if mode is DeliveryMode.WEBHOOK and not teams:
            raise ConfigError("", "--team", [], "webhook mode needs --team or --teams-from")
        settings = Settings(
            mode=mode,
            teams=teams,
            secrets_dir=args.secrets_dir,
            templates_dir=args.templates_dir,
            slack_api_url=args.slack_api_url,
            platform_channel=args.platform_channel,
        )
        text = render_config(settings)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.out is None:
        sys.stdout.write(text)
    else:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
