"""The shipped catalog: every price sourced, dated and positive; GPU model names normalise."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from gpucost.errors import ConfigError
from gpucost.pricing import load_catalog, normalize_gpu_model, shipped_catalog
from gpucost.pricing.catalog import GPU_MODEL_FILE, SHIPPED_CATALOG_DIR

REQUIRED_TYPES = {
    "aws": [
        "p3.2xlarge",
        "p3.8xlarge",
        "p3.16xlarge",
        "p3dn.24xlarge",
        "p4d.24xlarge",
        "p4de.24xlarge",
        "p5.48xlarge",
        *(
            f"g5.{size}"
            for size in (
                "xlarge",
                "2xlarge",
                "4xlarge",
                "8xlarge",
                "12xlarge",
                "16xlarge",
                "24xlarge",
                "48xlarge",
            )
        ),
        *(
            f"g6.{size}"
            for size in (
                "xlarge",
                "2xlarge",
                "4xlarge",
                "8xlarge",
                "12xlarge",
                "16xlarge",
                "24xlarge",
                "48xlarge",
            )
        ),
    ],
    "gcp": [
        "a2-highgpu-1g",
        "a2-highgpu-2g",
        "a2-highgpu-4g",
        "a2-highgpu-8g",
        "a2-megagpu-16g",
        "a2-ultragpu-1g",
        "a2-ultragpu-2g",
        "a2-ultragpu-4g",
        "a2-ultragpu-8g",
        "a3-highgpu-8g",
        *(f"g2-standard-{cpus}" for cpus in (4, 8, 12, 16, 24, 32, 48, 96)),
    ],
    "azure": [
        "Standard_NC24ads_A100_v4",
        "Standard_NC48ads_A100_v4",
        "Standard_NC96ads_A100_v4",
        "Standard_ND96asr_v4",
        "Standard_ND96isr_H100_v5",
        "Standard_NC4as_T4_v3",
        "Standard_NC64as_T4_v3",
    ],
}
HOME_REGION = {"aws": "us-east-1", "gcp": "us-central1", "azure": "eastus"}


def test_every_shipped_price_has_an_https_source_an_iso_date_and_a_positive_price() -> None:
    catalog = shipped_catalog()
    assert len(catalog.instance_types) >= 45
    for entry in catalog.instance_types.values():
        for region, price in entry.regions.items():
            where = f"{entry.cloud} {entry.instance_type} {region}"
            assert price.source.startswith("https://"), where
            assert dt.date.fromisoformat(price.as_of) <= dt.datetime.now(dt.UTC).date(), where
            assert price.on_demand_usd_per_hour > 0, where


def test_every_instance_type_names_a_gpu_model_of_the_model_table() -> None:
    catalog = shipped_catalog()
    for entry in catalog.instance_types.values():
        assert catalog.gpu_models.get(entry.gpu_model) is not None, entry.instance_type
        assert entry.gpu_count >= 1


def test_every_gpu_reference_price_is_sourced_dated_and_positive() -> None:
    table = shipped_catalog().gpu_models
    priced = [table.get(key) for key in table.keys]
    with_price = [model for model in priced if model is not None and model.reference_usd_per_gpu_hour]
    assert {model.key for model in with_price} >= {
        "A100-40GB",
        "A100-80GB",
        "H100-80GB",
        "H200-141GB",
        "L4",
        "L40S",
        "A10G",
        "T4",
        "V100-16GB",
        "V100-32GB",
    }
    for model in with_price:
        assert model.source.startswith("https://"), model.key
        assert model.reference_basis, model.key
        dt.date.fromisoformat(model.as_of)


@pytest.mark.parametrize("cloud", ["aws", "gcp", "azure"])
def test_catalog_lists_the_required_instance_types_in_the_home_region(cloud: str) -> None:
    catalog = shipped_catalog()
    for instance_type in REQUIRED_TYPES[cloud]:
        entry = catalog.instance_type(cloud, instance_type)  # type: ignore[arg-type]
        assert entry is not None, instance_type
        assert HOME_REGION[cloud] in entry.regions, instance_type


@pytest.mark.parametrize("cloud", ["aws", "gcp"])
def test_catalog_prices_aws_and_gcp_in_a_second_region(cloud: str) -> None:
    regions = {
        region
        for entry in shipped_catalog().instance_types.values()
        if entry.cloud == cloud
        for region in entry.regions
    }
    assert len(regions - {HOME_REGION[cloud]}) >= 1


def test_a100_and_h100_models_have_seven_mig_slices() -> None:
    table = shipped_catalog().gpu_models
    for key in ("A100-40GB", "A100-80GB", "H100-80GB", "H200-141GB"):
        model = table.get(key)
        assert model is not None
        assert model.mig_slices == 7


@pytest.mark.parametrize(
    ("nvml_name", "model_key"),
    [
        ("NVIDIA A100-SXM4-80GB", "A100-80GB"),
        ("NVIDIA A100 80GB PCIe", "A100-80GB"),
        ("NVIDIA A100-SXM4-40GB", "A100-40GB"),
        ("A100-SXM4-40GB", "A100-40GB"),
        ("NVIDIA A100-SXM4-40GB MIG 3g.20gb", "A100-40GB"),
        ("NVIDIA H100 80GB HBM3", "H100-80GB"),
        ("NVIDIA H100 80GB HBM3 MIG 1g.10gb", "H100-80GB"),
        ("NVIDIA H200", "H200-141GB"),
        ("NVIDIA L4", "L4"),
        ("NVIDIA L40S", "L40S"),
        ("NVIDIA A10G", "A10G"),
        ("Tesla T4", "T4"),
        ("Tesla V100-SXM2-16GB", "V100-16GB"),
        ("Tesla V100-SXM2-32GB", "V100-32GB"),
        ("a100-80gb", "A100-80GB"),
    ],
)
def test_nvml_product_names_normalise_to_model_keys(nvml_name: str, model_key: str) -> None:
    assert normalize_gpu_model(nvml_name) == model_key


@pytest.mark.parametrize("nvml_name", ["NVIDIA B200", "NVIDIA A10", "NVIDIA L40", "Quadro RTX 8000", ""])
def test_unknown_gpu_names_normalise_to_none_not_to_a_lookalike(nvml_name: str) -> None:
    assert normalize_gpu_model(nvml_name) is None


def _catalog_copy(tmp_path: Path) -> Path:
    for name in ("gpus.yaml", "aws.yaml"):
        shutil.copy(SHIPPED_CATALOG_DIR / name, tmp_path / name)
    return tmp_path


def test_catalog_that_is_not_yaml_is_a_config_error_naming_the_catalog_file(tmp_path: Path) -> None:
    directory = _catalog_copy(tmp_path)
    (directory / "aws.yaml").write_text("cloud: aws\ninstance_types: {p4d.24xlarge: [\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_catalog(directory)
    assert caught.value.file == str(directory / "aws.yaml")
    assert "not valid YAML" in str(caught.value)


def test_catalog_price_without_as_of_is_a_config_error_with_its_key_path(tmp_path: Path) -> None:
    directory = _catalog_copy(tmp_path)
    text = (directory / "aws.yaml").read_text(encoding="utf-8")
    broken = text.replace(
        'us-east-1: {on_demand_usd_per_hour: 3.06, source: &od "https://aws.amazon.com/ec2/pricing/on-demand/",'
        " as_of: 2025-05-01}",
        'us-east-1: {on_demand_usd_per_hour: 3.06, source: &od "https://aws.amazon.com/ec2/pricing/on-demand/"}',
    )
    assert broken != text
    (directory / "aws.yaml").write_text(broken, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_catalog(directory)
    assert caught.value.key_path == "instance_types.p3.2xlarge.regions.us-east-1.as_of"


def test_catalog_instance_type_with_an_unknown_gpu_model_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / GPU_MODEL_FILE).write_text(
        (SHIPPED_CATALOG_DIR / GPU_MODEL_FILE).read_text(encoding="utf-8"), encoding="utf-8"
    )
    (tmp_path / "gcp.yaml").write_text(
        "cloud: gcp\nas_of: 2025-05-01\ninstance_types:\n"
        "  x1-gpu-1g:\n    gpu_model: A200\n    gpu_count: 1\n"
        "    regions: {us-central1: {on_demand_usd_per_hour: 1.0, source: https://x, as_of: 2025-05-01}}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as caught:
        load_catalog(tmp_path)
    assert caught.value.file == str(tmp_path / "gcp.yaml")
    assert caught.value.key_path == "instance_types.x1-gpu-1g.gpu_model"
    assert caught.value.value == "A200"
