"""The config's pricing and workload-label sections are parsed once, kept typed, and fail as before."""

from __future__ import annotations

import pytest

from gpucost.config import ExporterConfig, parse_config
from gpucost.errors import ConfigError
from gpucost.pricing.settings import PricingSettings
from gpucost.sources.workload_labels import DEFAULT_WORKLOAD_LABEL_CONFIG


def test_the_pricing_section_comes_back_as_typed_settings_carrying_the_file() -> None:
    config = parse_config({"pricing": {"cloud": "aws", "gpu_share_of_node_price": 0.9}}, "exporter.yaml")
    assert config.pricing.cloud == "aws"
    assert config.pricing.gpu_share_of_node_price == 0.9
    assert config.pricing.config_file == "exporter.yaml", "relative overrides files resolve next to the config"


def test_the_workload_labels_section_comes_back_as_a_typed_mapping_in_its_order() -> None:
    raw = {"workload_labels": {"namespace_fallback": False,
                               "labels": {"team": ["team", "squad"], "cost_center": "cost-center"}}}
    labels = parse_config(raw, "exporter.yaml").workload_labels
    assert labels.label_names == ("team", "cost_center")
    assert labels.namespace_fallback is False


def test_absent_sections_are_the_defaults_whether_parsed_or_built() -> None:
    parsed = parse_config({}, "")
    assert parsed.pricing == PricingSettings() == ExporterConfig().pricing
    assert parsed.workload_labels is DEFAULT_WORKLOAD_LABEL_CONFIG
    assert ExporterConfig().workload_labels is DEFAULT_WORKLOAD_LABEL_CONFIG


@pytest.mark.parametrize(("raw", "key", "value"), [
    ({"pricing": {"gpu_models": {"A100-80GB": -2.5}}}, "pricing.gpu_models", "-2.5"),
    ({"pricing": ["aws"]}, "pricing", "['aws']"),
    ({"workload_labels": {"labels": {"pod": ["team"]}}}, "workload_labels.labels", "pod"),
    ({"workload_labels": "team"}, "workload_labels", "team"),
])
def test_a_bad_section_names_the_file_the_key_and_the_value(raw: dict[str, object], key: str, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(raw, "exporter.yaml")
    line = caught.value.one_line()
    assert line.startswith(f"exporter.yaml: {key}"), line
    assert value in line


def test_the_other_sections_are_still_checked_before_pricing_and_workload_labels() -> None:
    bad_labels = {"labels": {"pod": ["team"]}}
    raw = {"kubernetes": {"enabled": "yes"}, "pricing": {"cloud": "mars"}, "workload_labels": bad_labels}
    with pytest.raises(ConfigError, match=r"kubernetes\.enabled"):
        parse_config(raw, "exporter.yaml")
    with pytest.raises(ConfigError, match=r"pricing\.cloud"):
        parse_config({"pricing": {"cloud": "mars"}, "workload_labels": bad_labels}, "exporter.yaml")
