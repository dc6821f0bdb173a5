"""Optional features and the pip extra that brings each one.

A bare `pip install gpucost` holds the exporter with NVML or a simulated
backend.  Kubernetes attribution, the budget sidecar, the scorecard and MLflow
logging need third-party libraries that come with an extra.  A command that
needs one checks with `require_extra` before it imports anything, so a
missing library is one line naming the extra to install, never a traceback.
"""

from __future__ import annotations

import importlib.util

from gpucost.errors import GpucostError

__all__ = ["EXTRAS", "MissingExtra", "missing_modules", "require_extra"]

# extra -> the top-level modules it installs that gpucost imports.
EXTRAS: dict[str, tuple[str, ...]] = {
    "k8s": ("grpc", "google.protobuf", "lightkube", "httpx2"),
    "budgets": ("boto3", "google.cloud.billing", "slack_sdk", "httpx", "kubernetes"),
    "report": ("httpx", "rich", "matplotlib"),
    "mlflow": ("mlflow", "httpx"),
    "finance": ("pyarrow", "google.cloud.bigquery"),
}


class MissingExtra(GpucostError):
    """A feature was asked for whose libraries are not installed."""

    def __init__(self, feature: str, extra: str, missing: tuple[str, ...]) -> None:
        self.feature = feature
        self.extra = extra
        self.missing = missing
        super().__init__(self.one_line())

    def one_line(self) -> str:
        return (f"{self.feature} needs the '{self.extra}' extra (missing: {', '.join(self.missing)}): "
                f"pip install 'gpucost[{self.extra}]'")


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package is missing, or a broken install
        return False


def missing_modules(extra: str) -> tuple[str, ...]:
    return tuple(module for module in EXTRAS[extra] if not _importable(module))


def require_extra(extra: str, feature: str) -> None:
    """Raise MissingExtra when any library of `extra` cannot be imported."""
    missing = missing_modules(extra)
    if missing:
        raise MissingExtra(feature, extra, missing)
