"""Where benchmark results go: one JSON file per benchmark, stamped with the machine that produced it."""

from __future__ import annotations

import json
import os
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["machine_info", "read_results", "write_result"]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def machine_info() -> dict[str, Any]:
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "python": platform.python_version(),
        "implementation": sys.implementation.name,
        "platform": platform.platform(),
        "date_utc": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def write_result(out_dir: Path, name: str, result: dict[str, Any], quick: bool) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.json"
    document = {"name": name, "mode": "quick" if quick else "default", "machine": machine_info(), **result}
    path.write_text(json.dumps(document, indent=2, sort_keys=False) + "\n")
    return path


def read_results(out_dir: Path) -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {}
    for path in sorted(out_dir.glob("*.json")):
        document = json.loads(path.read_text())
        if isinstance(document, dict):
            results[path.stem] = document
    return results
