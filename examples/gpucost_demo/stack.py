"""Start the demo's servers on 127.0.0.1 and wire them together.

fake kubelet + fake API server (`KubeHarness`: the simulated node as Kubernetes
shows it) -> exporter (simulated NVML, `--kubernetes.enabled`) -> Prometheus
(all rules, 5 s evaluation) -> Alertmanager (generated bot-mode config) -> local
Slack sink; the budget sidecar publishes the budgets Prometheus scrapes.  With
`scale`, Prometheus also remote-writes to VictoriaMetrics and vmalert evaluates
the same rules there.  With `kubernetes` off, the exporter reads the pods from
the scenario directly, without the fakes.
"""

from __future__ import annotations

import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from gpucost.alerting import DeliveryMode, Settings, Timings, render_config
from gpucost.rulegen import GENERATED_FILES, RuleOptions, write_rule_files
from gpucost.sources.scenario import load_scenario
from gpucost_demo.alert_receiver import AlertReceiver
from gpucost_testing.processes import ChildProcess, StartupFailed, require_binary, stop_all
from gpucost_testing.slack_sink import SlackSink

if TYPE_CHECKING:
    from gpucost_testing.kube_harness import KubeHarness

__all__ = ["DEMO_RULE_OPTIONS", "DemoPorts", "DemoStack", "StackSettings", "default_repo_dir"]

# The committed rules integrate month-to-date spend in 5-minute tiles, so spend shows
# up to 5 minutes late.  The demo regenerates them with 30 s tiles (and a 15 s `for`
# on the budget tiers) so an alert arrives within about two minutes of crossing.
DEMO_RULE_OPTIONS = RuleOptions(rate_window="30s", budget_for="15s")
# Files rulegen writes; every other rules/*.yaml is loaded as committed.
DEMO_TIMINGS = Timings(
    group_wait="2s",
    group_interval="10s",
    repeat_interval="4h",
    budget_repeat_interval={"50": "4h", "80": "4h", "100": "4h", "125": "4h"},
)
PACKAGE_DIR = Path(__file__).resolve().parent


def default_repo_dir() -> Path:
    """The checkout the demo runs from (examples/gpucost_demo/): holds rules/ and alertmanager/."""
    return PACKAGE_DIR.parents[1]


@dataclass(frozen=True)
class DemoPorts:
    """0 means: any free port."""

    exporter: int = 0
    prometheus: int = 0
    alertmanager: int = 0
    budgets: int = 0
    victoria_metrics: int = 0
    vmalert: int = 0


@dataclass(frozen=True)
class StackSettings:
    workdir: Path
    rules_dir: Path
    templates_dir: Path
    scenario_file: Path = PACKAGE_DIR / "scenario.yaml"
    budgets_file: Path = PACKAGE_DIR / "budgets.yaml"
    exporter_config_file: Path = PACKAGE_DIR / "exporter.yaml"
    speed: float = 120.0
    scale: bool = False
    # Attribute through the fake kubelet and API server, as in a cluster (False: the scenario directly).
    kubernetes: bool = True
    ports: DemoPorts = field(default_factory=DemoPorts)


@dataclass
class DemoStack:
    """The running demo; `start()` brings everything up in dependency order, `stop()` takes it down."""

    settings: StackSettings
    ports: DemoPorts
    slack: SlackSink = field(default_factory=SlackSink)
    vmalert_alerts: AlertReceiver = field(default_factory=AlertReceiver)
    children: list[ChildProcess] = field(default_factory=list)
    harness: KubeHarness | None = None
    node_name: str = ""
    rule_files: list[Path] = field(default_factory=list)

    def child(self, name: str) -> ChildProcess:
        for child in self.children:
            if child.name == name:
                return child
        raise KeyError(name)

    @property
    def prometheus_url(self) -> str:
        return self.child("prometheus").url

    def start(self) -> None:
        workdir = self.settings.workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.node_name = load_scenario(self.settings.scenario_file).node_name
        self.slack.start()
        self.rule_files = self._write_rules(workdir / "rules")
        shutil.copyfile(self.settings.budgets_file, workdir / "budgets.yaml")
        self._start_exporter()
        self._start_alertmanager()
        if self.settings.scale:
            self._start_victoria_metrics()
        self._start_prometheus()
        self._start_budgets_sidecar()
        if self.settings.scale:
            self.vmalert_alerts.start()
            self._start_vmalert()

    def stop(self) -> None:
        try:
            stop_all(self.children)
        finally:
            # After the exporter: it would log every failed kubelet poll and watch in between.
            if self.harness is not None:
                self.harness.stop()
                self.harness = None
            self.slack.stop()
            self.vmalert_alerts.stop()

    def exited(self) -> ChildProcess | None:
        """The first child that is no longer running, if any."""
        for child in self.children:
            if not child.alive():
                return child
        return None

    # --- components -------------------------------------------------------------

    def _launch(self, name: str, argv: list[str], port: int, ready_path: str, timeout: float = 60.0) -> ChildProcess:
        child = ChildProcess(name, argv, self.settings.workdir / f"{name}.log", port,
                             env={"SLACK_BOT_TOKEN": "", "PYTHONUNBUFFERED": "1"})
        self.children.append(child.start())
        child.wait_ready(ready_path, timeout)
        return child

    def _write_rules(self, out_dir: Path) -> list[Path]:
        out_dir.mkdir(parents=True, exist_ok=True)
        # Every generated file at the demo's rate window (recorded names carry it), plus any hand-written file.
        files = list(write_rule_files(DEMO_RULE_OPTIONS, out_dir))
        for path in sorted(self.settings.rules_dir.glob("*.yaml")):
            if path.name not in GENERATED_FILES:
                files.append(Path(shutil.copyfile(path, out_dir / path.name)))
        return files

    def _start_node(self) -> KubeHarness:
        """The fake kubelet and API server, on the clock the exporter's simulated NVML will run."""
        # Imported here: gRPC is the `k8s` extra, which `--no-kubernetes` does not need.
        from gpucost_testing.kube_harness import KubeHarness

        try:
            self.harness = KubeHarness(
                self.settings.scenario_file,
                self.settings.workdir / "node",
                node_name=self.node_name,
                start_time=time.time(),
                speed=self.settings.speed,
                # The demo's workdir may be long (a pytest tmp_path); a unix socket path may not.
                socket_in_temp_dir=True,
                # The demo's pricing (the GPUs' share of the node price); the harness writes the kubernetes part.
                config_extra=self._exporter_config(),
            )
            return self.harness.start()  # stop() takes it down even when this fails half way
        except (OSError, RuntimeError, ValueError) as err:
            raise StartupFailed(f"the fake kubelet and API server did not start: {err}") from err

    def _exporter_config(self) -> dict[str, Any]:
        loaded = yaml.safe_load(self.settings.exporter_config_file.read_text(encoding="utf-8"))
        return dict(loaded) if isinstance(loaded, dict) else {}

    def _start_exporter(self) -> None:
        workdir = self.settings.workdir
        if self.settings.kubernetes:
            source_args = self._start_node().exporter_args()
        else:
            source_args = [
                # The pricing section: the GPUs' share of the node price, so CPU and memory cost something.
                f"--config.file={self.settings.exporter_config_file}",
                "--nvml.backend=simulated",
                f"--simulate.scenario={self.settings.scenario_file}",
                f"--simulate.speed={self.settings.speed:g}",
                f"--state.file={workdir / 'exporter-state.json'}",
            ]
        argv = [
            sys.executable, "-m", "gpucost.cli.exporter",
            f"--web.listen-address=127.0.0.1:{self.ports.exporter}",
            *source_args,
            "--sample.interval=1s",
        ]
        self._launch("exporter", argv, self.ports.exporter, "/healthz")

    def _start_budgets_sidecar(self) -> None:
        argv = [
            sys.executable, "-m", "gpucost.budgets.cli", "serve",
            f"--budgets.file={self.settings.workdir / 'budgets.yaml'}",
            f"--web.listen-address=127.0.0.1:{self.ports.budgets}",
            f"--prometheus.url={self.prometheus_url}",
        ]
        self._launch("budgets-sidecar", argv, self.ports.budgets, "/metrics")

    def _start_alertmanager(self) -> None:
        workdir = self.settings.workdir
        secrets = workdir / "secrets"
        secrets.mkdir(exist_ok=True)
        (secrets / "slack-bot-token").write_text("xoxb-gpucost-demo\n")
        config = render_config(
            Settings(
                mode=DeliveryMode.BOT,
                secrets_dir=str(secrets),
                templates_dir=str(self.settings.templates_dir),
                slack_api_url=self.slack.chat_post_message_url,
                timings=DEMO_TIMINGS,
            )
        )
        config_file = workdir / "alertmanager.yml"
        config_file.write_text(config)
        argv = [
            require_binary("prometheus-alertmanager"),
            f"--config.file={config_file}",
            f"--storage.path={workdir / 'alertmanager-data'}",
            f"--web.listen-address=127.0.0.1:{self.ports.alertmanager}",
            "--cluster.listen-address=",
        ]
        self._launch("alertmanager", argv, self.ports.alertmanager, "/-/ready")

    def _prometheus_config(self) -> dict[str, Any]:
        config: dict[str, Any] = {
            "global": {"scrape_interval": "5s", "evaluation_interval": "5s"},
            "rule_files": [str(path) for path in self.rule_files],
            "alerting": {
                "alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{self.ports.alertmanager}"]}]}]
            },
            "scrape_configs": [
                {
                    "job_name": "gpucost-exporter",
                    # The exporter adds no node label: the target carries it, as relabeling does in a cluster.
                    "static_configs": [{
                        "targets": [f"127.0.0.1:{self.ports.exporter}"],
                        "labels": {"node": self.node_name, "node_pool": "gpu-a100"},
                    }],
                },
                {
                    "job_name": "gpucost-budgets",
                    "honor_labels": True,
                    "static_configs": [{"targets": [f"127.0.0.1:{self.ports.budgets}"]}],
                },
            ],
        }
        if self.settings.scale:
            config["remote_write"] = [{
                "url": f"http://127.0.0.1:{self.ports.victoria_metrics}/api/v1/write",
                # vmalert computes the recorded series and alerts there from the raw series.
                "write_relabel_configs": [
                    {"source_labels": ["__name__"], "regex": ".+:.+|ALERTS|ALERTS_FOR_STATE", "action": "drop"}
                ],
            }]
        return config

    def _start_prometheus(self) -> None:
        workdir = self.settings.workdir
        config_file = workdir / "prometheus.yml"
        config_file.write_text(yaml.safe_dump(self._prometheus_config(), sort_keys=False))
        argv = [
            require_binary("prometheus"),
            f"--config.file={config_file}",
            f"--storage.tsdb.path={workdir / 'prometheus-data'}",
            "--storage.tsdb.retention.time=1d",
            f"--web.listen-address=127.0.0.1:{self.ports.prometheus}",
        ]
        self._launch("prometheus", argv, self.ports.prometheus, "/-/ready")

    def _start_victoria_metrics(self) -> None:
        argv = [
            require_binary("victoria-metrics"),
            f"-httpListenAddr=127.0.0.1:{self.ports.victoria_metrics}",
            f"-storageDataPath={self.settings.workdir / 'victoria-metrics-data'}",
            "-retentionPeriod=1d",
            # Raw samples are 5 s apart; without this, queries would dedupe or search 5m back.
            "-search.latencyOffset=0s",
        ]
        self._launch("victoria-metrics", argv, self.ports.victoria_metrics, "/health")

    def _start_vmalert(self) -> None:
        vm_url = f"http://127.0.0.1:{self.ports.victoria_metrics}"
        argv = [
            require_binary("vmalert"),
            *[f"-rule={path}" for path in self.rule_files],
            f"-datasource.url={vm_url}",
            f"-remoteWrite.url={vm_url}",
            f"-remoteRead.url={vm_url}",
            "-evaluationInterval=5s",
            f"-httpListenAddr=127.0.0.1:{self.ports.vmalert}",
            # Not Alertmanager: vmalert adds an `alertgroup` label, so Slack would get every alert twice.
            f"-notifier.url={self.vmalert_alerts.url}",
        ]
        self._launch("vmalert", argv, self.ports.vmalert, "/-/ready")
