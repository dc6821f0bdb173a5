"""The overrides file: strict format, reloaded only when it changes, a bad file never replaces good prices."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import pytest

from gpucost.errors import ConfigError
from gpucost.model import GpuDevice, NodeInfo
from gpucost.pricing import OverridesFile, PriceBook, parse_overrides, parse_pricing_settings

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "pricing"
P4D = NodeInfo(
    labels={"node.kubernetes.io/instance-type": "p4d.24xlarge", "topology.kubernetes.io/region": "us-east-1"}
)
A100_40 = GpuDevice(uuid="GPU-a", index="0", model="NVIDIA A100-SXM4-40GB")


def overrides_yaml(on_demand: float) -> str:
    return (
        "prices:\n"
        "  - cloud: aws\n"
        "    region: us-east-1\n"
        "    instance_type: p4d.24xlarge\n"
        f"    on_demand_usd_per_hour: {on_demand}\n"
        "    source: https://pricing.us-east-1.amazonaws.com/offers/v1.0/aws/AmazonEC2/current/index.json\n"
        "    as_of: '2026-11-28T06:00:00Z'\n"
    )


def write(path: Path, text: str) -> None:
    """Write and move the mtime forward so a same-size rewrite is seen even on coarse-mtime filesystems."""
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text, encoding="utf-8")
    os.utime(path, ns=(before + 1_000_000_000, before + 1_000_000_000))


def test_price_sync_fixture_parses_into_prices_by_cloud_region_and_type() -> None:
    overrides = OverridesFile(FIXTURES / "overrides_price_sync.yaml")
    assert overrides.reload_if_changed() is True
    price = overrides.prices.get("aws", "us-east-1", "p4d.24xlarge")
    assert price is not None
    assert price.on_demand_usd_per_hour == 21.96
    assert price.spot_usd_per_hour == 12.5
    assert overrides.prices.generated_by == "gpucost-budgets price-sync"
    assert overrides.prices.generated_at == "2026-11-28T06:00:00Z"


def test_unchanged_file_is_not_re_read(tmp_path: Path) -> None:
    path = tmp_path / "prices.yaml"
    write(path, overrides_yaml(30.0))
    overrides = OverridesFile(path)
    assert overrides.reload_if_changed() is True
    assert overrides.reload_if_changed() is False


def test_changed_file_replaces_the_prices(tmp_path: Path) -> None:
    path = tmp_path / "prices.yaml"
    write(path, overrides_yaml(30.0))
    overrides = OverridesFile(path)
    overrides.reload_if_changed()
    write(path, overrides_yaml(28.0))
    assert overrides.reload_if_changed() is True
    price = overrides.prices.get("aws", "us-east-1", "p4d.24xlarge")
    assert price is not None
    assert price.on_demand_usd_per_hour == 28.0


def test_bad_new_file_keeps_the_last_good_prices_and_logs_one_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "prices.yaml"
    write(path, overrides_yaml(30.0))
    overrides = OverridesFile(path)
    overrides.reload_if_changed()
    write(path, overrides_yaml(-30.0))
    with caplog.at_level(logging.ERROR, logger="gpucost.pricing.overrides"):
        assert overrides.reload_if_changed() is False
        assert overrides.reload_if_changed() is False  # polled again: same broken file, no second line
    price = overrides.prices.get("aws", "us-east-1", "p4d.24xlarge")
    assert price is not None
    assert price.on_demand_usd_per_hour == 30.0
    errors = [record.getMessage() for record in caplog.records if record.levelno == logging.ERROR]
    assert len(errors) == 1
    assert f"{path}: prices[0].on_demand_usd_per_hour: must not be negative (got -30.0)" in errors[0]
    assert overrides.last_error is not None
    assert overrides.last_error.key_path == "prices[0].on_demand_usd_per_hour"


def test_missing_file_means_no_overrides_until_the_sidecar_writes_one(tmp_path: Path) -> None:
    path = tmp_path / "prices.yaml"
    overrides = OverridesFile(path)
    assert overrides.reload_if_changed() is False
    assert overrides.prices.prices == {}
    write(path, overrides_yaml(30.0))
    assert overrides.reload_if_changed() is True


def test_bad_as_of_date_is_a_config_error_naming_its_key_path() -> None:
    overrides = OverridesFile(FIXTURES / "overrides_bad_as_of.yaml")
    assert overrides.reload_if_changed() is False
    assert overrides.last_error is not None
    assert overrides.last_error.key_path == "prices[0].as_of"
    assert overrides.last_error.value == "last tuesday"


@pytest.mark.parametrize(
    ("entry", "key_path"),
    [
        pytest.param({"source": None}, "prices[0].source", id="source missing"),
        pytest.param({"as_of": "2026-11-28T06:00:00"}, "prices[0].as_of", id="timestamp without timezone"),
        pytest.param({"cloud": "oracle"}, "prices[0].cloud", id="unknown cloud"),
        pytest.param(
            {"instance_type": "x9.huge"},
            "prices[0].gpu_model",
            id="type unknown to the catalog without gpu model",
        ),
        pytest.param(
            {"instance_type": "x9.huge", "gpu_model": "H100-80GB"},
            "prices[0].gpu_count",
            id="type unknown to the catalog without gpu count",
        ),
        pytest.param({"price": 3}, "prices[0].price", id="unknown key"),
    ],
)
def test_invalid_override_entry_is_rejected_with_its_key_path(
    entry: dict[str, object], key_path: str
) -> None:
    price: dict[str, object] = {
        "cloud": "aws",
        "region": "us-east-1",
        "instance_type": "p4d.24xlarge",
        "on_demand_usd_per_hour": 30.0,
        "source": "https://pricing.us-east-1.amazonaws.com/",
        "as_of": "2026-11-28T06:00:00Z",
    }
    price.update(entry)
    with pytest.raises(ConfigError) as caught:
        parse_overrides({"prices": [{k: v for k, v in price.items() if v is not None}]}, "prices.yaml")
    assert caught.value.key_path == key_path


def test_price_book_reload_brings_new_prices_and_drops_cached_quotes(tmp_path: Path) -> None:
    path = tmp_path / "prices.yaml"
    shutil.copy(FIXTURES / "overrides_price_sync.yaml", path)
    book = PriceBook.from_settings(parse_pricing_settings({"overrides_file": str(path)}, "exporter.yaml"))
    assert book.quote(P4D, A100_40, 8).price_per_hour_usd == pytest.approx(21.96 / 8)
    assert book.reload_overrides_if_changed() is False
    write(path, overrides_yaml(24.0))
    assert book.reload_overrides_if_changed() is True
    assert book.quote(P4D, A100_40, 8).price_per_hour_usd == pytest.approx(24.0 / 8)
    write(path, "prices: [\n")
    assert book.reload_overrides_if_changed() is False
    assert book.quote(P4D, A100_40, 8).price_per_hour_usd == pytest.approx(24.0 / 8)
