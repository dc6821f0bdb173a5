"""gpucost.pricing: the price book that turns a node and a GPU into an hourly price.

`parse_pricing_settings` validates the config's `pricing:` section,
`PriceBook.from_settings` builds the book over the shipped catalog and the
overrides file, `PriceBook.quote` prices one device.  See docs/pricing.md.
"""

from gpucost.pricing.book import PriceBook
from gpucost.pricing.catalog import Catalog, load_catalog, shipped_catalog
from gpucost.pricing.overrides import OverridesFile, parse_overrides
from gpucost.pricing.resolve import RESOLUTION_ORDER
from gpucost.pricing.settings import PricingSettings, parse_pricing_settings, validate_gpu_models_priced

__all__ = [
    "RESOLUTION_ORDER",
    "Catalog",
    "OverridesFile",
    "PriceBook",
    "PricingSettings",
    "load_catalog",
    "normalize_gpu_model",
    "parse_overrides",
    "parse_pricing_settings",
    "shipped_catalog",
    "validate_gpu_models_priced",
]


def normalize_gpu_model(nvml_name: str) -> str | None:
    """`NVIDIA A100-SXM4-80GB` -> `A100-80GB` by the shipped model table; None when unknown."""
    return shipped_catalog().gpu_models.normalize(nvml_name)
