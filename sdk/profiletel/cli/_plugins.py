"""``profiletel plugins``: the exporters that are installed, and the plugins providing them."""

from __future__ import annotations

import argparse
from typing import Any

from .._plugins import list_exporters, list_plugins


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "plugins",
        help="list the installed exporters and the plugins that provide them",
        description="List every exporter name with the plugin (entry point of the "
        "profiletel group) that provides it, its distribution and version, then every "
        "plugin that failed to load, with the reason. Exits 1 if any plugin failed.",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    print(render())
    return 1 if any(not plugin.loaded for plugin in list_plugins()) else 0


def render() -> str:
    """One row per exporter, then one per plugin that failed to load."""
    rows = [("exporter", "plugin", "distribution", "version", "status")]
    for exporter in list_exporters():
        plugin = exporter.plugin
        rows.append((exporter.name, plugin.name, plugin.distribution or "-",
                     plugin.version or "-", "loaded"))
    failed = [plugin for plugin in list_plugins() if not plugin.loaded]
    for plugin in failed:
        rows.append(("-", plugin.name, plugin.distribution or "-", plugin.version or "-",
                     f"failed: {plugin.error}"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True))
        + "  " + row[-1]
        for row in rows
    ]
    return "\n".join(line.rstrip() for line in lines)
