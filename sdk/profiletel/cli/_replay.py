"""``profiletel replay``: send the dead letters of a directory again, through any exporter."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from whylogs.api.writer import Writer

from .._deadletter import DeadLetterStore
from .._export import DEFAULT_MAX_ATTEMPTS, ExportOutcome, call_exporter
from .._plugins import create_exporter
from .._profile import BucketProfile

__all__ = ["ReplayResult", "parse_options", "replay"]

DEFAULT_RETRY_DELAY_S: Final = 1.0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "replay",
        help="send the dead letters under DIR again through an exporter",
        description="Send every dead-lettered profile under DIR through the exporter NAME, "
        "with the same transient/permanent classification and attempt limit as a running "
        "service, and delete each one once it is delivered. Exits 1 if any is left.",
    )
    parser.add_argument("directory", type=Path, metavar="DIR", help="a dead-letter directory")
    parser.add_argument("--exporter", required=True, metavar="NAME",
                        help="the exporter to send through (local, s3, whylabs, or a plugin's)")
    parser.add_argument(
        "--option", action="append", default=[], metavar="KEY=VALUE",
        help="an option for the exporter, such as bucket=my-bucket; repeatable. Give secrets "
        "through the exporter's environment variables, not here.",
    )
    parser.add_argument("--attempts", type=int, default=DEFAULT_MAX_ATTEMPTS,
                        help="attempts per profile on transient failures (default: %(default)s)")
    parser.add_argument(
        "--retry-delay", type=float, default=DEFAULT_RETRY_DELAY_S, metavar="SECONDS",
        help="pause between attempts, unless the destination asks for longer with "
        "Retry-After (default: %(default)s)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.attempts < 1:
        raise ValueError(f"--attempts must be at least 1, got {args.attempts}")
    if not args.retry_delay >= 0:
        raise ValueError(f"--retry-delay must be >= 0 seconds, got {args.retry_delay}")
    if not args.directory.is_dir():
        raise FileNotFoundError(f"{args.directory}: no such dead-letter directory")
    exporter = create_exporter(args.exporter, **parse_options(args.option))
    try:
        result = replay(
            DeadLetterStore(args.directory),
            exporter,
            attempts=args.attempts,
            retry_delay_s=args.retry_delay,
            report=lambda line: print(line, file=sys.stderr),
        )
    finally:
        close = getattr(exporter, "close", None)
        if callable(close):
            close()
    print(result.render(args.exporter, args.directory))
    return 0 if result.left == 0 else 1


def parse_options(pairs: Sequence[str]) -> dict[str, str]:
    """``["bucket=b", "prefix=p"]`` as ``{"bucket": "b", "prefix": "p"}``.

    :raises ValueError: for a pair without ``=``, an empty key, or a key given twice.
    """
    options: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"--option takes KEY=VALUE, got {pair!r}")
        if key in options:
            raise ValueError(f"--option {key} is given twice")
        options[key] = value
    return options


@dataclass
class ReplayResult:
    """What one replay came to."""

    delivered: int = 0
    left: int = 0
    stopped_early: bool = False
    errors: list[str] = field(default_factory=list)

    def render(self, exporter: str, directory: os.PathLike[str] | str) -> str:
        line = f"replay through {exporter}: delivered {self.delivered}, left {self.left}"
        if self.left:
            line += f" in {directory}"
        if self.stopped_early:
            line += " (stopped: the destination kept failing; run replay again later)"
        return line


def replay(
    store: DeadLetterStore,
    exporter: Writer,
    *,
    attempts: int = DEFAULT_MAX_ATTEMPTS,
    retry_delay_s: float = DEFAULT_RETRY_DELAY_S,
    report: Callable[[str], None] = lambda line: None,
    sleep: Callable[[float], None] = time.sleep,
) -> ReplayResult:
    """Send every dead letter in ``store`` through ``exporter`` and delete the delivered.

    A transient failure is tried again, up to ``attempts`` in all, after
    ``retry_delay_s`` or the destination's ``Retry-After`` if longer; a permanent one is
    not. Once a profile runs out of attempts on transient failures the destination is
    taken to be down, and the remaining letters are left for a later replay.

    :param report: called with one line per profile that is left, naming its file.
    """
    result = ReplayResult()
    letters = list(store)
    for index, letter in enumerate(letters):
        if not letter.info:
            # Without its sidecar a .bin is not a dead letter (perhaps a profile folder
            # passed by mistake): deleting it after delivery would move user data.
            result.left += 1
            error = "no .json sidecar beside it, so it is not a dead letter; left alone"
            result.errors.append(error)
            report(f"left {letter.profile_path}: {error}")
            continue
        try:
            profile = letter.load()
        except Exception as exc:
            error, retryable = f"cannot be read: {type(exc).__name__}: {exc}", False
        else:
            outcome = _send(exporter, profile, attempts, retry_delay_s, sleep)
            if outcome.ok:
                letter.remove()
                result.delivered += 1
                continue
            error, retryable = outcome.error, outcome.retryable
        result.left += 1
        result.errors.append(error)
        report(f"left {letter.profile_path}: {error}")
        if retryable:
            rest = len(letters) - index - 1
            result.left += rest
            result.stopped_early = rest > 0
            break
    _remove_empty_folders(store.directory)
    return result


def _send(
    exporter: Writer,
    profile: BucketProfile,
    attempts: int,
    retry_delay_s: float,
    sleep: Callable[[float], None],
) -> ExportOutcome:
    outcome = call_exporter(exporter, profile)
    for _ in range(attempts - 1):
        if outcome.ok or not outcome.retryable:
            break
        sleep(max(retry_delay_s, outcome.retry_after_s or 0.0))
        outcome = call_exporter(exporter, profile)
    return outcome


def _remove_empty_folders(root: Path) -> None:
    """Remove the exporter and dataset folders that replay emptied; keep ``root``."""
    for folder, _subfolders, _files in os.walk(root, topdown=False):
        # A folder that still holds something refuses rmdir, and stays.
        if Path(folder) != root:
            with contextlib.suppress(OSError):
                os.rmdir(folder)
