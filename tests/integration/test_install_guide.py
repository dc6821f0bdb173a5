"""docs/install.md, tried as a new user would, as far as it can run here.

Each block the guide marks `<!-- tested: NAME -->` (tests/integration/install_guide_doc.py)
is checked here, and every marked block must have a check:

* `image`: not rebuilt (tests/integration/test_image.py does): the command is `make image`,
  whose recipe is the build script; the retag starts from the tag that script builds and pushes
  the image the values deploy.
* `namespace-and-secret`, `templates-configmap`: each `kubectl create` is done through the API
  of a real kube-apiserver (kubectl is not part of `make bootstrap`), with the same names, keys
  and file contents the command would send; any other kubectl command fails the test.
* `gpucost-values`, `helm-install`: the guide's helm command, run by the real helm from a
  directory laid out like a checkout holding the guide's values file, against that API server
  with the Prometheus Operator's CRDs; every object is accepted.
* `kube-prometheus-stack-values`: its selectors match what the chart labelled, its ConfigMap
  and template path match what the guide created.
* `amtool-routes`, `test-alert`: the command the guide runs in the Alertmanager pod runs here
  against the configuration the Operator would generate from the installed AlertmanagerConfig
  (tests/integration/install_guide_operator.py) on kube-prometheus-stack's default config; the
  test alert goes through a real Alertmanager to a local Slack sink (Slack's URL from the
  Secret is the only thing swapped).
* `promql`: every query, against a real Prometheus loaded with the chart's rule files, scraping
  the simulated exporter and the budget sidecar running the guide's budgets.

The steps run against a real API server (2 to 5, 7 and 8) are in test_install_guide_apiserver.py.
"""

from __future__ import annotations

import contextlib
import re
import sys
import tomllib
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from gpucost_testing.servers import (
    REPO_ROOT,
    ManagedProcess,
    free_port,
    prom_query,
    start_exporter,
    start_prometheus,
    wait_for,
    write_prometheus_config,
)
from tests.integration.install_guide_doc import INSTALL_GUIDE, marked_blocks
from tests.integration.realk8s.chart_release import CHART

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

BLOCKS = marked_blocks()
CHECKED = {
    "image", "namespace-and-secret", "templates-configmap", "kube-prometheus-stack-values",
    "gpucost-values", "helm-install", "promql", "amtool-routes", "test-alert",
}  # fmt: skip
SCENARIO = REPO_ROOT / "tests/fixtures/scenarios/eight_gpus_static.yaml"


def gpucost_values() -> dict[str, Any]:
    values: dict[str, Any] = BLOCKS["gpucost-values"].document()
    return values


def chart_defaults() -> dict[str, Any]:
    defaults: dict[str, Any] = yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))
    return defaults


def test_every_tested_block_of_the_guide_has_a_check() -> None:
    assert set(BLOCKS) == CHECKED


# --- step 1: the image ----------------------------------------------------------------------------------------


def test_the_image_is_built_by_make_image_and_pushed_where_the_values_point() -> None:
    make, retag, push = BLOCKS["image"].commands()
    assert make == ["make", "image"]
    recipe = re.search(r"^image:[^\n]*\n\t([^\n]+)$", (REPO_ROOT / "Makefile").read_text(encoding="utf-8"), re.M)
    assert recipe is not None and recipe.group(1) == "tests/tools/build-image.sh"
    version = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
    built = f"localhost/gpucost/gpucost:{version}"
    script = (REPO_ROOT / "tests/tools/build-image.sh").read_text(encoding="utf-8")
    assert "image=${IMAGE:-localhost/gpucost/gpucost:$version}" in script
    image = gpucost_values()["image"]
    deployed = f"{image['registry']}/{image['repository']}:{image['tag']}"
    assert retag == ["podman", "tag", built, deployed]
    assert push == ["podman", "push", deployed]
    assert image["tag"] == yaml.safe_load((CHART / "Chart.yaml").read_text(encoding="utf-8"))["appVersion"]


# --- step 6: the PromQL checks ----------------------------------------------------------------------------------


def promql_queries() -> list[str]:
    queries = []
    for argv in BLOCKS["promql"].commands():
        assert argv[:3] == ["curl", "-s", "localhost:9090/api/v1/query"], argv
        queries.append(argv[argv.index("--data-urlencode") + 1].removeprefix("query="))
    return queries


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ManagedProcess]:
    """The chart's rules in a real Prometheus scraping the simulated exporter and the guide's budget sidecar."""
    workdir = tmp_path_factory.mktemp("install-guide-prometheus")
    budgets = workdir / "budgets.yaml"
    budgets.write_text(yaml.safe_dump(gpucost_values()["budgets"]["spec"]), encoding="utf-8")
    with contextlib.ExitStack() as stack:
        exporter = stack.enter_context(start_exporter(workdir, [
            "--nvml.backend=simulated", f"--simulate.scenario={SCENARIO}", "--simulate.speed=60",
            f"--state.file={workdir / 'state.json'}", "--sample.interval=1s",
        ]))  # fmt: skip
        port = free_port()
        sidecar = ManagedProcess("gpucost-budgets", [
            sys.executable, "-m", "gpucost.budgets.cli", "serve",
            f"--budgets.file={budgets}", f"--web.listen-address=127.0.0.1:{port}",
        ], workdir / "sidecar.log", port=port).start()  # fmt: skip
        stack.enter_context(sidecar)
        sidecar.wait_http("/metrics", timeout=30)
        config = write_prometheus_config(
            workdir / "prometheus.yml",
            scrape_targets=[f"127.0.0.1:{exporter.port}"],
            scrape_interval="2s",
            evaluation_interval="2s",
            job_name=chart_defaults()["exporter"]["scrapeJobName"],
            target_labels={"node": "sim-node"},  # the ServiceMonitor's relabeling in a cluster
            rule_files=sorted((CHART / "files" / "rules").glob("*.yaml")),
            extra_scrape_configs=[{
                "job_name": "gpucost-budgets", "scrape_interval": "2s", "honor_labels": True,
                "static_configs": [{"targets": [f"127.0.0.1:{port}"]}],
            }],
        )  # fmt: skip
        yield stack.enter_context(start_prometheus(workdir, config))


@pytest.mark.parametrize("query", promql_queries())
def test_a_promql_check_of_the_guide_answers_with_data(prometheus: ManagedProcess, query: str) -> None:
    wait_for(lambda: prom_query(prometheus, query), timeout=60, what=query)


def test_the_chart_readme_links_the_guide() -> None:
    readme = (CHART / "README.md").read_text(encoding="utf-8")
    assert "(../../docs/install.md)" in readme
    assert (CHART / "../../docs/install.md").resolve() == INSTALL_GUIDE
