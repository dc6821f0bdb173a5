"""The budgets file (`budgets.yaml`): the parser and its validation.

This is the one reader of the format: the budget sidecar, `gpucost budgets
validate` and the Alertmanager generator (`gpucost.alerting.teams`) all go
through it, so a file one of them accepts the others accept too.
`parse_budget_file` is pure: it takes the parsed YAML and returns a
`BudgetFile` or raises `ConfigError` naming file, key path and value.
`load_budget_file` reads the file first.  Overlapping scopes are not an error
(a team budget and a team+model budget inside it are normal) but are reported
in `BudgetFile.overlaps` so `gpucost budgets validate` can show them.

The frozen values live in `gpucost.budgets.spec_model` and are re-exported here, so
`from gpucost.budgets.spec import ...` stays the one import path for callers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from gpucost.budgets.spec_model import (
    BUDGET_RESOURCES,
    DEFAULT_THRESHOLDS_PERCENT,
    SCOPE_KEYS,
    AnomalyDetection,
    AnomalyFrequency,
    Budget,
    BudgetFile,
    BudgetResources,
    BudgetScope,
    EnforceMode,
    FixedCost,
    Month,
    Overlap,
    budgets_for_team,
    default_team_channel,
    find_overlaps,
    scope_mapping,
    threshold_label,
)
from gpucost.contract.tiers import MAX_THRESHOLDS_PER_BUDGET, percent_label
from gpucost.errors import ConfigError
from gpucost.yamlfields import (
    child_path,
    load_yaml_file,
    optional_float,
    optional_str,
    read_bool,
    read_float,
    read_str,
    reject_unknown_keys,
    require_mapping,
)

__all__ = [
    "BUDGET_RESOURCES",
    "DEFAULT_THRESHOLDS_PERCENT",
    "AnomalyDetection",
    "Budget",
    "BudgetFile",
    "BudgetResources",
    "BudgetScope",
    "FixedCost",
    "Month",
    "Overlap",
    "budgets_for_team",
    "default_team_channel",
    "find_overlaps",
    "load_budget_file",
    "parse_budget_file",
    "scope_mapping",
    "threshold_label",
]


_NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_MONTH_RE = re.compile(r"^([0-9]{4})-([0-9]{2})$")
_LABEL_VALUE_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_.\-]{0,61}[A-Za-z0-9])?$")
_CHANNEL_RE = re.compile(r"^#[a-z0-9][a-z0-9_\-]{0,79}$")
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_BUDGET_KEYS = (
    "name",
    "scope",
    "monthly_usd",
    "thresholds_percent",
    "slack_channel",
    "owners",
    "start_month",
    "end_month",
    "monthly_overrides",
    "enforce",
    "hard_threshold_percent",
    "namespaces",
    "resources",
)
# Keys other gpucost readers once accepted, with what replaced them; said in the error so a file copied
# from an old example is fixed in one step instead of guessed at.  Still errors: nothing is read silently.
_RENAMED_BUDGET_KEYS = {"amount_usd": "the monthly amount is `monthly_usd`"}
_FIXED_KEYS = ("name", "monthly_usd", "allocation")
_ANOMALY_KEYS = ("enabled", "monitor", "threshold_usd", "frequency", "subscribers")
_SNS_ARN_RE = re.compile(r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?$")


def load_budget_file(path: Path) -> BudgetFile:
    return parse_budget_file(load_yaml_file(path), str(path))


def parse_budget_file(document: object, file: str) -> BudgetFile:
    if document is None:
        raise ConfigError(file, "", document, "file is empty; expected a mapping with a `budgets` list")
    root = require_mapping(document, file, "")
    reject_unknown_keys(root, ("budgets", "fixed_costs", "anomaly_detection"), file, "")
    raw_budgets = root.get("budgets")
    if not isinstance(raw_budgets, list):
        raise ConfigError(file, "budgets", raw_budgets, "must be a list of budgets")
    budgets: list[Budget] = []
    seen: dict[str, str] = {}
    for index, raw in enumerate(raw_budgets):
        path = child_path("budgets", index)
        budget = _parse_budget(raw, file, path)
        if budget.name in seen:
            raise ConfigError(
                file,
                child_path(path, "name"),
                budget.name,
                f"duplicate budget name (first at {seen[budget.name]})",
            )
        seen[budget.name] = path
        budgets.append(budget)
    fixed = _parse_fixed_costs(root.get("fixed_costs"), file)
    anomaly = _parse_anomaly_detection(root.get("anomaly_detection"), file, "anomaly_detection")
    return BudgetFile(tuple(budgets), fixed, find_overlaps(budgets), anomaly)


def _parse_budget(raw: object, file: str, path: str) -> Budget:
    mapping = require_mapping(raw, file, path)
    _reject_renamed_keys(mapping, file, path)
    reject_unknown_keys(mapping, _BUDGET_KEYS, file, path)
    name = read_str(mapping, "name", file, path)
    if not _NAME_RE.fullmatch(name):
        raise ConfigError(
            file,
            child_path(path, "name"),
            name,
            "must be lower-case letters, digits and '-', at most 63 characters",
        )
    scope = _parse_scope(mapping.get("scope"), file, child_path(path, "scope"))
    monthly_usd = read_float(mapping, "monthly_usd", file, path, positive=True)
    thresholds = _parse_thresholds(
        mapping.get("thresholds_percent"), file, child_path(path, "thresholds_percent")
    )
    slack_channel = optional_str(mapping, "slack_channel", file, path)
    if slack_channel and not _CHANNEL_RE.fullmatch(slack_channel):
        raise ConfigError(
            file,
            child_path(path, "slack_channel"),
            slack_channel,
            "must be a Slack channel name like #team-research-alerts (lower case, starting with #)",
        )
    owners = _parse_owners(mapping.get("owners"), file, child_path(path, "owners"))
    start_month = _optional_month(mapping.get("start_month"), file, child_path(path, "start_month"))
    end_month = _optional_month(mapping.get("end_month"), file, child_path(path, "end_month"))
    if start_month is not None and end_month is not None and end_month < start_month:
        raise ConfigError(
            file,
            child_path(path, "end_month"),
            str(end_month),
            f"must not be before start_month {start_month}",
        )
    overrides = _parse_overrides(
        mapping.get("monthly_overrides"), file, child_path(path, "monthly_overrides")
    )
    for month, _amount in overrides:
        outside = (start_month is not None and month < start_month) or (
            end_month is not None and month > end_month
        )
        if outside:
            raise ConfigError(
                file,
                child_path(child_path(path, "monthly_overrides"), str(month)),
                str(month),
                "month is outside start_month..end_month",
            )
    enforce_raw = optional_str(mapping, "enforce", file, path, choices=("off", "quota")) or "off"
    enforce: EnforceMode = "quota" if enforce_raw == "quota" else "off"
    hard = optional_float(mapping, "hard_threshold_percent", file, path, positive=True, maximum=1000)
    namespaces = _parse_label_list(mapping.get("namespaces"), file, child_path(path, "namespaces"))
    resources = _budget_resources(optional_str(mapping, "resources", file, path, choices=BUDGET_RESOURCES) or "gpu")
    budget = Budget(
        name=name,
        scope=scope,
        monthly_usd=monthly_usd,
        thresholds_percent=thresholds,
        slack_channel=slack_channel,
        owners=owners,
        start_month=start_month,
        end_month=end_month,
        monthly_overrides=overrides,
        enforce=enforce,
        hard_threshold_percent=hard,
        namespaces=namespaces,
        resources=resources,
    )
    if enforce == "quota" and not budget.enforcement_namespaces():
        raise ConfigError(
            file,
            child_path(path, "enforce"),
            enforce_raw,
            "quota enforcement needs scope.namespace or a namespaces list to put the ResourceQuota in",
        )
    return budget


def _budget_resources(text: str) -> BudgetResources:
    return "node" if text == "node" else "gpu"


def _reject_renamed_keys(mapping: Mapping[str, object], file: str, path: str) -> None:
    for old, replacement in _RENAMED_BUDGET_KEYS.items():
        if old in mapping:
            raise ConfigError(file, child_path(path, old), old, f"unknown key; {replacement}")


def _parse_scope(raw: object, file: str, path: str) -> BudgetScope:
    if raw is None:
        raise ConfigError(file, path, raw, "is required (at least {team: <name>})")
    mapping = require_mapping(raw, file, path)
    reject_unknown_keys(mapping, SCOPE_KEYS, file, path)
    values: dict[str, str] = {}
    for key in SCOPE_KEYS:
        value = (
            read_str(mapping, key, file, path) if key == "team" else optional_str(mapping, key, file, path)
        )
        if value and not _LABEL_VALUE_RE.fullmatch(value):
            raise ConfigError(
                file,
                child_path(path, key),
                value,
                "must be a valid label value (letters, digits, '-', '_', '.')",
            )
        values[key] = value
    return BudgetScope(**values)


def _parse_thresholds(raw: object, file: str, path: str) -> tuple[float, ...]:
    if raw is None:
        return DEFAULT_THRESHOLDS_PERCENT
    if not isinstance(raw, list) or not raw:
        raise ConfigError(file, path, raw, "must be a non-empty list of percentages, e.g. [50, 80, 100, 125]")
    if len(raw) > MAX_THRESHOLDS_PER_BUDGET:
        # Alertmanager silences lower tiers by the rank the rule gives each threshold (0..9).
        raise ConfigError(file, path, raw, f"must list at most {MAX_THRESHOLDS_PER_BUDGET} thresholds")
    result: list[float] = []
    for index, value in enumerate(raw):
        item_path = child_path(path, index)
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1000:
            raise ConfigError(file, item_path, value, "must be a percentage greater than 0 and at most 1000")
        if result and float(value) <= result[-1]:
            raise ConfigError(file, item_path, value, "thresholds must be strictly increasing")
        if result and percent_label(float(value)) == percent_label(result[-1]):
            # The alert's `threshold` label keeps four significant digits: two tiers would be one alert.
            raise ConfigError(file, item_path, value, "must differ from the previous threshold in 4 significant digits")
        result.append(float(value))
    return tuple(result)


def _parse_owners(raw: object, file: str, path: str) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ConfigError(file, path, raw, "must be a list of e-mail addresses")
    for index, owner in enumerate(raw):
        if not isinstance(owner, str) or not _EMAIL_RE.fullmatch(owner):
            raise ConfigError(file, child_path(path, index), owner, "must be an e-mail address")
    return tuple(raw)


def _parse_label_list(raw: object, file: str, path: str) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ConfigError(file, path, raw, "must be a list of namespace names")
    for index, value in enumerate(raw):
        if not isinstance(value, str) or not _NAME_RE.fullmatch(value):
            raise ConfigError(file, child_path(path, index), value, "must be a Kubernetes namespace name")
    return tuple(raw)


def _parse_month(raw: object, file: str, path: str) -> Month:
    text = raw if isinstance(raw, str) else None
    match = _MONTH_RE.fullmatch(text) if text is not None else None
    # Year 0 has no calendar date; Month.first_day() must always work.
    if match is None or int(match.group(1)) < 1 or not 1 <= int(match.group(2)) <= 12:
        raise ConfigError(file, path, raw, "must be a month written YYYY-MM, e.g. 2026-01")
    return Month(int(match.group(1)), int(match.group(2)))


def _optional_month(raw: object, file: str, path: str) -> Month | None:
    return None if raw is None else _parse_month(raw, file, path)


def _parse_overrides(raw: object, file: str, path: str) -> tuple[tuple[Month, float], ...]:
    if raw is None:
        return ()
    mapping = require_mapping(raw, file, path)
    result: list[tuple[Month, float]] = []
    for key in mapping:
        month = _parse_month(key, file, child_path(path, key))
        amount = read_float(mapping, key, file, path)
        result.append((month, amount))
    return tuple(sorted(result))


def _parse_fixed_costs(raw: object, file: str) -> tuple[FixedCost, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ConfigError(file, "fixed_costs", raw, "must be a list of fixed costs")
    result: list[FixedCost] = []
    names: set[str] = set()
    for index, item in enumerate(raw):
        path = child_path("fixed_costs", index)
        mapping = require_mapping(item, file, path)
        reject_unknown_keys(mapping, _FIXED_KEYS, file, path)
        name = read_str(mapping, "name", file, path)
        if name in names:
            raise ConfigError(file, child_path(path, "name"), name, "duplicate fixed cost name")
        names.add(name)
        monthly_usd = read_float(mapping, "monthly_usd", file, path, positive=True)
        allocation = read_str(mapping, "allocation", file, path)
        team = allocation.removeprefix("team:")
        if allocation not in ("proportional", "even") and (
            not allocation.startswith("team:") or not _LABEL_VALUE_RE.fullmatch(team)
        ):
            raise ConfigError(
                file,
                child_path(path, "allocation"),
                allocation,
                "must be proportional, even or team:<team name>",
            )
        result.append(FixedCost(name, monthly_usd, allocation))
    return tuple(result)


def _parse_anomaly_detection(raw: object, file: str, path: str) -> AnomalyDetection | None:
    if raw is None:
        return None
    mapping = require_mapping(raw, file, path)
    reject_unknown_keys(mapping, _ANOMALY_KEYS, file, path)
    if not read_bool(mapping, "enabled", file, path, default=True):
        return None
    monitor = optional_str(mapping, "monitor", file, path, choices=("team_tag", "service")) or "team_tag"
    threshold = read_float(mapping, "threshold_usd", file, path, positive=True, maximum=1_000_000)
    frequency = optional_str(mapping, "frequency", file, path, choices=("DAILY", "WEEKLY", "IMMEDIATE")) or "DAILY"
    subscribers_path = child_path(path, "subscribers")
    raw_subscribers = mapping.get("subscribers")
    if not isinstance(raw_subscribers, list) or not raw_subscribers:
        raise ConfigError(
            file, subscribers_path, raw_subscribers, "must be a non-empty list of e-mails or SNS topic ARNs"
        )
    if len(raw_subscribers) > 10:
        raise ConfigError(file, subscribers_path, len(raw_subscribers), "AWS allows at most 10 subscribers")
    # AWS sends individual (IMMEDIATE) alerts to SNS topics only, and daily/weekly summaries to e-mail only.
    immediate = frequency == "IMMEDIATE"
    wanted, pattern = ("an SNS topic ARN", _SNS_ARN_RE) if immediate else ("an e-mail address", _EMAIL_RE)
    for index, subscriber in enumerate(raw_subscribers):
        if not isinstance(subscriber, str) or not pattern.fullmatch(subscriber):
            raise ConfigError(
                file, child_path(subscribers_path, index), subscriber, f"must be {wanted} with frequency {frequency}"
            )
    if len(set(raw_subscribers)) != len(raw_subscribers):
        raise ConfigError(file, subscribers_path, raw_subscribers, "lists a subscriber twice")
    return AnomalyDetection(
        monitor="service" if monitor == "service" else "team_tag",
        threshold_usd=threshold,
        frequency=_anomaly_frequency(frequency),
        subscribers=tuple(raw_subscribers),
    )


def _anomaly_frequency(text: str) -> AnomalyFrequency:
    if text == "IMMEDIATE":
        return "IMMEDIATE"
    return "WEEKLY" if text == "WEEKLY" else "DAILY"
