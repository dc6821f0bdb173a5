"""The GPU model table: normalised model keys, the NVML names that map to them, reference prices.

NVML reports product names that differ by form factor and driver generation
(`NVIDIA A100-SXM4-80GB`, `NVIDIA A100 80GB PCIe`, `A100-SXM4-80GB` on old
drivers) and MIG devices append their profile (`... MIG 3g.40gb`).  Prices are
per model, not per form factor, so every name is folded into one key such as
`A100-80GB` by the patterns in `catalog/gpus.yaml`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from gpucost.errors import ConfigError
from gpucost.yamlfields import (
    child_path,
    optional_float,
    optional_str,
    read_as_of,
    read_float,
    read_int,
    read_str,
    reject_unknown_keys,
    require_mapping,
)

__all__ = ["GpuModel", "GpuModelTable", "parse_gpu_model_table"]

# A MIG device's NVML name is its parent's plus " MIG <profile>".
_MIG_SUFFIX = re.compile(r"\s+MIG\s+\S+\s*$", re.IGNORECASE)
_VENDOR_PREFIX = re.compile(r"^(NVIDIA|Tesla)\s+", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class GpuModel:
    """One normalised GPU model and, when known, its sourced per-GPU reference price."""

    key: str
    memory_gib: int
    mig_slices: int
    nvml_patterns: tuple[str, ...]
    reference_usd_per_gpu_hour: float | None = None
    reference_basis: str = ""
    source: str = ""
    as_of: str = ""


class GpuModelTable:
    """Lookup from NVML product names (or model keys) to `GpuModel`."""

    def __init__(self, models: Iterable[GpuModel], file: str = "") -> None:
        self._by_key: dict[str, GpuModel] = {}
        self._patterns: list[tuple[re.Pattern[str], str]] = []
        for model in models:
            self._by_key[model.key.casefold()] = model
            for index, pattern in enumerate(model.nvml_patterns):
                try:
                    compiled = re.compile(pattern, re.IGNORECASE)
                except re.error as err:
                    raise ConfigError(
                        file, f"models.{model.key}.nvml_patterns[{index}]", pattern, f"not a regex: {err}"
                    ) from err
                self._patterns.append((compiled, model.key))
        self._name_cache: dict[str, str | None] = {}

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(model.key for model in self._by_key.values())

    def get(self, key: str) -> GpuModel | None:
        return self._by_key.get(key.casefold())

    def normalize(self, nvml_name: str) -> str | None:
        """`NVIDIA A100-SXM4-80GB MIG 3g.40gb` -> `A100-80GB`; None when no pattern matches."""
        cached = self._name_cache.get(nvml_name, "")
        if cached != "":
            return cached
        key = self._match(nvml_name)
        self._name_cache[nvml_name] = key
        return key

    def key_for(self, name: str) -> str:
        """The model key for a key or NVML name; an unknown name loses only its MIG suffix and vendor word.

        Lets a user price a GPU newer than this table (`gpu_models: {B200: ...}`)
        and still match the device NVML reports as `NVIDIA B200`.
        """
        return self.normalize(name) or _VENDOR_PREFIX.sub("", _MIG_SUFFIX.sub("", name.strip()))

    def _match(self, nvml_name: str) -> str | None:
        name = _MIG_SUFFIX.sub("", nvml_name.strip())
        known = self._by_key.get(name.casefold())
        if known is not None:
            return known.key
        for pattern, key in self._patterns:
            if pattern.fullmatch(name):
                return key
        # Drivers differ in whether the vendor word is part of the name.
        bare = _VENDOR_PREFIX.sub("", name)
        for pattern, key in self._patterns:
            if pattern.fullmatch(bare):
                return key
        return None


_MODEL_KEYS = (
    "memory_gib",
    "mig_slices",
    "nvml_patterns",
    "reference_usd_per_gpu_hour",
    "reference_basis",
    "source",
    "as_of",
)


def parse_gpu_model_table(raw: object, file: str) -> GpuModelTable:
    """Parse `gpus.yaml`: `models: {<key>: {memory_gib, mig_slices, nvml_patterns, reference...}}`."""
    top = require_mapping(raw, file, "")
    reject_unknown_keys(top, ("models", "as_of", "source"), file, "")
    models_raw = require_mapping(top.get("models"), file, "models")
    return GpuModelTable((_parse_model(key, value, file) for key, value in models_raw.items()), file)


def _parse_model(key: str, raw: object, file: str) -> GpuModel:
    path = child_path("models", key)
    entry = require_mapping(raw, file, path)
    reject_unknown_keys(entry, _MODEL_KEYS, file, path)
    patterns_raw = entry.get("nvml_patterns")
    if not isinstance(patterns_raw, list) or not patterns_raw:
        raise ConfigError(file, child_path(path, "nvml_patterns"), patterns_raw, "must be a non-empty list")
    patterns: list[str] = []
    for index, pattern in enumerate(patterns_raw):
        if not isinstance(pattern, str) or not pattern:
            raise ConfigError(file, f"{path}.nvml_patterns[{index}]", pattern, "must be a non-empty string")
        patterns.append(pattern)
    reference = optional_float(entry, "reference_usd_per_gpu_hour", file, path, positive=True)
    source, as_of, basis = "", "", ""
    if reference is not None:
        # A reference price without provenance would be a literal nobody can check.
        source = read_str(entry, "source", file, path)
        as_of = read_as_of(entry, "as_of", file, path)
        basis = read_str(entry, "reference_basis", file, path)
    else:
        basis = optional_str(entry, "reference_basis", file, path)
    return GpuModel(
        key=key,
        memory_gib=int(read_float(entry, "memory_gib", file, path, positive=True)),
        mig_slices=read_int(entry, "mig_slices", file, path, minimum=0),
        nvml_patterns=tuple(patterns),
        reference_usd_per_gpu_hour=reference,
        reference_basis=basis,
        source=source,
        as_of=as_of,
    )
