"""``profiletel plugins``: the exporters the installed plugins provide, and the plugins
that failed to load."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .._errors import PluginError
from .._plugins import list_exporters, list_plugins


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "plugins",
        help="list the exporters of every installed plugin and whether they loaded",
        description="List each exporter with the plugin and distribution that provide it, "
        "and each plugin that failed to load with its error. Exits with 1 if a plugin "
        "failed, 2 if the plugins conflict (or fail under PROFILETEL_STRICT_PLUGINS=1).",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        exporters = list_exporters()
        plugins = list_plugins()
    except PluginError as exc:
        print(f"profiletel plugins: error: {exc}", file=sys.stderr)
        return 2

    rows: list[tuple[str, ...]] = [("exporter", "plugin", "distribution", "version", "status")]
    for exporter in exporters:
        plugin = exporter.plugin
        rows.append(
            (
                exporter.name,
                plugin.name,
                plugin.distribution or "-",
                plugin.version or "-",
                "loaded",
            )
        )
    providing = {exporter.plugin.name for exporter in exporters}
    for plugin in plugins:
        if plugin.loaded and plugin.name in providing:
            continue
        status = "loaded, provides no exporter" if plugin.loaded else f"failed: {plugin.error}"
        rows.append(("-", plugin.name, plugin.distribution or "-", plugin.version or "-", status))
    print(render_table(rows))
    return 0 if all(plugin.loaded for plugin in plugins) else 1


def render_table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join(
        "  ".join(
            [cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True)] + [row[-1]]
        )
        for row in rows
    )
