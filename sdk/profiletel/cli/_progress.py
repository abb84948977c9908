"""A progress line on stderr: redrawn in place on a terminal, a line per quarter otherwise."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    def __init__(self, total: int, label: str, stream: TextIO | None = None) -> None:
        self.total = max(total, 1)
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self._tty = self.stream.isatty()
        self._started = time.monotonic()
        self._next_draw = 0.0
        self._next_quarter = 0.25

    def update(self, done: int) -> None:
        now = time.monotonic()
        fraction = done / self.total
        if self._tty:
            if now < self._next_draw and done < self.total:
                return
            self._next_draw = now + 0.2
            width = 30
            filled = int(width * fraction)
            bar = "#" * filled + "-" * (width - filled)
            self.stream.write(f"\r{self.label} [{bar}] {done:,}/{self.total:,} {self._rate(done)}")
            self.stream.flush()
        elif fraction >= self._next_quarter:
            while fraction >= self._next_quarter:
                self._next_quarter += 0.25
            self.stream.write(f"{self.label}: {done:,}/{self.total:,} {self._rate(done)}\n")
            self.stream.flush()

    def close(self) -> None:
        if self._tty:
            self.stream.write("\n")
            self.stream.flush()

    def _rate(self, done: int) -> str:
        elapsed = max(time.monotonic() - self._started, 1e-9)
        return f"({done / elapsed:,.0f} rows/s)"
