"""Price sync: AWS Pricing API and spot history (botocore Stubber, recorded-shape answers) into the overrides file."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import boto3
import pytest
import yaml
from botocore.stub import ANY, Stubber

from gpucost.budgets.aws_prices import AwsPriceSource
from gpucost.budgets.price_sync import run_price_sync
from gpucost.budgets.state import SidecarState
from gpucost.errors import SourceUnavailable

NOW = dt.datetime(2026, 11, 28, 6, 0, tzinfo=dt.UTC)


def _price_list_item(instance_type: str, gpus: str, usd: str) -> str:
    return json.dumps(
        {
            "product": {
                "productFamily": "Compute Instance",
                "sku": "SKU" + instance_type,
                "attributes": {
                    "instanceType": instance_type,
                    "regionCode": "us-east-1",
                    "gpu": gpus,
                    "operatingSystem": "Linux",
                    "tenancy": "Shared",
                },
            },
            "serviceCode": "AmazonEC2",
            "terms": {
                "OnDemand": {
                    "SKU.JRTCKXETXF": {
                        "priceDimensions": {
                            "SKU.JRTCKXETXF.6YS6EN2CT7": {
                                "unit": "Hrs",
                                "pricePerUnit": {"USD": usd},
                                "description": f"${usd} per On Demand Linux",
                            }
                        }
                    }
                }
            },
        }
    )


def _clients() -> tuple[object, object, Stubber, Stubber]:
    pricing = boto3.client("pricing", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    ec2 = boto3.client("ec2", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    return pricing, ec2, Stubber(pricing), Stubber(ec2)


def test_price_sync_writes_the_overrides_file_in_the_agreed_format(tmp_path: Path) -> None:
    pricing, ec2, pricing_stub, ec2_stub = _clients()
    pricing_stub.add_response(
        "get_products",
        {
            "PriceList": [_price_list_item("p4d.24xlarge", "8", "32.7726000000")],
            "NextToken": "t1",
            "FormatVersion": "aws_v1",
        },
        {"ServiceCode": "AmazonEC2", "Filters": ANY, "MaxResults": 100},
    )
    pricing_stub.add_response(
        "get_products",
        {"PriceList": [_price_list_item("g6.xlarge", "1", "0.8048000000")], "FormatVersion": "aws_v1"},
        {"ServiceCode": "AmazonEC2", "Filters": ANY, "MaxResults": 100, "NextToken": "t1"},
    )
    ec2_stub.add_response(
        "describe_spot_price_history",
        {
            "SpotPriceHistory": [
                {
                    "InstanceType": "p4d.24xlarge",
                    "SpotPrice": "12.0",
                    "AvailabilityZone": "us-east-1a",
                    "ProductDescription": "Linux/UNIX",
                    "Timestamp": NOW,
                },
                {
                    "InstanceType": "p4d.24xlarge",
                    "SpotPrice": "13.0",
                    "AvailabilityZone": "us-east-1b",
                    "ProductDescription": "Linux/UNIX",
                    "Timestamp": NOW,
                },
            ]
        },
        {
            "InstanceTypes": ["g6.xlarge", "p4d.24xlarge"],
            "ProductDescriptions": ["Linux/UNIX"],
            "StartTime": NOW - dt.timedelta(days=7),
            "EndTime": NOW,
        },
    )
    path = tmp_path / "overrides.yaml"
    state = SidecarState()
    with pricing_stub, ec2_stub:
        source = AwsPriceSource(pricing, ec2, "us-east-1", clock=lambda: NOW)
        run_price_sync(path, {"aws": source.entries}, state, NOW)
    document = yaml.safe_load(path.read_text())
    assert document["generated_by"] == "gpucost-budgets price-sync"
    assert document["generated_at"] == "2026-11-28T06:00:00Z"
    assert document["prices"] == [
        {
            "cloud": "aws",
            "region": "us-east-1",
            "instance_type": "g6.xlarge",
            "on_demand_usd_per_hour": 0.8048,
            "gpu_model": "L4",
            "gpu_count": 1,
            "source": "aws-pricing-api:AmazonEC2",
            "as_of": "2026-11-28T06:00:00Z",
        },
        {
            "cloud": "aws",
            "region": "us-east-1",
            "instance_type": "p4d.24xlarge",
            "on_demand_usd_per_hour": 32.7726,
            "spot_usd_per_hour": 12.5,
            "gpu_model": "A100-40GB",
            "gpu_count": 8,
            "source": "aws-pricing-api:AmazonEC2",
            "as_of": "2026-11-28T06:00:00Z",
        },
    ]
    assert state.snapshot().price_sync_last_success == {"aws": NOW.timestamp()}
    assert [p.name for p in tmp_path.iterdir()] == ["overrides.yaml"]  # no temp file left behind


def test_a_failing_provider_keeps_its_previous_prices_and_reports_down(tmp_path: Path) -> None:
    path = tmp_path / "overrides.yaml"
    state = SidecarState()
    pricing, _ec2, pricing_stub, _ec2_stub = _clients()
    pricing_stub.add_response(
        "get_products",
        {"PriceList": [_price_list_item("p5.48xlarge", "8", "98.32")], "FormatVersion": "aws_v1"},
        {"ServiceCode": "AmazonEC2", "Filters": ANY, "MaxResults": 100},
    )
    with pricing_stub:
        run_price_sync(path, {"aws": AwsPriceSource(pricing, None, "us-east-1", clock=lambda: NOW).entries}, state, NOW)
    pricing_stub.add_client_error("get_products", service_error_code="ThrottlingException", http_status_code=400)
    later = NOW + dt.timedelta(days=1)
    with pricing_stub:
        run_price_sync(
            path, {"aws": AwsPriceSource(pricing, None, "us-east-1", clock=lambda: later).entries}, state, later
        )
    document = yaml.safe_load(path.read_text())
    assert [p["instance_type"] for p in document["prices"]] == ["p5.48xlarge"]
    assert document["prices"][0]["as_of"] == "2026-11-28T06:00:00Z"
    assert state.snapshot().provider_up[("aws", "price_sync")] is False
    assert state.snapshot().price_sync_last_success["aws"] == NOW.timestamp()


def test_source_unavailable_is_raised_for_a_failed_pricing_call() -> None:
    pricing, _ec2, pricing_stub, _ = _clients()
    pricing_stub.add_client_error("get_products", service_error_code="AccessDeniedException", http_status_code=403)
    with pricing_stub, pytest.raises(SourceUnavailable, match="get_products"):
        AwsPriceSource(pricing, None, "us-east-1", clock=lambda: NOW).on_demand()
