"""``profiletel report``: an HTML page of the profiles under a folder or S3 prefix."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .._report import DRIFT_THRESHOLD, build_report, write_report
from ._replay import parse_options


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "report",
        help="write a self-contained HTML report of the profiles under PATH",
        description="Merge the profiles under PATH (a folder, a profile file, or "
        "s3://bucket/prefix) per dataset and bucket, and write one HTML file with every "
        "column over time and the drift between buckets. The file needs no network.",
    )
    parser.add_argument("path", help="a folder, a profile file, or s3://bucket/prefix")
    parser.add_argument("--dataset", help="only this dataset id")
    parser.add_argument("--output", type=Path, default=Path("report.html"),
                        help="the HTML file to write (default: %(default)s)")
    parser.add_argument("--by-segment", action="store_true",
                        help="one section per segment of each dataset")
    parser.add_argument(
        "--baseline", default="first", metavar="first|previous|FILE",
        help="what each bucket's baseline drift compares with: the first bucket, the "
        "previous bucket, or a profile file (default: %(default)s)",
    )
    parser.add_argument("--threshold", type=float, default=DRIFT_THRESHOLD,
                        help="highlight drift scores at or above this (default: %(default)s)")
    parser.add_argument("--exclude", action="append", default=[], metavar="COLUMN",
                        help="leave this column out, such as a calendar column; repeatable")
    parser.add_argument(
        "--option", action="append", default=[], metavar="KEY=VALUE",
        help="an s3 exporter option for s3:// paths, such as endpoint_url=... or "
        "region=...; repeatable",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if not 0.0 < args.threshold <= 1.0:
        raise ValueError(f"--threshold must be in (0, 1], got {args.threshold}")
    report = build_report(
        args.path, dataset=args.dataset, by_segment=args.by_segment, baseline=args.baseline,
        threshold=args.threshold, s3_options=parse_options(args.option), exclude=args.exclude,
    )
    target = write_report(report, args.output)
    buckets = sum(len(group.buckets) for group in report.groups)
    print(f"report of {report.profiles:,} profile(s), {buckets:,} bucket(s) written to "
          f"{target}")
    return 0
