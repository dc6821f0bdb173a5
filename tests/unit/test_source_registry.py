"""The source registry names every health collector, and the docs, the flags and the providers agree with it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gpucost.attribution import (
    ScenarioAllocationProvider,
    ScenarioMetadataProvider,
    ScenarioPidOwners,
    StaticAllocationProvider,
    StaticMetadataProvider,
)
from gpucost.cli.exporter import build_parser
from gpucost.config import parse_config
from gpucost.errors import ConfigError
from gpucost.kube import ApiServerMetadataProvider
from gpucost.sources.podresources.provider import PodResourcesAllocationProvider
from gpucost.sources.procfs import ProcfsPidOwners
from gpucost.sources.registry import SOURCES, Setting, collector_names, render_health_rows, source_for

KUBERNETES_DOC = Path(__file__).resolve().parents[2] / "docs" / "kubernetes.md"
ALL_SETTINGS = sorted({setting for source in SOURCES for setting in source.settings}, key=lambda s: s.key)


def _collector_rows(doc: str) -> str:
    return "".join(line + "\n" for line in doc.splitlines()
                   if line.startswith("| `gpucost_exporter_collector_success{collector="))


def test_the_health_table_in_the_kubernetes_docs_is_the_registry() -> None:
    committed = _collector_rows(KUBERNETES_DOC.read_text(encoding="utf-8"))
    assert committed == render_health_rows(), (
        "regenerate the rows of docs/kubernetes.md's health table: python -m gpucost.sources.registry")


def test_each_collector_name_belongs_to_one_source() -> None:
    names = collector_names()
    assert len(set(names)) == len(names)
    for name in names:
        assert source_for(name).collector == name
    with pytest.raises(KeyError, match="register it"):
        source_for("kubernetes")


def _flags() -> set[str]:
    return {option for action in build_parser()._actions for option in action.option_strings}


@pytest.mark.parametrize("setting", [s for s in ALL_SETTINGS if s.flag], ids=lambda s: s.flag)
def test_every_flag_a_source_declares_is_a_flag_of_the_exporter(setting: Setting) -> None:
    assert setting.flag in _flags()


def _nested(key: str) -> object:
    """{"kubernetes": {"host_proc": None}} for "kubernetes.host_proc": the key present, its value left unset."""
    raw: object = None
    for part in reversed(key.split(".")):
        raw = {part: raw}
    return raw


@pytest.mark.parametrize("setting", ALL_SETTINGS, ids=lambda s: s.key)
def test_every_config_key_a_source_declares_is_accepted_by_the_config_file(setting: Setting) -> None:
    parse_config(_nested(setting.key), "exporter.yaml")


def test_an_undeclared_config_key_is_what_the_check_above_would_catch() -> None:
    with pytest.raises(ConfigError, match="unknown key"):
        parse_config(_nested("kubernetes.proc_root"), "exporter.yaml")


@pytest.mark.parametrize("provider", [
    StaticAllocationProvider, StaticMetadataProvider, ScenarioAllocationProvider, ScenarioMetadataProvider,
    ScenarioPidOwners, ProcfsPidOwners, PodResourcesAllocationProvider, ApiServerMetadataProvider,
], ids=lambda cls: cls.__name__)
def test_every_provider_reports_under_a_registered_collector(provider: Any) -> None:
    assert provider.name in collector_names()


def test_only_the_checkpoint_is_not_a_readiness_source() -> None:
    assert [source.collector for source in SOURCES if not source.feeds_metrics] == ["state"]
