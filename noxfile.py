"""Developer sessions: ``nox -s tests``, ``lint``, ``typecheck``, ``bench``."""

from __future__ import annotations

import nox

nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.reuse_existing_virtualenvs = True

PYTHON = "3.11"


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    session.install("-e", ".[test]")
    session.run("pytest", "-q", *session.posargs)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    session.install("ruff")
    session.run("ruff", "check", "sdk", "exporters", "tests", "benchmarks", "noxfile.py")
    session.run("ruff", "format", "--check", "sdk", "exporters")


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    session.install("-e", ".", "mypy", "pandas-stubs")
    session.run("mypy", "sdk/profiletel", "exporters/profiletel_exporters")


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Throughput, caller cost and memory beside whylogs and OpenTelemetry, in one run.

    ``nox -s bench -- --quick`` times whylogs per bucket on a sample of buckets;
    ``--only live,replay`` runs some sections. Figures go to docs/performance.md.
    """
    session.install("-e", ".[bench]")
    session.run("python", "benchmarks/throughput.py", *session.posargs)
