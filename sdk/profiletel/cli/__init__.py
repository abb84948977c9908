"""The ``profiletel`` command line. Each sub-command lives in its own module and adds
itself to the parser through a ``register(subparsers)`` function."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from . import _demo, _log, _plugins, _show

__all__ = ["main"]

_COMMANDS = (_log, _show, _demo, _plugins)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="profiletel",
        description="Profile rows into whylogs profiles per dataset and time bucket.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in _COMMANDS:
        command.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.run(args) or 0)
    except (ValueError, TypeError, OSError) as exc:
        print(f"profiletel {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
