"""Parquet and CSV day files (pyarrow), each day replaced whole.

A day's rows go to `<out>/gpucost-cost-YYYY-MM-DD.<format>`: written to a
temporary file in the same directory, flushed to disk, then renamed over the
old file.  A rename within a directory is atomic, so a reader sees the old day
or the new day, re-running a day leaves one copy of its rows, and a run that
fails leaves no partial day (the temporary file is removed).
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from gpucost.errors import UserInputError
from gpucost.finance.rows import COLUMNS, Column, CostRow

__all__ = ["FileFormat", "arrow_schema", "arrow_table", "day_file", "write_day_file"]

FileFormat = Literal["parquet", "csv"]
OUT_FLAG = "--out"


def arrow_schema() -> Any:
    import pyarrow as pa

    kinds = {"string": pa.string(), "float": pa.float64(), "timestamp": pa.timestamp("us", tz="UTC")}

    def field(column: Column) -> Any:
        return pa.field(column.name, kinds[column.kind], nullable=False)

    return pa.schema([field(column) for column in COLUMNS])


def arrow_table(rows: Sequence[CostRow]) -> Any:
    import pyarrow as pa

    records = [row.record() for row in rows]
    return pa.Table.from_pylist(records, schema=arrow_schema())


def day_file(out: Path, day: dt.date, file_format: FileFormat) -> Path:
    return out / f"gpucost-cost-{day.isoformat()}.{file_format}"


def write_day_file(
    out: Path, day: dt.date, rows: Sequence[CostRow], file_format: FileFormat, flag: str = OUT_FLAG
) -> Path:
    """Replace `day`'s file under `out` with `rows` (an empty day is a file with no rows); errors name `flag`."""
    if not out.is_dir():
        raise UserInputError(flag, "", str(out), "is not a directory")
    target = day_file(out, day, file_format)
    table = arrow_table(rows)
    try:
        handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=out)
    except OSError as err:
        raise UserInputError(flag, "", str(out), f"cannot be written ({err.strerror or err})") from err
    try:
        with os.fdopen(handle, "wb") as stream:
            _write(table, stream, file_format)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, target)
    except OSError as err:
        raise UserInputError(flag, "", str(out), f"cannot be written ({err.strerror or err})") from err
    finally:
        # After a successful rename the temporary name is gone; after a failure it must not stay.
        Path(temporary).unlink(missing_ok=True)
    return target


def _write(table: Any, stream: Any, file_format: FileFormat) -> None:
    if file_format == "parquet":
        import pyarrow.parquet as pq

        pq.write_table(table, stream)
    else:
        import pyarrow.csv as pacsv

        pacsv.write_csv(table, stream)
