"""What a node's Kubernetes labels say about its price: cloud, region, instance type, capacity type.

Each managed Kubernetes offering marks spot capacity with its own label, and
instance-type names differ per cloud enough to tell the cloud apart when the
config does not name it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Literal

from gpucost.pricing.catalog import Cloud

__all__ = [
    "CAPACITY_LABELS",
    "INSTANCE_TYPE_LABEL",
    "PRICE_OVERRIDE_LABEL",
    "PRICE_RELEVANT_LABELS",
    "REGION_LABEL",
    "ZONE_LABEL",
    "CapacityType",
    "capacity_type_from_labels",
    "cloud_from_instance_type",
    "instance_type_from_labels",
    "region_from_labels",
]

CapacityType = Literal["on_demand", "spot"]

INSTANCE_TYPE_LABEL = "node.kubernetes.io/instance-type"
LEGACY_INSTANCE_TYPE_LABEL = "beta.kubernetes.io/instance-type"
REGION_LABEL = "topology.kubernetes.io/region"
ZONE_LABEL = "topology.kubernetes.io/zone"
PRICE_OVERRIDE_LABEL = "gpucost.io/price-per-gpu-hour"

# label -> (value meaning spot, value meaning on-demand); values compared case-insensitively.
CAPACITY_LABELS: Mapping[str, tuple[str, str]] = {
    "karpenter.sh/capacity-type": ("spot", "on-demand"),
    "eks.amazonaws.com/capacityType": ("spot", "on_demand"),
    "cloud.google.com/gke-spot": ("true", "false"),
    "cloud.google.com/gke-preemptible": ("true", "false"),
    "kubernetes.azure.com/scalesetpriority": ("spot", "regular"),
}

# Every label the price depends on: the price book's cache key reads only these.
PRICE_RELEVANT_LABELS: tuple[str, ...] = (
    INSTANCE_TYPE_LABEL,
    LEGACY_INSTANCE_TYPE_LABEL,
    REGION_LABEL,
    ZONE_LABEL,
    PRICE_OVERRIDE_LABEL,
    *CAPACITY_LABELS,
)

_AWS_TYPE = re.compile(r"^[a-z][a-z0-9-]*\.(\d*x?large|metal(-\d+xl)?|nano|micro|small|medium)$")
_AZURE_TYPE = re.compile(r"^(standard|basic)_[a-z0-9_-]+$", re.IGNORECASE)
_GCP_TYPE = re.compile(r"^[a-z][a-z0-9]*-[a-z]+(-[a-z0-9]+)?$")
# Zones are the region plus a suffix: us-east-1a (AWS), us-central1-a (GCP), eastus-1 (Azure).
_ZONE_SUFFIX = re.compile(r"(-[a-z0-9]|[a-z])$")


def cloud_from_instance_type(instance_type: str) -> Cloud | None:
    """`p4d.24xlarge` -> aws, `a2-highgpu-1g` -> gcp, `Standard_ND96asr_v4` -> azure."""
    if _AZURE_TYPE.match(instance_type):
        return "azure"
    if _AWS_TYPE.match(instance_type):
        return "aws"
    if _GCP_TYPE.match(instance_type):
        return "gcp"
    return None


def capacity_type_from_labels(labels: Mapping[str, str]) -> CapacityType | None:
    """spot or on_demand when any provider's capacity label says so, None when none does."""
    for label, (spot_value, on_demand_value) in CAPACITY_LABELS.items():
        value = labels.get(label)
        if value is None:
            continue
        folded = value.strip().casefold()
        if folded == spot_value:
            return "spot"
        if folded == on_demand_value.casefold():
            return "on_demand"
    return None


def region_from_labels(labels: Mapping[str, str]) -> str:
    """The region label, else the region a zone label belongs to, else ''."""
    region = labels.get(REGION_LABEL, "")
    if region:
        return region
    zone = labels.get(ZONE_LABEL, "")
    return _ZONE_SUFFIX.sub("", zone) if zone else ""


def instance_type_from_labels(labels: Mapping[str, str]) -> str:
    return labels.get(INSTANCE_TYPE_LABEL) or labels.get(LEGACY_INSTANCE_TYPE_LABEL, "")
