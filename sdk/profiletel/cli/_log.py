"""``profiletel log``: the main job. Feed a file row by row through a logger, the way an
application would, and write the profiles."""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import profiletel

from ._progress import Progress

# A batch job may take long, but must still end if an exporter hangs.
_JOB_TIMEOUT_S = 3600.0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "log",
        help="profile a CSV, Parquet or JSON-lines file row by row",
        description="Read FILE and log every row through get_logger(NAME).log(row).",
    )
    parser.add_argument("file", type=Path, help="a .csv, .parquet or .jsonl/.ndjson file")
    parser.add_argument("--dataset", required=True, help="the dataset id")
    parser.add_argument(
        "--timestamp-column",
        help="column holding each row's event time (naive values are read as UTC); "
        "default: now",
    )
    parser.add_argument("--aggregate-by", default="hour", help="minute, hour or day")
    parser.add_argument(
        "--output", type=Path, default=None, help="profile folder (default: PROFILETEL_LOCAL_DIR "
        "or ./profiles)"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    frame = read_table(args.file)
    summary = log_frame(
        frame,
        dataset_id=args.dataset,
        timestamp_column=args.timestamp_column,
        aggregate_by=args.aggregate_by,
        output=args.output,
    )
    print(summary.render())
    return 0 if summary.complete else 1


def read_table(path: Path) -> pd.DataFrame:
    """Read a CSV, Parquet or JSON-lines file by its extension."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return pd.read_csv(path)
    if suffix in (".parquet", ".pq"):
        return pd.read_parquet(path)
    if suffix in (".jsonl", ".ndjson", ".json"):
        return pd.read_json(path, lines=True)
    raise ValueError(f"{path}: unknown file type {suffix!r}; expected .csv, .parquet or .jsonl")


def event_times_ms(frame: pd.DataFrame, column: str) -> np.ndarray:
    """The column as epoch milliseconds: numbers are read as epoch milliseconds (as
    ``log()`` takes them), text and datetimes as times, naive ones in UTC."""
    if column not in frame.columns:
        raise ValueError(f"timestamp column {column!r} is not in the input; columns: "
                         f"{', '.join(map(str, frame.columns))}")
    values = frame[column]
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        if values.isna().any():
            empty = int(values.isna().sum())
            raise ValueError(f"timestamp column {column!r} has {empty} empty value(s)")
        return values.to_numpy(dtype=np.float64).astype(np.int64)
    try:
        moments = pd.to_datetime(values, utc=True)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"timestamp column {column!r} does not hold times: {exc}") from None
    if moments.isna().any():
        empty = int(moments.isna().sum())
        raise ValueError(f"timestamp column {column!r} has {empty} empty value(s)")
    return (moments.astype("int64") // 1_000_000).to_numpy()


@dataclass
class LogSummary:
    dataset_id: str
    rows: int
    buckets: int
    profiles: int
    dead_lettered: int
    rows_dropped: int
    rows_rejected: int
    seconds: float
    output: Path
    complete: bool = True

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    def render(self) -> str:
        lines = [
            f"dataset          {self.dataset_id}",
            f"rows             {self.rows:,}",
            f"buckets          {self.buckets:,}",
            f"profiles written {self.profiles:,} (under {self.output})",
            f"seconds          {self.seconds:.1f}",
            f"rows per second  {self.rows_per_second:,.0f}",
        ]
        if self.dead_lettered:
            lines.append(f"dead-lettered    {self.dead_lettered:,}")
        if not self.complete:
            lines.append("incomplete       not every profile was delivered; see the log above")
        if self.rows_dropped or self.rows_rejected:
            lines.append(f"rows dropped     {self.rows_dropped:,}")
            lines.append(f"rows rejected    {self.rows_rejected:,}")
        return "\n".join(lines)


def log_frame(
    frame: pd.DataFrame,
    *,
    dataset_id: str,
    timestamp_column: str | None,
    aggregate_by: str,
    output: Path | None,
) -> LogSummary:
    """Log every row of ``frame`` one call at a time, then shut down and summarise."""
    times = event_times_ms(frame, timestamp_column) if timestamp_column else None
    output = output if output is not None else Path(profiletel.local_dir_from_env())
    provider = profiletel.configure(
        exporters=["local"], local_dir=output, aggregate_by=aggregate_by, write_schedule=None,
        # A batch job waits for the worker rather than thin its input.
        queue_full="block", block_timeout_s=_JOB_TIMEOUT_S,
    )
    logger = profiletel.get_logger(dataset_id)
    rows = frame.to_dict("records")
    progress = Progress(len(rows), "logging")
    started = time.perf_counter()
    buckets: set[int] = set()
    unit = provider.processors[0].aggregate_by.milliseconds
    for index, row in enumerate(rows):
        if times is None:
            logger.log(row)
        else:
            stamp = int(times[index])
            buckets.add(stamp - stamp % unit)
            logger.log(row, timestamp_ms=stamp)
        if index % 4096 == 0:
            progress.update(index)
    progress.update(len(rows))
    complete = provider.shutdown(timeout_s=_JOB_TIMEOUT_S)
    seconds = time.perf_counter() - started
    progress.close()

    status = provider.status()
    written = status.processors[0].profiles_exported
    return LogSummary(
        dataset_id=dataset_id,
        rows=len(rows),
        buckets=len(buckets) if times is not None else written,
        profiles=written,
        dead_lettered=status.dead_lettered,
        rows_dropped=status.rows_dropped,
        rows_rejected=status.rows_rejected,
        seconds=seconds,
        output=output,
        complete=complete,
    )
