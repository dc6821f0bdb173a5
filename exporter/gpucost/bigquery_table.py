"""The name of one BigQuery table, `project.dataset.table`, as the billing export reader and the sink use it.

Each caller validates the text its own flag takes (the two accept different project forms
and say different things when refused); the parsed name is this one type.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

__all__ = ["BigQueryTable"]


@dataclass(frozen=True, slots=True)
class BigQueryTable:
    project: str
    dataset: str
    table: str

    def __str__(self) -> str:
        return f"{self.project}.{self.dataset}.{self.table}"

    def partition(self, day: dt.date) -> str:
        """The partition decorator of `day`: `project.dataset.table$YYYYMMDD`."""
        return f"{self}${day:%Y%m%d}"
