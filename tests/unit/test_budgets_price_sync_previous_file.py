"""Price sync reads the previous overrides file through the shared YAML loader: whatever garbage is there, the
run writes fresh prices and keeps the failing cloud's previous ones when they can be read."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

import pytest

from gpucost.budgets.price_sync import run_price_sync
from gpucost.budgets.prices_file import PriceEntry
from gpucost.budgets.state import SidecarState
from gpucost.errors import SourceUnavailable

NOW = dt.datetime(2026, 11, 28, 6, 0, tzinfo=dt.UTC)
FRESH = PriceEntry("aws", "us-east-1", "p5.48xlarge", 98.32, "aws-pricing-api", NOW, gpu_model="H100", gpu_count=8)


def _fresh() -> Sequence[PriceEntry]:
    return [FRESH]


def _down() -> Sequence[PriceEntry]:
    raise SourceUnavailable("catalog unreachable")


@pytest.mark.parametrize(
    "previous",
    [
        b"\xff\xfe\x00not utf-8",
        b"prices: [" * 2000,  # nested far deeper than any overrides file
        b"a: &a [x, x, x, x, x, x, x, x, x]\n" + b"".join(
            f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n".encode()
            for i in range(8)
        ),
    ],
    ids=["not-utf8", "deep", "alias-bomb"],
)
def test_a_garbled_previous_file_never_stops_the_price_sync(tmp_path: Path, previous: bytes) -> None:
    path = tmp_path / "price-overrides.yaml"
    path.write_bytes(previous)
    state = SidecarState()
    entries = run_price_sync(path, {"aws": _fresh, "gcp": _down}, state, NOW)
    assert entries == [FRESH]
    assert "p5.48xlarge" in path.read_text(encoding="utf-8")
    assert state.snapshot().provider_up[("gcp", "price_sync")] is False


def test_the_failing_clouds_previous_prices_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "price-overrides.yaml"
    gcp = PriceEntry("gcp", "us-central1", "a3-highgpu-8g", 88.25, "gcp-cloud-catalog", NOW)
    run_price_sync(path, {"aws": _fresh, "gcp": lambda: [gcp]}, SidecarState(), NOW)
    entries = run_price_sync(path, {"aws": _fresh, "gcp": _down}, SidecarState(), NOW)
    assert [(e.cloud, e.instance_type) for e in entries] == [("aws", "p5.48xlarge"), ("gcp", "a3-highgpu-8g")]
