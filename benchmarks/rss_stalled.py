"""Memory while logging 2 million rows into a stalled pipeline.

``--stall exporter`` (the default): the only exporter blocks forever, so every write
hands it one more profile that it never takes. ``--stall worker``: the processor's
worker itself is held, so the queue fills and the rest is dropped and counted.

Prints the process RSS every 100,000 rows; the queue bounds (``max_queue_rows``,
``max_queue_bytes``) are what keep it flat. Timing and memory are this machine's; run
it alone for numbers worth comparing::

    python benchmarks/rss_stalled.py --rows 2000000 --stall exporter
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from typing import Any

from whylogs.api.writer import Writer

import profiletel
from profiletel import Schedule, TimeGranularity


def rss_mb() -> float:
    try:
        import psutil
    except ImportError:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    return psutil.Process().memory_info().rss / 2**20


class StalledExporter(Writer):
    """Blocks in ``write`` until released: a destination that stopped answering."""

    exporter_name = "stalled"

    def __init__(self) -> None:
        self.release = threading.Event()
        self.calls = 0

    def write(self, file: Any, dest: str | None = None, **kwargs: Any) -> tuple[bool, str]:
        self.calls += 1
        self.release.wait()
        return True, "released"

    def option(self, **kwargs: Any) -> StalledExporter:
        return self


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--stall", choices=("exporter", "worker"), default="exporter")
    parser.add_argument("--every", type=int, default=100_000, help="print every N rows")
    parser.add_argument("--max-queue-rows", type=int, default=None)
    args = parser.parse_args()

    exporter = StalledExporter()
    options = {} if args.max_queue_rows is None else {"max_queue_rows": args.max_queue_rows}
    provider = profiletel.configure(
        exporters=[exporter],
        write_schedule=Schedule(TimeGranularity.Second, 1),
        dead_letter_dir=tempfile.mkdtemp(prefix="profiletel-bench-"),
        **options,
    )
    processor = provider.processors[0]
    worker_gate = threading.Event()
    if args.stall == "worker":
        drain = processor._drain

        def held_drain() -> None:
            worker_gate.wait()
            drain()

        processor._drain = held_drain  # type: ignore[method-assign]

    logger = profiletel.get_logger("bench")
    countries = ["NL", "DE", "FR", "US", "JP"]
    print(f"stall={args.stall} rows={args.rows:,} start rss={rss_mb():.1f} MB")
    print(
        f"{'rows':>10} {'s':>6} {'rss MB':>8} {'queued':>8} {'tracked':>10} {'dropped':>10} "
        f"{'pending':>8}"
    )
    start = time.perf_counter()
    for i in range(1, args.rows + 1):
        logger.log(
            {
                "id": i,
                "amount": i * 0.25,
                "country": countries[i % 5],
                "flag": i % 3 == 0,
                "maybe": None if i % 7 else i,
            }
        )
        if i % args.every == 0:
            status = provider.status().processors[0]
            dataset = status.datasets.get("bench")
            print(
                f"{i:>10,} {time.perf_counter() - start:>6.1f} {rss_mb():>8.1f} "
                f"{status.queued_rows:>8,} {dataset.rows_tracked if dataset else 0:>10,} "
                f"{status.rows_dropped:>10,} {status.pending_exports:>8}"
            )

    worker_gate.set()
    exporter.release.set()
    provider.shutdown(timeout_s=60)
    status = provider.status().processors[0]
    dataset = status.datasets["bench"]
    print(
        f"done in {time.perf_counter() - start:.1f} s: tracked {dataset.rows_tracked:,}, "
        f"dropped {dataset.rows_dropped:,}, exporter calls {exporter.calls}, "
        f"final rss {rss_mb():.1f} MB"
    )


if __name__ == "__main__":
    main()
