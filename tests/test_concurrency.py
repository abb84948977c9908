"""Many application threads logging at once: every row is counted once."""

from __future__ import annotations

import threading

import profiletel

THREADS = 8
ROWS_PER_THREAD = 2_500
HOUR_MS = 3_600_000
START_MS = 1_700_000_000_000 - 1_700_000_000_000 % HOUR_MS


def _log_from_threads(logger: profiletel.DatasetLogger) -> None:
    barrier = threading.Barrier(THREADS)

    def work(thread: int) -> None:
        barrier.wait()
        for index in range(ROWS_PER_THREAD):
            row = {"thread": thread, "index": index, "value": index * 0.5, "label": f"t{thread}"}
            logger.log(row, timestamp_ms=START_MS + (index % 3) * HOUR_MS)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
        assert not thread.is_alive(), "a logging thread hung"


def test_rows_logged_from_eight_threads_are_all_counted_once(recording):
    provider = profiletel.configure(
        exporters=[recording], aggregate_by="hour", write_schedule=None, queue_full="block"
    )
    logger = profiletel.get_logger("concurrent")

    _log_from_threads(logger)
    assert provider.shutdown(timeout_s=120)

    total = THREADS * ROWS_PER_THREAD
    merged = recording.profiles[0].view
    for profile in recording.profiles[1:]:
        merged = merged.merge(profile.view)
    counts = {
        name: column.to_summary_dict()["counts/n"] for name, column in merged.get_columns().items()
    }
    assert counts == {"thread": total, "index": total, "value": total, "label": total}
    assert sorted({p.bucket_start_ms for p in recording.profiles}) == [
        START_MS,
        START_MS + HOUR_MS,
        START_MS + 2 * HOUR_MS,
    ]
    frequent = merged.get_column("label").to_summary_dict()["frequent_items/frequent_strings"]
    assert sorted((item.value, item.est) for item in frequent) == [
        (f"t{n}", ROWS_PER_THREAD) for n in range(THREADS)
    ]
    status = provider.status()
    assert (status.rows_dropped, status.rows_rejected) == (0, 0)


def test_threads_logging_while_writes_happen_lose_no_row(recording):
    provider = profiletel.configure(
        exporters=[recording], aggregate_by="hour", write_schedule=None, queue_full="block"
    )
    logger = profiletel.get_logger("concurrent")
    done = threading.Event()

    def flush_repeatedly() -> None:
        for _ in range(200):
            if done.is_set():
                return
            provider.force_flush(timeout_s=10)

    flusher = threading.Thread(target=flush_repeatedly)
    flusher.start()
    _log_from_threads(logger)
    done.set()
    flusher.join(timeout=120)
    assert provider.shutdown(timeout_s=120)

    assert provider.status().processors[0].writes > 2
    assert sum(p.row_count for p in recording.profiles) == THREADS * ROWS_PER_THREAD
