"""The documentation: the site builds in strict mode, and every code block in it runs.

Rules for the fenced code blocks of ``README.md`` and ``docs/*.md``:

- ``python`` blocks run, in page order, each in a fresh namespace; the blocks of one page
  share one temporary working directory, so a block may read what an earlier block of
  its page wrote. They run in a configured environment: none of the machine's
  ``PROFILETEL_*`` variables, fake AWS credentials with instance-metadata lookups off,
  ``PROFILETEL_S3_ENDPOINT_URL`` pointing at moto's S3 server on 127.0.0.1 (holding the
  bucket the docs name), ``WHYLABS_API_ENDPOINT`` at the loopback WhyLabs test server
  with its test key, and the ``jsonl`` example plugin registered in process as if it
  were installed. A provider a block leaves installed is shut down after it.
- ``bash`` blocks are only syntax-checked with ``bash -n``: they install packages or run
  long jobs.
- ``toml`` blocks must parse. ``text`` blocks are output, file layouts or formats, and
  are not run.
- An unlabelled block, or any other language, fails the test: every block says what it
  is, and a new kind of block gets a rule here first.
- A block preceded by the line ``<!-- docs-test: skip REASON -->`` is not run; the
  reason is required. It is used once: the "before" import of migration.md, a whylogs
  module that the pinned whylogs 1.6.4 no longer ships.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from servers import WHYLABS_API_KEY, S3Server, WhyLabsServer, isolate_network_env

import profiletel
from profiletel import _config

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: toml blocks go unchecked there
    tomllib = None  # type: ignore[assignment]

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]
EXAMPLE_SRC = ROOT / "examples" / "profiletel-exporter-jsonl" / "src"
DOCS_BUCKET = "ml-profiles"

_FENCE = re.compile(r"^```(?P<lang>[\w-]*)\s*$")
_SKIP = re.compile(r"^<!-- docs-test: skip (?P<reason>\S.*?) -->$")


@dataclass(frozen=True)
class Block:
    page: Path
    line: int
    lang: str
    source: str
    skip_reason: str | None


def code_blocks(page: Path) -> list[Block]:
    """The fenced blocks of ``page`` that start at the beginning of a line."""
    lines = page.read_text(encoding="utf-8").splitlines()
    blocks, index = [], 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        end = next((i for i in range(index + 1, len(lines)) if lines[i].strip() == "```"), None)
        if end is None:
            raise AssertionError(f"{page.name}:{index + 1}: code block never closed")
        before = lines[index - 1].strip() if index > 0 else ""
        marker = _SKIP.match(before)
        blocks.append(Block(page, index + 1, opening["lang"], "\n".join(lines[index + 1:end]),
                            marker["reason"] if marker else None))
        index = end + 1
    return blocks


@pytest.fixture
def docs_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """The environment the python blocks run in (see the module docstring)."""
    isolate_network_env(monkeypatch, tmp_path)
    for name in [*_config_variables(), "PROFILETEL_STRICT_PLUGINS"]:
        monkeypatch.delenv(name, raising=False)
    s3 = S3Server()
    s3.start()
    whylabs = WhyLabsServer()
    whylabs.start()
    s3.client().create_bucket(Bucket=DOCS_BUCKET)
    monkeypatch.setenv(_config.PROFILETEL_S3_ENDPOINT_URL, s3.url)
    monkeypatch.setenv(_config.WHYLABS_API_ENDPOINT, whylabs.url)
    monkeypatch.setenv(_config.WHYLABS_API_KEY, WHYLABS_API_KEY)
    monkeypatch.syspath_prepend(str(EXAMPLE_SRC))
    import profiletel_exporter_jsonl

    profiletel.register_plugin(profiletel_exporter_jsonl, name="jsonl")
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    try:
        yield workdir
    finally:
        profiletel.unregister_plugin("jsonl")
        whylabs.stop()
        s3.reset()
        s3.stop()


def _config_variables() -> list[str]:
    return [value for name, value in vars(_config).items()
            if isinstance(value, str) and name == value and name.isupper()]


def _run_python(block: Block) -> None:
    code = compile(block.source, f"{block.page.name}:{block.line}", "exec")
    try:
        exec(code, {"__name__": f"docs_{block.page.stem}"})
    finally:
        provider = profiletel.get_provider()
        if provider is not None and not provider.is_shut_down:
            provider.shutdown(timeout_s=30)


def _check_bash(block: Block) -> None:
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("bash is not installed, so bash blocks cannot be syntax-checked")
    checked = subprocess.run([bash, "-n"], input=block.source, capture_output=True, text=True,
                             timeout=30)
    assert checked.returncode == 0, f"{block.page.name}:{block.line}: {checked.stderr}"


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_code_block_of_the_page_runs(page: Path, docs_env: Path) -> None:
    for block in code_blocks(page):
        where = f"{page.name}:{block.line}"
        if block.skip_reason is not None:
            continue
        if block.lang == "python":
            _run_python(block)
        elif block.lang == "bash":
            _check_bash(block)
        elif block.lang == "toml":
            if tomllib is not None:
                tomllib.loads(block.source)
        elif block.lang != "text":
            raise AssertionError(f"{where}: a ```{block.lang} block has no rule in "
                                 "tests/test_docs.py; label it python, bash, toml or text")


def test_block_extractor_reads_languages_lines_and_skip_markers(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("# t\n\n```python\nx = 1\n```\n\n<!-- docs-test: skip needs a real S3 -->\n"
                    "```bash\nls\n```\n", encoding="utf-8")

    blocks = code_blocks(page)

    assert [(b.line, b.lang, b.source, b.skip_reason) for b in blocks] == [
        (3, "python", "x = 1", None),
        (8, "bash", "ls", "needs a real S3"),
    ]


def test_skip_markers_carry_a_reason_and_only_migration_uses_one() -> None:
    bare = [f"{page.name}:{number}" for page in PAGES
            for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1)
            if "docs-test:" in line and not _SKIP.match(line.strip())]
    skipped = [block.page.name for page in PAGES for block in code_blocks(page)
               if block.skip_reason is not None]

    assert bare == []
    assert skipped == ["migration.md"]


def test_configuration_page_lists_every_environment_variable() -> None:
    page = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")

    missing = [name for name in _config_variables() if f"`{name}`" not in page]

    assert missing == []
    assert len(_config_variables()) == 15


def test_site_builds_in_strict_mode_with_the_api_reference(tmp_path: Path) -> None:
    pytest.importorskip("mkdocstrings", reason="the docs build needs the test extra: "
                        "pip install -e '.[test]'")
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )

    assert built.returncode == 0, built.stderr[-3000:]
    assert "WARNING" not in built.stderr
    api = (tmp_path / "api.html").read_text(encoding="utf-8")
    for anchor in ("profiletel.configure", "profiletel.TransientExportError",
                   "profiletel._plugins.ExporterSpec.profiletel_exporters",
                   "profiletel_exporter_jsonl.JsonlExporter"):
        assert f'id="{anchor}"' in api, anchor
