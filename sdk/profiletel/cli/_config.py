"""``profiletel config``: the effective configuration, and where each value came from."""

from __future__ import annotations

import argparse
import inspect
from typing import Any

from .. import _config
from .._processor import BatchProfileProcessor

# Arguments of BatchProfileProcessor that configure() sets itself; the rest are the
# processor options configure() passes through.
_SET_BY_CONFIGURE = frozenset({"self", "exporters", "aggregate_by", "write_schedule",
                               "dead_letter_dir"})


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "config",
        help="print the effective configuration and where each value came from",
        description="Print every option configure() would use, its value, and whether it "
        "came from an argument, the environment or the default. Secrets are shown as ***. "
        "The options below stand for the arguments of configure(). Exits 2 on an invalid "
        "value.",
    )
    parser.add_argument("--exporters", help="comma-separated exporter names")
    parser.add_argument("--aggregate-by", help="minute, hour or day")
    parser.add_argument("--write-every", help="a schedule such as 10m, or never")
    parser.add_argument("--local-dir", help="the local exporter's folder")
    parser.add_argument("--dead-letter-dir", help="the dead-letter directory")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    print(render(effective_settings(args)))
    return 0


def effective_settings(args: argparse.Namespace) -> list[_config.Setting]:
    """The core options, the processor options, then the exporters' options."""
    exporters = None
    if args.exporters is not None:
        exporters = [name.strip() for name in args.exporters.split(",") if name.strip()]
    core = _config.resolve(
        exporters=exporters,
        aggregate_by=args.aggregate_by,
        write_schedule=args.write_every if args.write_every is not None else _config.UNSET,
        local_dir=args.local_dir,
        dead_letter_dir=args.dead_letter_dir,
    )
    return [*core.settings.values(), *_processor_settings(), *_config.exporter_settings()]


def _processor_settings() -> list[_config.Setting]:
    parameters = inspect.signature(BatchProfileProcessor.__init__).parameters.values()
    return [
        _config.Setting(parameter.name, None, parameter.default, _config.DEFAULT)
        for parameter in parameters
        if parameter.name not in _SET_BY_CONFIGURE and parameter.default is not parameter.empty
    ]


def render(settings: list[_config.Setting]) -> str:
    rows = [("option", "value", "source", "variable")]
    rows.extend((s.option, s.shown(), s.source, s.variable or "-") for s in settings)
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True))
        + "  " + row[3]
        for row in rows
    )
