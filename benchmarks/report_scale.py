"""``profiletel report`` on a year of hourly buckets: 8,760 profiles of 20 columns.

The profiles are synthetic: a few dozen whylogs profiles of 15 numeric and 5 string
columns (one numeric column drifts half-way through the year, one string column in the
last month), each written again under many hours. Writing them is not timed; the
report is timed from reading the folder to writing the HTML file.

    python benchmarks/report_scale.py [--hours 8760] [--rows 300] [--keep DIR]

Prints the wall-clock seconds (and the CPU seconds, which other jobs on a shared machine
inflate less) and the file size against the targets (under 30 s, under 20 MB), and exits
1 when either is missed.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import whylogs as why
from whylogs.core import DatasetProfileView

from profiletel import BucketProfile
from profiletel._report import build_report, write_report

TARGET_SECONDS = 30.0
TARGET_BYTES = 20 * 1024 * 1024
HOUR_MS = 3_600_000
VARIANTS = 24
START = datetime(2025, 1, 1, tzinfo=timezone.utc)

warnings.filterwarnings("ignore", category=DeprecationWarning)


def _frame(seed: int, rows: int, drifted: bool, late: bool) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({f"x{i:02d}": rng.normal(i, 1 + i / 10, rows) for i in range(15)})
    if drifted:
        frame["x00"] += 3.0
    frame.loc[rng.random(rows) < 0.02, "x01"] = np.nan
    for i in range(5):
        frame[f"s{i}"] = rng.choice([f"v{k}" for k in range(6 + i)], rows)
    if late:
        frame["s0"] = rng.choice(["v0", "new"], rows)
    return frame


def _variants(rows: int) -> dict[tuple[bool, bool], list[DatasetProfileView]]:
    return {
        (drifted, late): [why.log(_frame(seed, rows, drifted, late)).view()
                          for seed in range(VARIANTS)]
        for drifted, late in ((False, False), (True, False), (True, True))
    }


def write_year(folder: Path, hours: int, rows: int) -> None:
    variants = _variants(rows)
    start_ms = int(START.timestamp() * 1000)
    for hour in range(hours):
        key = (hour >= hours // 2, hour >= hours - hours // 12)
        view = variants[key][hour % VARIANTS]
        stamp = datetime.fromtimestamp((start_ms + hour * HOUR_MS) / 1000, tz=timezone.utc)
        dated = DatasetProfileView(columns=view.get_columns(), dataset_timestamp=stamp,
                                   creation_timestamp=stamp, metadata={})
        profile = BucketProfile("synthetic", start_ms + hour * HOUR_MS, dated)
        (folder / profile.file_name()).write_bytes(profile.serialize())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=int, default=8_760)
    parser.add_argument("--rows", type=int, default=300, help="rows per profile")
    parser.add_argument("--keep", type=Path, help="write profiles and report here, and keep")
    args = parser.parse_args()

    folder = args.keep or Path(tempfile.mkdtemp(prefix="profiletel-report-scale-"))
    profiles = folder / "profiles"
    profiles.mkdir(parents=True, exist_ok=True)
    try:
        if not any(profiles.iterdir()):
            began = time.perf_counter()
            write_year(profiles, args.hours, args.rows)
            print(f"wrote {args.hours:,} profiles in {time.perf_counter() - began:.1f} s")
        output = folder / "report.html"

        began, began_cpu = time.perf_counter(), time.process_time()
        report = build_report(profiles)
        write_report(report, output)
        seconds = time.perf_counter() - began
        cpu_seconds = time.process_time() - began_cpu

        size = output.stat().st_size
        columns = len(report.groups[0].columns)
        print(f"report of {report.profiles:,} profiles, {columns} columns: "
              f"{seconds:.1f} s (target < {TARGET_SECONDS:.0f} s; {cpu_seconds:.1f} s of CPU), "
              f"{size / 1024 / 1024:.1f} MB (target < {TARGET_BYTES / 1024 / 1024:.0f} MB)")
        return 0 if seconds < TARGET_SECONDS and size < TARGET_BYTES else 1
    finally:
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
