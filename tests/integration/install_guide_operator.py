"""What the Prometheus Operator makes of the chart's AlertmanagerConfig, for amtool and a real Alertmanager.

There is no Operator in the tests, so this does the part of its config generation that decides
where an alert goes and what is posted, as the Operator documents it and its golden files show:

* each AlertmanagerConfig's route becomes a child of the root route, before the base config's
  own children, with `continue: true` and, unless `alertmanagerConfigMatcherStrategy.type` is
  `None` (the guide sets that), a `namespace="<its namespace>"` matcher;
* every receiver name becomes `<namespace>/<AlertmanagerConfig name>/<receiver>`;
* matchers become `name<op>"value"` strings, camelCase fields snake_case, and Secret key
  references the values the Operator reads from the Secret (it inlines them into the
  generated configuration, a Secret mounted into the Alertmanager pod).

`kube_prometheus_stack_base` is kube-prometheus-stack's default `alertmanager.config` (root
receiver "null", Watchdog to "null") with the guide's `templates`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

# (namespace, Secret name, key) -> the value, as the Operator reads it.
SecretReader = Callable[[str, str, str], str]

_ROUTE_FIELDS = ("groupBy", "groupWait", "groupInterval", "repeatInterval")


def snake_case(key: str) -> str:
    # apiURL, iconURL: the Operator's field names end in an upper-case acronym.
    key = re.sub(r"URL$", "Url", key)
    return re.sub(r"(?<!^)([A-Z])", r"_\1", key).lower()


def matcher(spec: Mapping[str, str]) -> str:
    return f"{spec['name']}{spec.get('matchType', '=')}{json.dumps(spec['value'])}"


def kube_prometheus_stack_base(templates: list[str]) -> dict[str, Any]:
    return {
        "global": {"resolve_timeout": "5m"},
        "route": {
            "group_by": ["namespace"],
            "group_wait": "30s",
            "group_interval": "5m",
            "repeat_interval": "12h",
            "receiver": "null",
            "routes": [{"receiver": "null", "matchers": ['alertname="Watchdog"']}],
        },
        "receivers": [{"name": "null"}],
        "templates": list(templates),
    }


def merge(
    base: Mapping[str, Any], amc: Mapping[str, Any], read_secret: SecretReader, *, matcher_strategy: str = "OnNamespace"
) -> dict[str, Any]:
    """`base` with one AlertmanagerConfig added the Operator's way."""
    namespace, name = amc["metadata"]["namespace"], amc["metadata"]["name"]
    prefix = f"{namespace}/{name}/"
    spec = amc["spec"]
    config: dict[str, Any] = json.loads(json.dumps(base))  # a deep copy
    top = _route(spec["route"], prefix)
    top["continue"] = True
    if matcher_strategy != "None":
        top["matchers"] = [matcher({"name": "namespace", "value": namespace}), *top.get("matchers", [])]
    config["route"]["routes"] = [top, *config["route"].get("routes", [])]
    config["receivers"] += [_receiver(receiver, prefix, namespace, read_secret) for receiver in spec["receivers"]]
    config.setdefault("inhibit_rules", []).extend(
        {
            "source_matchers": [matcher(m) for m in rule.get("sourceMatch", [])],
            "target_matchers": [matcher(m) for m in rule.get("targetMatch", [])],
            "equal": list(rule.get("equal", [])),
        }
        for rule in spec.get("inhibitRules", [])
    )
    return config


def _route(route: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    converted: dict[str, Any] = {}
    if "receiver" in route:
        converted["receiver"] = prefix + route["receiver"]
    if route.get("matchers"):
        converted["matchers"] = [matcher(m) for m in route["matchers"]]
    for field in _ROUTE_FIELDS:
        if field in route:
            converted[snake_case(field)] = route[field]
    if route.get("continue"):
        converted["continue"] = True
    if route.get("routes"):
        converted["routes"] = [_route(child, prefix) for child in route["routes"]]
    return converted


def _receiver(receiver: Mapping[str, Any], prefix: str, namespace: str, read_secret: SecretReader) -> dict[str, Any]:
    converted: dict[str, Any] = {"name": prefix + receiver["name"]}
    for kind, configs in receiver.items():
        if kind == "name":
            continue
        assert kind == "slackConfigs", f"the chart renders only Slack receivers, not {kind}"
        converted["slack_configs"] = [_slack(config, namespace, read_secret) for config in configs]
    return converted


def _slack(config: Mapping[str, Any], namespace: str, read_secret: SecretReader) -> dict[str, Any]:
    def secret(reference: Mapping[str, str]) -> str:
        return read_secret(namespace, reference["name"], reference["key"])

    converted = {snake_case(key): value for key, value in config.items() if key not in ("apiURL", "httpConfig")}
    if "apiURL" in config:
        converted["api_url"] = secret(config["apiURL"])
    authorization = config.get("httpConfig", {}).get("authorization")
    if authorization is not None:
        converted["http_config"] = {"authorization": {
            "type": authorization.get("type", "Bearer"),
            "credentials": secret(authorization["credentials"]),
        }}  # fmt: skip
    return converted
