"""Third-party plugins found through real entry points: throwaway distributions (a
``*.dist-info`` folder and a module) on ``PYTHONPATH`` of a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SUBPROCESS_TIMEOUT_S = 120

GOOD_PLUGIN = """
from whylogs.api.writer import Writer
import profiletel

class FileCounter(Writer):
    exporter_name = "counter"
    def __init__(self, path):
        self.path = path
    def write(self, file, dest=None, **kwargs):
        with open(self.path, "a") as out:
            out.write(f"{file.row_count}\\n")
        return True, self.path
    def option(self, **kwargs):
        return self

@profiletel.hookimpl
def profiletel_exporters():
    return {"counter": FileCounter}
"""

IMPORT_FAILS = """
raise ImportError("missing dependency foo")
"""

HOOK_RAISES = """
import profiletel

@profiletel.hookimpl
def profiletel_exporters():
    raise RuntimeError("hook exploded")
"""


def twin(name: str) -> str:
    return f"""
import profiletel
from profiletel_exporters.local import LocalExporter

@profiletel.hookimpl
def profiletel_exporters():
    return {{"twin": LocalExporter, "{name}_only": LocalExporter}}
"""


def make_distribution(
    site: Path, name: str, version: str, module: str, source: str, entry_point: str
) -> None:
    (site / f"{module}.py").write_text(textwrap.dedent(source))
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[profiletel]\n{entry_point} = {module}\n")


@pytest.fixture
def site(tmp_path: Path) -> Path:
    folder = tmp_path / "site"
    folder.mkdir()
    make_distribution(folder, "good-plugin", "1.2.3", "good_plugin", GOOD_PLUGIN, "counter")
    return folder


@pytest.fixture
def broken_site(site: Path) -> Path:
    make_distribution(site, "broken-import", "0.1", "broken_import", IMPORT_FAILS, "broken")
    make_distribution(site, "broken-hook", "0.2", "broken_hook", HOOK_RAISES, "exploding")
    return site


def run_python(
    site: Path, script: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k != "PROFILETEL_STRICT_PLUGINS"}
    environment.update(env or {})
    environment["PYTHONPATH"] = os.pathsep.join(
        [str(site), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script), *args],
        capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT_S, env=environment,
    )


CONFIGURE = """
import json, logging, sys
logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
import profiletel
base = sys.argv[1]
try:
    provider = profiletel.configure(
        exporters=["local", "counter"], local_dir=base, write_schedule=None,
        exporter_options={"counter": {"path": base + "/counter.txt"}},
    )
except profiletel.ProfiletelError as exc:
    print(json.dumps({"error": type(exc).__name__, "message": str(exc)}))
    sys.exit(0)
profiletel.get_logger("orders").log([{"n": i} for i in range(5)])
print(json.dumps({"delivered": provider.shutdown(timeout_s=30)}))
"""


def plugin_warnings(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("WARNING profiletel._plugins")]


def test_plugins_that_fail_to_import_or_whose_hook_raises_warn_once_each_and_others_work(
    broken_site, tmp_path
):
    result = run_python(broken_site, CONFIGURE, str(tmp_path))

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"delivered": True}
    warnings = plugin_warnings(result.stderr)
    assert len(warnings) == 2
    assert "plugin 'broken' from distribution broken-import failed" in warnings[0]
    assert "ImportError: missing dependency foo" in warnings[0]
    assert "plugin 'exploding' from distribution broken-hook failed" in warnings[1]
    assert "RuntimeError: hook exploded" in warnings[1]
    assert (tmp_path / "counter.txt").read_text() == "5\n"
    assert len(list((tmp_path / "orders").glob("*.bin"))) == 1


def test_strict_plugins_turns_a_failing_plugin_into_an_error(broken_site, tmp_path):
    result = run_python(
        broken_site, CONFIGURE, str(tmp_path), env={"PROFILETEL_STRICT_PLUGINS": "1"}
    )

    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout)
    assert outcome["error"] == "PluginError"
    assert outcome["message"].startswith(
        "plugin 'broken' from distribution broken-import failed: "
        "ImportError: missing dependency foo"
    )


def test_an_unknown_exporter_name_mentions_the_plugins_that_failed(broken_site, tmp_path):
    result = run_python(
        broken_site,
        """
        import profiletel
        try:
            profiletel.configure(exporters=["broken"], write_schedule=None)
        except profiletel.ConfigurationError as exc:
            print(exc)
        """,
    )

    assert result.returncode == 0, result.stderr
    assert "no exporter named 'broken' is registered; known: counter, local" in result.stdout
    assert "plugin 'broken' from distribution broken-import failed to load" in result.stdout


@pytest.mark.parametrize("same_entry_point_name", [False, True])
def test_two_plugins_registering_one_exporter_name_is_an_error_naming_both_distributions(
    site, tmp_path, same_entry_point_name
):
    make_distribution(site, "twin-a", "1.0", "twin_a", twin("a"), "twin" if
                      same_entry_point_name else "twin_a")
    make_distribution(site, "twin-b", "2.0", "twin_b", twin("b"), "twin" if
                      same_entry_point_name else "twin_b")

    result = run_python(site, CONFIGURE, str(tmp_path))

    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout)
    assert outcome["error"] == "PluginError"
    assert outcome["message"].startswith("exporter name 'twin' is registered twice")
    assert "(twin-a)" in outcome["message"]
    assert "(twin-b)" in outcome["message"]


CLI = """
import sys
from profiletel.cli import main
sys.exit(main(["plugins"]))
"""


def test_plugins_command_lists_exporters_and_failed_plugins_with_their_distribution(broken_site):
    result = run_python(broken_site, CLI)

    assert result.returncode == 1, result.stderr
    lines = [" ".join(line.split()) for line in result.stdout.splitlines()]
    assert lines == [
        "exporter plugin distribution version status",
        "counter counter good-plugin 1.2.3 loaded",
        "local local profiletel 0.1.0 loaded",
        "s3 s3 profiletel 0.1.0 loaded",
        "whylabs whylabs profiletel 0.1.0 loaded",
        "- broken broken-import 0.1 failed: ImportError: missing dependency foo",
        "- exploding broken-hook 0.2 failed: RuntimeError: hook exploded",
    ]


def test_plugins_command_exits_zero_when_every_plugin_loads(site):
    result = run_python(site, CLI)

    assert result.returncode == 0, result.stderr
    # The header, the good plugin's exporter, and local, s3 and whylabs.
    assert len(result.stdout.splitlines()) == 5


def test_plugins_command_reports_a_strict_failure_as_an_error(broken_site):
    result = run_python(broken_site, CLI, env={"PROFILETEL_STRICT_PLUGINS": "1"})

    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("profiletel plugins: error: plugin 'broken' from "
                                    "distribution broken-import failed")
