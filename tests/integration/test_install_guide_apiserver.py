"""docs/install.md's steps 2 to 5, 7 and 8 against a real kube-apiserver (see test_install_guide.py).

The guide's `kubectl create` commands go through the API, its helm command installs the chart
from a directory laid out like a checkout, kube-prometheus-stack's selectors and the templates
ConfigMap are checked against what was installed, and the guide's amtool commands run against
the configuration the Operator would generate from the installed AlertmanagerConfig.
"""

from __future__ import annotations

import base64
import contextlib
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from gpucost_testing.real_apiserver import RealApiServer
from gpucost_testing.servers import REPO_ROOT, ManagedProcess, require_binary, start_alertmanager
from gpucost_testing.slack_sink import SlackSink
from tests.integration.install_guide_doc import INSTALL_GUIDE, after_double_dash, flag_value
from tests.integration.install_guide_operator import kube_prometheus_stack_base, merge
from tests.integration.realk8s.chart_release import Helm, Manifest, get_or_none, install_operator_crds, object_path
from tests.integration.realk8s.conftest import serve
from tests.integration.test_install_guide import BLOCKS, chart_defaults, gpucost_values, promql_queries

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

KUBE_PROMETHEUS_STACK_RELEASE = "kube-prometheus-stack"
MONITORING_NAMESPACE = "monitoring"  # kube-prometheus-stack's: a prerequisite, not created by the guide
BOT_TOKEN = "xoxb-install-guide-test"
TOKEN_FILE = "slack-bot-token"
# Where the Alertmanager pod keeps its files; mapped to a directory of the test.
AM_ETC = "/etc/alertmanager/"
CONFIGMAPS_DIR = AM_ETC + "configmaps/"


def kps_alertmanager() -> dict[str, Any]:
    alertmanager: dict[str, Any] = BLOCKS["kube-prometheus-stack-values"].document()["alertmanager"]
    return alertmanager


# --- steps 2 to 5 against a real API server ----------------------------------------------------------------


@dataclass
class Installed:
    server: RealApiServer
    workdir: Path
    namespace: str
    notes: str
    manifests: list[Manifest]

    def stored(self, kind: str) -> list[Manifest]:
        found = []
        for manifest in self.manifests:
            if manifest["kind"] == kind:
                stored = get_or_none(self.server.admin, object_path(self.server.admin, manifest, self.namespace))
                assert stored is not None, f"{kind} {manifest['metadata']['name']} is not on the server"
                found.append(stored)
        return found

    def secret_value(self, namespace: str, name: str, key: str) -> str:
        secret = self.server.admin.get(f"/api/v1/namespaces/{namespace}/secrets/{name}")
        return base64.b64decode(secret["data"][key]).decode()


def _sources(arguments: list[str], cwd: Path) -> dict[str, str]:
    """`--from-file=[KEY=]PATH` and `--from-literal=KEY=VALUE`, read as kubectl reads them."""
    data: dict[str, str] = {}
    for argument in arguments:
        if argument.startswith("--from-literal="):
            key, value = argument.removeprefix("--from-literal=").split("=", 1)
        elif argument.startswith("--from-file="):
            source = argument.removeprefix("--from-file=")
            key, _, path = source.rpartition("=") if "=" in source else (Path(source).name, "", source)
            value = (cwd / path).read_text(encoding="utf-8")
        else:
            pytest.fail(f"kubectl create: no translation for {argument!r}; extend the test or the guide")
        data[key] = value
    return data


def kubectl_through_the_api(server: RealApiServer, argv: list[str], cwd: Path) -> None:
    """Do what one `kubectl create ...` line of the guide does, through the API server."""
    assert argv[0] == "kubectl", argv
    arguments, namespace = argv[1:], "default"
    if arguments[:1] == ["-n"]:
        namespace, arguments = arguments[1], arguments[2:]
    match arguments:
        case ["create", "namespace", name]:
            server.create_namespace(name)
        case ["create", "secret", "generic", name, *sources]:
            data = {key: base64.b64encode(value.encode()).decode() for key, value in _sources(sources, cwd).items()}
            server.admin.post(f"/api/v1/namespaces/{namespace}/secrets", {
                "apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "type": "Opaque", "data": data,
            })  # fmt: skip
        case ["create", "configmap", name, *sources]:
            server.admin.post(f"/api/v1/namespaces/{namespace}/configmaps", {
                "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": _sources(sources, cwd),
            })  # fmt: skip
        case _:
            pytest.fail(f"no translation for `{' '.join(argv)}`; extend the test or the guide")


def _checkout_like(workdir: Path) -> None:
    """What the guide's commands find in the user's current directory: the checkout, the token, the values."""
    (workdir / "helm").symlink_to(REPO_ROOT / "helm", target_is_directory=True)
    # As the guide writes it: a newline would end up in Alertmanager's Authorization header.
    assert f"printf '%s' \"$SLACK_BOT_TOKEN\" > {TOKEN_FILE}" in INSTALL_GUIDE.read_text(encoding="utf-8")
    (workdir / TOKEN_FILE).write_text(BOT_TOKEN, encoding="utf-8")
    values = BLOCKS["gpucost-values"]
    (workdir / values.file_name()).write_text(values.text(), encoding="utf-8")


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    for server in serve(tmp_path_factory, "install-guide-apiserver", watch_cache=True):
        install_operator_crds(server)
        server.create_namespace(MONITORING_NAMESPACE)
        workdir = tmp_path_factory.mktemp("install-guide-checkout")
        _checkout_like(workdir)
        for block in ("namespace-and-secret", "templates-configmap"):
            for argv in BLOCKS[block].commands():
                kubectl_through_the_api(server, argv, workdir)
        (command,) = BLOCKS["helm-install"].commands()
        assert command[:2] == ["helm", "install"], command
        release, namespace = command[2], command[command.index("-n") + 1]
        helm = Helm(server, workdir)
        result = subprocess.run(
            [helm.binary, *command[1:], "--kubeconfig", str(helm.kubeconfig)],
            cwd=workdir, env=helm.env, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert result.returncode == 0, f"{' '.join(command)}:\n{result.stderr}"
        yield Installed(server, workdir, namespace, result.stdout, helm.manifests(release, namespace))


def test_the_guides_helm_install_creates_every_object_on_the_api_server(installed: Installed) -> None:
    kinds = {manifest["kind"] for manifest in installed.manifests}
    assert {"DaemonSet", "Deployment", "ConfigMap", "ServiceMonitor", "PrometheusRule", "AlertmanagerConfig"} <= kinds
    for kind in kinds:
        assert installed.stored(kind)


def test_the_slack_secret_holds_what_the_sidecar_and_the_alertmanagerconfig_read(installed: Installed) -> None:
    values, defaults = gpucost_values(), chart_defaults()
    slack = {**defaults["budgets"]["slack"], **values["budgets"]["slack"]}
    secret = installed.server.admin.get(f"/api/v1/namespaces/{installed.namespace}/secrets/{slack['existingSecret']}")
    token = installed.secret_value(installed.namespace, slack["existingSecret"], slack["existingSecretKey"])
    assert token == BOT_TOKEN
    (sidecar,) = installed.stored("Deployment")
    pod = sidecar["spec"]["template"]["spec"]
    mounted = [volume["secret"] for volume in pod["volumes"] if "secret" in volume]
    mounted_keys = [(source["secretName"], item["key"]) for source in mounted for item in source.get("items", [])]
    assert (slack["existingSecret"], slack["existingSecretKey"]) in mounted_keys
    (container,) = pod["containers"]
    assert f"--slack.bot-token-file=/var/run/secrets/slack/{slack['existingSecretKey']}" in container["args"]
    # Never as an environment variable.
    for each in pod["containers"]:
        assert not [env for env in each.get("env", []) if "secretKeyRef" in env.get("valueFrom", {})]
    (amc,) = installed.stored("AlertmanagerConfig")
    references = [
        reference
        for receiver in amc["spec"]["receivers"]
        for config in receiver.get("slackConfigs", [])
        for reference in (config["apiURL"], config["httpConfig"]["authorization"]["credentials"])
    ]
    assert references
    assert {(reference["name"], reference["key"]) for reference in references} <= {
        (secret["metadata"]["name"], key) for key in secret["data"]
    }


def test_kube_prometheus_stack_selects_what_the_chart_labelled(installed: Installed) -> None:
    release_label = {"release": KUBE_PROMETHEUS_STACK_RELEASE}  # its Prometheus' default selectors
    for kind in ("ServiceMonitor", "PrometheusRule"):
        for stored in installed.stored(kind):
            assert release_label.items() <= stored["metadata"]["labels"].items(), (kind, stored["metadata"])
    spec = kps_alertmanager()["alertmanagerSpec"]
    (amc,) = installed.stored("AlertmanagerConfig")
    assert spec["alertmanagerConfigSelector"]["matchLabels"].items() <= amc["metadata"]["labels"].items()
    assert spec["alertmanagerConfigNamespaceSelector"] == {}  # the AlertmanagerConfig is in another namespace
    assert installed.namespace != MONITORING_NAMESPACE
    assert spec["alertmanagerConfigMatcherStrategy"] == {"type": "None"}


def test_the_templates_configmap_is_mounted_where_the_alertmanager_config_looks(installed: Installed) -> None:
    alertmanager = kps_alertmanager()
    (name,) = alertmanager["alertmanagerSpec"]["configMaps"]
    stored = installed.server.admin.get(f"/api/v1/namespaces/{MONITORING_NAMESPACE}/configmaps/{name}")
    assert stored["data"] == {
        "gpucost.tmpl": (REPO_ROOT / "alertmanager/templates/gpucost.tmpl").read_text(encoding="utf-8")
    }
    assert f"{CONFIGMAPS_DIR}{name}/*.tmpl" in alertmanager["config"]["templates"]


def test_the_notes_point_to_the_guide_and_its_first_promql_check(installed: Installed) -> None:
    assert "docs/install.md" in installed.notes
    checks = [line.strip() for line in installed.notes.splitlines() if line.strip() in promql_queries()]
    assert checks == ["sum by (team) (team:gpucost_cost_usd_per_hour:rate5m)"], installed.notes


# --- steps 7 and 8: Alertmanager with the Operator's view of the AlertmanagerConfig -----------------------------


def operator_generated_config(installed: Installed, directory: Path) -> Path:
    """alertmanager.env.yaml as the Operator would write it, with the pod's paths under `directory`."""
    alertmanager = kps_alertmanager()
    local_etc = directory / "etc-alertmanager"
    for name in alertmanager["alertmanagerSpec"]["configMaps"]:
        mounted = local_etc / "configmaps" / name
        mounted.mkdir(parents=True)
        stored = installed.server.admin.get(f"/api/v1/namespaces/{MONITORING_NAMESPACE}/configmaps/{name}")
        for key, text in stored["data"].items():
            (mounted / key).write_text(text, encoding="utf-8")
    templates = [path.replace(AM_ETC, f"{local_etc}/", 1) for path in alertmanager["config"]["templates"]]
    (amc,) = installed.stored("AlertmanagerConfig")
    strategy = alertmanager["alertmanagerSpec"].get("alertmanagerConfigMatcherStrategy", {}).get("type", "OnNamespace")
    config = merge(kube_prometheus_stack_base(templates), amc, installed.secret_value, matcher_strategy=strategy)
    path = directory / "alertmanager.env.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def amtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([require_binary("amtool"), *args], capture_output=True, text=True, timeout=30, check=False)


def test_amtool_in_the_alertmanager_pod_routes_the_budget_alert_to_the_teams_receiver(
    installed: Installed, tmp_path: Path
) -> None:
    config = operator_generated_config(installed, tmp_path)
    checked = amtool("check-config", str(config))
    # It parses the templates too; that gpucost.tmpl is among them shows in the test alert's message.
    assert checked.returncode == 0, checked.stdout + checked.stderr
    command = after_double_dash(BLOCKS["amtool-routes"].commands()[0])
    (amc,) = installed.stored("AlertmanagerConfig")
    team = dict(arg.split("=", 1) for arg in command if "=" in arg and not arg.startswith("-"))["team"]
    expected = f"{amc['metadata']['namespace']}/{amc['metadata']['name']}/{team}-budgets"
    assert flag_value(command, "--verify.receivers") == expected
    local = [f"--config.file={config}" if arg.startswith("--config.file=") else arg for arg in command[1:]]
    routed = amtool(*local)
    assert routed.returncode == 0, routed.stdout + routed.stderr
    assert routed.stdout.split() == [expected]


@contextlib.contextmanager
def alertmanager_posting_to(sink: SlackSink, installed: Installed, workdir: Path) -> Iterator[ManagedProcess]:
    config_path = operator_generated_config(installed, workdir)
    config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    for receiver in config["receivers"]:
        for slack in receiver.get("slack_configs", []):
            assert slack["api_url"] == "https://slack.com/api/chat.postMessage"  # from the guide's Secret
            slack["api_url"] = sink.chat_post_message_url
    config_path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    with start_alertmanager(workdir, config_path) as alertmanager:
        yield alertmanager


@pytest.mark.slow
def test_the_guides_test_alert_posts_the_budget_message_to_the_teams_channel(
    installed: Installed, tmp_path: Path
) -> None:
    command = after_double_dash(BLOCKS["test-alert"].commands()[0])
    labels = dict(arg.split("=", 1) for arg in command if "=" in arg and not arg.startswith("-"))
    with SlackSink() as sink, alertmanager_posting_to(sink, installed, tmp_path) as alertmanager:
        local = [f"--alertmanager.url={alertmanager.base_url}" if arg.startswith("--alertmanager.url=") else arg
                 for arg in command[1:]]  # fmt: skip
        added = amtool(*local)
        assert added.returncode == 0, added.stdout + added.stderr
        # The route's group_wait (30 s) comes first.
        (message,) = sink.wait_for(1, timeout=90, channel=labels["slack_channel"])
    assert message.delivered
    assert message.headers.get("Authorization") == f"Bearer {BOT_TOKEN}"
    assert message.title == f"📊 {labels['team']} Spend Alert"
    assert message.field("Monthly Budget") == "$20,000.00"
    assert message.attachments[0]["footer"] == f"gpucost · budget {labels['budget']} · 50% tier"
