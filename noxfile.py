"""Developer sessions: ``nox -s tests``, ``lint``, ``typecheck``, ``docs``, ``bench``."""

from __future__ import annotations

import nox

nox.options.sessions = ["lint", "typecheck", "tests", "docs"]
nox.options.reuse_existing_virtualenvs = True

PYTHON = "3.11"


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    session.install("-e", ".[test]")
    session.run("pytest", "-q", *session.posargs)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    session.install("ruff")
    session.run("ruff", "check", "sdk", "exporters", "examples", "tests", "benchmarks",
                "noxfile.py")


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    session.install("-e", ".", "mypy", "pandas-stubs")
    session.run("mypy", "sdk/profiletel", "exporters/profiletel_exporters")


@nox.session(python=PYTHON)
def docs(session: nox.Session) -> None:
    """Build the site into ./site; --strict turns every warning (a broken link, a
    docstring mkdocstrings cannot read) into a failure."""
    session.install("-e", ".", "mkdocs>=1.6,<2", "mkdocstrings[python]>=0.26")
    session.run("mkdocs", "build", "--strict", "--site-dir", "site")


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Throughput, caller cost and memory beside whylogs and OpenTelemetry, in one run.

    ``nox -s bench -- --quick`` times whylogs per bucket on a sample of buckets;
    ``--only live,replay`` runs some sections. Figures go to docs/performance.md.
    """
    session.install("-e", ".[bench]")
    session.run("python", "benchmarks/throughput.py", *session.posargs)
