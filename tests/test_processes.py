"""Forks, interpreter exit and SIGTERM, each in a subprocess whose wait is bounded, so
that a hang fails the test instead of the CI run."""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from profiletel import DeadLetterStore
from profiletel._read import read_profiles

SUBPROCESS_TIMEOUT_S = 120
LINE_TIMEOUT_S = 60

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork and POSIX signals")

# Every script logs with this timestamp, so that each process writes one bucket.
PREAMBLE = """
import json, os, signal, sys, threading, time
from pathlib import Path
import profiletel
BASE = sys.argv[1]
TS = (int(time.time()) - 7200) * 1000
"""


def run_script(body: str, base: Path, env: dict[str, str] | None = None) -> str:
    script = PREAMBLE + textwrap.dedent(body)
    result = subprocess.run(
        [sys.executable, "-c", script, str(base)],
        capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT_S,
        env={**os.environ, **(env or {})},
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def rows_on_disk(base: Path) -> int:
    return sum(profile.row_count for profile in read_profiles(base))


def profile_files(base: Path) -> list[Path]:
    return sorted(path for path in base.rglob("*.bin") if ".dead-letter" not in path.parts)


# Forks


def test_forked_children_get_their_own_worker_start_empty_and_export_their_rows(tmp_path):
    out = run_script(
        """
        provider = profiletel.configure(exporters=["local"], local_dir=BASE, write_schedule=None)
        processor = provider.processors[0]
        logger = profiletel.get_logger("orders")
        parent_worker = processor._worker.native_id
        # Tracked in the parent before the forks: the children must not export these.
        logger.log([{"n": i} for i in range(100)], timestamp_ms=TS, sync=True)

        children = []
        for k in range(3):
            read_end, write_end = os.pipe()
            pid = os.fork()
            if pid == 0:
                code = 1
                try:
                    status = processor.status()
                    report = {
                        "worker_alive": status.worker_alive,
                        "own_worker": processor._worker.native_id != parent_worker,
                        "datasets": sorted(status.datasets),
                        "buckets": status.buckets,
                    }
                    for i in range(10 * (k + 1)):
                        logger.log({"n": i}, timestamp_ms=TS)
                    report["delivered"] = provider.shutdown(timeout_s=30)
                    os.write(write_end, json.dumps(report).encode())
                    code = 0
                finally:
                    os._exit(code)
            os.close(write_end)
            children.append((pid, read_end))

        logger.log([{"n": i} for i in range(7)], timestamp_ms=TS)
        reports = []
        deadline = time.monotonic() + 60
        for pid, read_end in children:
            while True:
                done, wait_status = os.waitpid(pid, os.WNOHANG)
                if done:
                    break
                if time.monotonic() > deadline:
                    os.kill(pid, signal.SIGKILL)
                    sys.exit(f"child {pid} hung")
                time.sleep(0.02)
            if os.waitstatus_to_exitcode(wait_status) != 0:
                sys.exit(f"child {pid} failed")
            reports.append(json.loads(os.read(read_end, 65536)))
        print(json.dumps({"children": reports, "delivered": provider.shutdown(timeout_s=30)}))
        """,
        tmp_path,
    )

    result = json.loads(out)
    assert result["children"] == [
        {"worker_alive": True, "own_worker": True, "datasets": [], "buckets": 0, "delivered": True}
    ] * 3
    assert result["delivered"] is True
    assert len(profile_files(tmp_path)) == 4  # one per process
    assert rows_on_disk(tmp_path) == 100 + 10 + 20 + 30 + 7


def test_a_multiprocessing_fork_pool_exports_each_workers_rows_when_it_exits(tmp_path):
    out = run_script(
        """
        import multiprocessing

        def work(count):
            logger = profiletel.get_logger("orders")
            for i in range(count):
                logger.log({"n": i}, timestamp_ms=TS)
            return os.getpid()

        provider = profiletel.configure(exporters=["local"], local_dir=BASE, write_schedule=None)
        profiletel.get_logger("orders").log(
            [{"n": i} for i in range(50)], timestamp_ms=TS, sync=True
        )
        pool = multiprocessing.get_context("fork").Pool(3)
        try:
            pids = pool.map_async(work, [5, 10, 15, 20, 25, 30]).get(timeout=60)
        finally:
            # close() and join() let the workers exit normally, which runs their flush.
            pool.close()
            joiner = threading.Thread(target=pool.join, daemon=True)
            joiner.start()
            joiner.join(60)
            if joiner.is_alive():
                pool.terminate()
                sys.exit("pool workers hung at exit")
        print(json.dumps({"workers": len(set(pids)), "delivered": provider.shutdown(30)}))
        """,
        tmp_path,
    )

    result = json.loads(out)
    assert result["delivered"] is True
    assert len(profile_files(tmp_path)) == 1 + result["workers"]
    assert rows_on_disk(tmp_path) == 50 + 5 + 10 + 15 + 20 + 25 + 30


# Interpreter exit


def test_rows_are_flushed_at_exit_without_shutdown(tmp_path):
    run_script(
        """
        profiletel.configure(exporters=["local"], local_dir=BASE, write_schedule=None)
        profiletel.get_logger("orders").log([{"n": i} for i in range(42)], timestamp_ms=TS)
        """,
        tmp_path,
    )

    assert rows_on_disk(tmp_path) == 42


BROKEN_EXPORTERS = """
from whylogs.api.writer import Writer

class Hanging(Writer):
    exporter_name = "hanging"
    def write(self, file, dest=None, **kwargs):
        threading.Event().wait()
    def option(self, **kwargs):
        return self

class Down(Writer):
    exporter_name = "down"
    def write(self, file, dest=None, **kwargs):
        raise ConnectionError("destination is down")
    def option(self, **kwargs):
        return self
"""


@pytest.mark.parametrize(
    ("exporter", "last_error"),
    [
        ("Hanging", "shutdown timed out before delivery"),
        ("Down", "ConnectionError: destination is down"),
    ],
)
def test_an_exporter_that_hangs_or_is_down_at_exit_sends_the_profile_to_dead_letters(
    tmp_path, exporter, last_error
):
    run_script(
        BROKEN_EXPORTERS
        + f"""
profiletel.configure(exporters=[{exporter}()], local_dir=BASE, write_schedule=None)
profiletel.get_logger("orders").log([{{"n": i}} for i in range(42)], timestamp_ms=TS)
""",
        tmp_path,
        env={"PROFILETEL_EXIT_TIMEOUT_S": "3"},
    )

    letters = list(DeadLetterStore(tmp_path / ".dead-letter"))
    assert len(letters) == 1
    assert letters[0].load().row_count == 42
    assert letters[0].info["last_error"] == last_error


# SIGTERM


def read_line(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(LINE_TIMEOUT_S):
            process.kill()
            raise AssertionError(f"no output from the subprocess in {LINE_TIMEOUT_S} s")
    return process.stdout.readline().strip()


def start_script(base: Path, *parts: str) -> subprocess.Popen[str]:
    script = PREAMBLE + "".join(textwrap.dedent(part) for part in parts)
    return subprocess.Popen(
        [sys.executable, "-c", script, str(base)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def finish(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    try:
        out, err = process.communicate(timeout=SUBPROCESS_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise
    return process.returncode, out, err


CONFIGURE_AND_LOG = """
profiletel.configure(exporters=["local"], local_dir=BASE, write_schedule=None)
profiletel.get_logger("orders").log([{"n": i} for i in range(42)], timestamp_ms=TS)
"""


def test_sigterm_flushes_then_ends_the_process_by_sigterm(tmp_path):
    process = start_script(
        tmp_path,
        """
        profiletel.install_signal_handlers(timeout_s=20)
        profiletel.install_signal_handlers(timeout_s=20)  # a second call must not chain to itself
        """,
        CONFIGURE_AND_LOG,
        """
        print("ready", flush=True)
        for _ in range(600):  # short sleeps: a signal is handled between two of them
            time.sleep(0.1)
        print("SIGTERM did not end the process", flush=True)
        """,
    )
    assert read_line(process) == "ready"

    process.send_signal(signal.SIGTERM)
    returncode, out, err = finish(process)

    assert returncode == -signal.SIGTERM, err
    assert out == ""
    # Killed by the signal, so no atexit hook ran: the handler wrote these.
    assert rows_on_disk(tmp_path) == 42


def test_sigterm_during_the_exit_flush_lets_it_finish_then_ends_the_process(tmp_path):
    process = start_script(
        tmp_path,
        """
        from profiletel_exporters.local import LocalExporter

        class SignalsWhileWriting(LocalExporter):
            exporter_name = "local"
            def write(self, file, dest=None, **kwargs):
                # As a process manager would, while the exit hook is flushing.
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(0.5)
                return super().write(file, dest, **kwargs)

        profiletel.install_signal_handlers(timeout_s=20)
        profiletel.configure(exporters=[SignalsWhileWriting(BASE)], local_dir=BASE,
                             write_schedule=None)
        profiletel.get_logger("orders").log([{"n": i} for i in range(42)], timestamp_ms=TS)
        print("ready", flush=True)
        """,
    )
    assert read_line(process) == "ready"

    returncode, out, err = finish(process)

    assert returncode == -signal.SIGTERM, err
    assert rows_on_disk(tmp_path) == 42


def test_sigterm_flushes_then_calls_the_previous_handler_and_keeps_loggers_working(tmp_path):
    process = start_script(
        tmp_path,
        """
        def previous(signum, frame):
            print("profiles before the previous handler:", len(list(Path(BASE).rglob("*.bin"))))
            profiletel.get_logger("orders").log({"n": 42}, timestamp_ms=TS)
            sys.exit(3)

        signal.signal(signal.SIGTERM, previous)
        profiletel.install_signal_handlers(timeout_s=20)
        """,
        CONFIGURE_AND_LOG,
        """
        print("ready", flush=True)
        for _ in range(600):
            time.sleep(0.1)
        """,
    )
    assert read_line(process) == "ready"

    process.send_signal(signal.SIGTERM)
    returncode, out, err = finish(process)

    assert returncode == 3, err
    assert out.strip() == "profiles before the previous handler: 1"
    assert rows_on_disk(tmp_path) == 43  # the last row was written by the exit hook


def test_sigterm_that_was_ignored_is_flushed_and_still_ignored(tmp_path):
    process = start_script(
        tmp_path,
        """
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        profiletel.install_signal_handlers(timeout_s=20)
        """,
        CONFIGURE_AND_LOG,
        """
        print("ready", flush=True)
        for _ in range(600):
            time.sleep(0.1)
            if list(Path(BASE).rglob("*.bin")):
                print("flushed and still running", flush=True)
                break
        profiletel.get_logger("orders").log({"n": 42}, timestamp_ms=TS)
        """,
    )
    assert read_line(process) == "ready"

    process.send_signal(signal.SIGTERM)
    returncode, out, err = finish(process)

    assert returncode == 0, err
    assert out.strip() == "flushed and still running"
    assert rows_on_disk(tmp_path) == 43


def test_install_signal_handlers_outside_the_main_thread_is_a_configuration_error():
    import threading

    import profiletel

    raised: list[BaseException] = []

    def install() -> None:
        try:
            profiletel.install_signal_handlers()
        except BaseException as exc:
            raised.append(exc)

    thread = threading.Thread(target=install)
    thread.start()
    thread.join(LINE_TIMEOUT_S)

    assert len(raised) == 1
    assert isinstance(raised[0], profiletel.ConfigurationError)
    assert "main thread" in str(raised[0])


def can_unshare_pid() -> bool:
    try:
        probe = subprocess.run(["unshare", "--pid", "--fork", "true"], capture_output=True,
                               timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


@pytest.mark.skipif(not can_unshare_pid(), reason="needs `unshare --pid` (root or user namespaces)")
def test_sigterm_to_a_container_init_process_flushes_and_exits_with_143(tmp_path):
    script = PREAMBLE + textwrap.dedent(
        """
        profiletel.install_signal_handlers(timeout_s=20)
        """
    ) + CONFIGURE_AND_LOG + (
        'print("ready", os.getpid(), flush=True)\nfor _ in range(600):\n    time.sleep(0.1)\n'
    )
    process = subprocess.Popen(
        ["unshare", "--pid", "--fork", "--kill-child", sys.executable, "-c", script,
         str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert read_line(process) == "ready 1"

    # The Python process is the only child of unshare; as PID 1 of its namespace the
    # kernel would drop a SIGTERM it had no handler for.
    children = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()
    os.kill(int(children[0]), signal.SIGTERM)
    returncode, out, err = finish(process)

    assert returncode == 128 + signal.SIGTERM, err
    assert rows_on_disk(tmp_path) == 42
