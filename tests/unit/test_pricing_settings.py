"""The config's `pricing:` section: defaults, and errors that name file, key path and value."""

from __future__ import annotations

import pytest

from gpucost.errors import ConfigError
from gpucost.pricing import parse_pricing_settings, validate_gpu_models_priced
from gpucost.pricing.settings import Commitment, InstanceTypePrice

FILE = "/etc/gpucost/exporter.yaml"


def test_absent_section_gives_catalog_pricing_with_whole_node_split_and_model_fallback() -> None:
    settings = parse_pricing_settings(None, FILE)
    assert settings.gpu_share_of_node_price == 1.0
    assert settings.allow_model_fallback is True
    assert settings.cloud is None
    assert settings.commitment is None
    assert settings.config_file == FILE


def test_full_section_parses_into_typed_values_with_model_keys_normalised() -> None:
    settings = parse_pricing_settings(
        {
            "cloud": "aws",
            "region": "us-east-1",
            "capacity_type": "spot",
            "gpu_share_of_node_price": 0.9,
            "commitment": {"kind": "savings_plan", "discount_percent": 30},
            "spot_discount_percent": 70,
            "overrides_file": "/var/lib/gpucost/prices.yaml",
            "allow_model_fallback": False,
            "instance_types": {
                "dgx-a100": {
                    "on_demand_usd_per_hour": 24,
                    "gpu_model": "NVIDIA A100-SXM4-80GB",
                    "gpu_count": 8,
                }
            },
            "gpu_models": {"NVIDIA H100 80GB HBM3": 2.5, "B200": 6},
            "on_prem": {
                "purchase_price_usd": 240000,
                "amortization_months": 36,
                "watts": 6500,
                "usd_per_kwh": 0.12,
                "pue": 1.4,
                "overhead_usd_per_month": 1000,
                "gpus_per_node": 8,
            },
            "required_gpu_models": ["H100-80GB", "B200"],
        },
        FILE,
    )
    assert settings.cloud == "aws"
    assert settings.capacity_type == "spot"
    assert settings.commitment == Commitment("savings_plan", 30.0)
    assert settings.instance_types == {"dgx-a100": InstanceTypePrice(24.0, "A100-80GB", 8, None)}
    assert settings.gpu_models == {"H100-80GB": 2.5, "B200": 6.0}
    assert settings.on_prem is not None
    assert settings.on_prem.amortization_months == 36
    assert settings.required_gpu_models == ("H100-80GB", "B200")


@pytest.mark.parametrize(
    ("section", "key_path", "value"),
    [
        pytest.param({"colud": "aws"}, "pricing.colud", "colud", id="unknown key"),
        pytest.param({"cloud": "ibm"}, "pricing.cloud", "ibm", id="unknown cloud"),
        pytest.param(
            {"capacity_type": "preemptible"},
            "pricing.capacity_type",
            "preemptible",
            id="capacity type outside on_demand and spot",
        ),
        pytest.param(
            {"gpu_share_of_node_price": 1.5}, "pricing.gpu_share_of_node_price", 1.5, id="gpu share above one"
        ),
        pytest.param(
            {"gpu_share_of_node_price": 0}, "pricing.gpu_share_of_node_price", 0, id="gpu share zero"
        ),
        pytest.param(
            {"commitment": {"kind": "lease", "discount_percent": 20}},
            "pricing.commitment.kind",
            "lease",
            id="commitment kind unknown",
        ),
        pytest.param(
            {"commitment": {"kind": "cud", "discount_percent": 120}},
            "pricing.commitment.discount_percent",
            120,
            id="commitment over 100 percent",
        ),
        pytest.param(
            {"commitment": {"discount_percent": 20}},
            "pricing.commitment.kind",
            None,
            id="commitment without kind",
        ),
        pytest.param(
            {"spot_discount_percent": -10}, "pricing.spot_discount_percent", -10, id="negative spot discount"
        ),
        pytest.param(
            {"allow_model_fallback": "yes"},
            "pricing.allow_model_fallback",
            "yes",
            id="fallback flag not a boolean",
        ),
        pytest.param(
            {"instance_types": {"dgx-a100": {"on_demand_usd_per_hour": -24}}},
            "pricing.instance_types.dgx-a100.on_demand_usd_per_hour",
            -24,
            id="negative node price",
        ),
        pytest.param(
            {"instance_types": {"dgx-a100": {"on_demand_usd_per_hour": 24, "gpus": 8}}},
            "pricing.instance_types.dgx-a100.gpus",
            "gpus",
            id="unknown instance type key",
        ),
        pytest.param(
            {"instance_types": {"dgx-a100": {"on_demand_usd_per_hour": 24, "gpu_count": 0}}},
            "pricing.instance_types.dgx-a100.gpu_count",
            0,
            id="zero gpu count",
        ),
        pytest.param(
            {"gpu_models": {"A100-80GB": -1.0}},
            "pricing.gpu_models.A100-80GB",
            -1.0,
            id="negative gpu model price",
        ),
        pytest.param(
            {"gpu_models": {"L4": "cheap"}},
            "pricing.gpu_models.L4",
            "cheap",
            id="non-numeric gpu model price",
        ),
        pytest.param(
            {"gpu_models": {"L4": True}}, "pricing.gpu_models.L4", True, id="boolean gpu model price"
        ),
        pytest.param(
            {
                "on_prem": {
                    "purchase_price_usd": 240000,
                    "amortization_months": "36 months",
                    "watts": 6500,
                    "usd_per_kwh": 0.12,
                }
            },
            "pricing.on_prem.amortization_months",
            "36 months",
            id="amortization months not a number",
        ),
        pytest.param(
            {"on_prem": {"purchase_price_usd": 240000, "amortization_months": 36, "usd_per_kwh": 0.12}},
            "pricing.on_prem.watts",
            None,
            id="on-prem without watts",
        ),
        pytest.param(
            {
                "on_prem": {
                    "purchase_price_usd": 240000,
                    "amortization_months": 36,
                    "watts": 6500,
                    "usd_per_kwh": 0.12,
                    "pue": 0.8,
                }
            },
            "pricing.on_prem.pue",
            0.8,
            id="pue below one",
        ),
        pytest.param(
            {"required_gpu_models": "A100-80GB"},
            "pricing.required_gpu_models",
            "A100-80GB",
            id="required models not a list",
        ),
        pytest.param(["cloud", "aws"], "pricing", ["cloud", "aws"], id="section not a mapping"),
    ],
)
def test_bad_pricing_value_is_a_config_error_naming_file_key_path_and_value(
    section: object, key_path: str, value: object
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_pricing_settings(section, FILE)
    assert caught.value.file == FILE
    assert caught.value.key_path == key_path
    assert caught.value.value == value
    assert str(caught.value).startswith(f"{FILE}: {key_path}:")


def test_required_gpu_model_without_any_price_is_a_missing_price_error() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_pricing_settings({"required_gpu_models": ["A100-80GB", "NVIDIA B200"]}, FILE)
    assert caught.value.key_path == "pricing.gpu_models.B200"
    assert "missing price for GPU model B200" in str(caught.value)


def test_required_gpu_model_without_reference_price_needs_a_configured_price() -> None:
    with pytest.raises(ConfigError, match="missing price for GPU model A30"):
        parse_pricing_settings({"required_gpu_models": ["A30"]}, FILE)
    settings = parse_pricing_settings({"required_gpu_models": ["A30"], "gpu_models": {"A30": 1.1}}, FILE)
    assert settings.gpu_models["A30"] == 1.1


def test_reference_prices_do_not_count_as_priced_when_model_fallback_is_off() -> None:
    with pytest.raises(ConfigError, match="missing price for GPU model H100-80GB") as caught:
        parse_pricing_settings({"allow_model_fallback": False, "required_gpu_models": ["H100-80GB"]}, FILE)
    assert caught.value.key_path == "pricing.gpu_models.H100-80GB"


def test_models_seen_at_run_time_are_checked_by_nvml_name() -> None:
    settings = parse_pricing_settings({"gpu_models": {"B200": 6.0}}, FILE)
    validate_gpu_models_priced(settings, ["NVIDIA B200", "NVIDIA L4", "Tesla T4"], FILE)
    with pytest.raises(ConfigError, match="missing price for GPU model GB300"):
        validate_gpu_models_priced(settings, ["NVIDIA GB300"], FILE)
