"""``profiletel show``: per-column figures of the profiles under a folder."""

from __future__ import annotations

import argparse
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .._profile import BucketProfile, Segment
from .._read import ColumnSummary, merge_views, read_profiles, summarize
from .._time import iso_utc

_TYPE_LETTERS = {"integral": "i", "fractional": "f", "string": "s", "boolean": "b", "object": "o",
                 "tensor": "t"}


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "show",
        help="print a per-column summary of the profiles under PATH",
        description="Merge the profiles under PATH per dataset and print each column's "
        "count, nulls, types, mean, min, max and distinct estimate.",
    )
    parser.add_argument("path", type=Path, help="a profile file or a folder of them")
    parser.add_argument("--dataset", help="only this dataset id")
    parser.add_argument("--by-bucket", action="store_true", help="one block per bucket")
    parser.add_argument(
        "--by-segment", action="store_true", help="one block per segment of each dataset"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    profiles = read_profiles(args.path)
    if args.dataset is not None:
        profiles = [p for p in profiles if p.dataset_id == args.dataset]
    if not profiles:
        print(f"no profiles under {args.path}")
        return 1
    print(render(profiles, by_bucket=args.by_bucket, by_segment=args.by_segment))
    return 0


GroupKey = tuple[str, Segment | None, int | None]


def group_profiles(
    profiles: Iterable[BucketProfile], *, by_bucket: bool, by_segment: bool = False
) -> dict[GroupKey, list[BucketProfile]]:
    """Profiles per dataset, and per segment and bucket when asked, in a stable order."""
    groups: dict[GroupKey, list[BucketProfile]] = defaultdict(list)
    for profile in profiles:
        key = (
            profile.dataset_id,
            profile.segment if by_segment else None,
            profile.bucket_start_ms if by_bucket else None,
        )
        groups[key].append(profile)
    return dict(
        sorted(groups.items(), key=lambda item: (item[0][0], item[0][1] or (), item[0][2] or 0))
    )


def segment_text(segment: Segment) -> str:
    """``origin=JFK, carrier=UA``; ``(no segment)`` for an unsegmented profile."""
    if not segment:
        return "(no segment)"
    return ", ".join(f"{column}={value}" for column, value in segment)


def render(
    profiles: list[BucketProfile], *, by_bucket: bool = False, by_segment: bool = False
) -> str:
    blocks = []
    groups = group_profiles(profiles, by_bucket=by_bucket, by_segment=by_segment)
    for (dataset_id, segment, bucket), group in groups.items():
        view = merge_views(p.view for p in group)
        assert view is not None
        heading = f"dataset {dataset_id}"
        if segment is not None:
            heading += f", segment {segment_text(segment)}"
        if bucket is not None:
            heading += f", bucket {iso_utc(bucket)}"
        else:
            buckets = {p.bucket_start_ms for p in group}
            heading += (f": {len(group)} profile(s), {len(buckets)} bucket(s) from "
                        f"{iso_utc(min(buckets))} to {iso_utc(max(buckets))}")
        blocks.append(heading + "\n" + render_table(summarize(view)))
    return "\n\n".join(blocks)


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    if value == int(value) and abs(value) < 1e15:
        return f"{int(value):,}"
    return f"{value:,.3f}"


def render_table(summaries: list[ColumnSummary]) -> str:
    header = ("column", "count", "nulls", "types", "mean", "min", "max", "distinct")
    rows = [header]
    for s in summaries:
        types = " ".join(
            f"{_TYPE_LETTERS.get(name, name)}:{n:,}" for name, n in s.types.items() if n
        ) or "-"
        rows.append((
            s.column, f"{s.count:,}", f"{s.nulls:,}", types, _number(s.mean),
            _number(s.min), _number(s.max),
            f"{s.distinct:,.0f}" if s.distinct is not None else "-",
        ))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = []
    for row in rows:
        rest = zip(row[1:], widths[1:], strict=True)
        cells = [row[0].ljust(widths[0])] + [cell.rjust(w) for cell, w in rest]
        lines.append("  ".join(cells))
    return "\n".join(lines)
