"""The command line: log, show and demo."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from profiletel._read import read_profiles
from profiletel.cli import main


@pytest.fixture
def orders_csv(tmp_path: Path) -> Path:
    frame = pd.DataFrame({
        "when": ["2024-05-01T10:15:00Z", "2024-05-01T10:45:00Z", "2024-05-01T11:05:00Z"],
        "amount": [10.0, 20.0, None],
        "country": ["NL", "DE", "NL"],
    })
    path = tmp_path / "orders.csv"
    frame.to_csv(path, index=False)
    return path


def test_log_writes_one_profile_per_bucket_and_prints_a_summary(
    tmp_path: Path, orders_csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["log", str(orders_csv), "--dataset", "orders", "--timestamp-column", "when",
                 "--output", str(tmp_path / "out")])

    assert code == 0
    printed = capsys.readouterr().out
    assert "rows             3" in printed
    assert "buckets          2" in printed
    assert "profiles written 2" in printed
    buckets = sorted(p.bucket_start_ms for p in read_profiles(tmp_path / "out"))
    assert buckets == [1_714_557_600_000, 1_714_561_200_000]


def test_log_reads_parquet_and_json_lines(tmp_path: Path, orders_csv: Path) -> None:
    frame = pd.read_csv(orders_csv)
    frame.to_parquet(tmp_path / "orders.parquet")
    frame.to_json(tmp_path / "orders.jsonl", orient="records", lines=True)

    for name in ("orders.parquet", "orders.jsonl"):
        out = tmp_path / name.replace(".", "-")
        assert main(["log", str(tmp_path / name), "--dataset", "orders",
                     "--timestamp-column", "when", "--output", str(out)]) == 0
        assert sum(p.row_count for p in read_profiles(out)) == 3


def test_log_names_a_missing_timestamp_column(
    tmp_path: Path, orders_csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["log", str(orders_csv), "--dataset", "orders", "--timestamp-column", "nope",
                 "--output", str(tmp_path / "out")])

    assert code == 2
    assert "timestamp column 'nope' is not in the input" in capsys.readouterr().err


def test_show_prints_merged_and_per_bucket_figures(
    tmp_path: Path, orders_csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["log", str(orders_csv), "--dataset", "orders", "--timestamp-column", "when",
          "--output", str(tmp_path / "out")])
    capsys.readouterr()

    assert main(["show", str(tmp_path / "out")]) == 0
    merged = capsys.readouterr().out
    assert "dataset orders: 2 profile(s), 2 bucket(s)" in merged
    amount = next(line for line in merged.splitlines() if line.startswith("amount"))
    assert amount.split()[:5] == ["amount", "3", "1", "f:2", "15"]

    assert main(["show", str(tmp_path / "out"), "--by-bucket"]) == 0
    blocks = capsys.readouterr().out
    assert "dataset orders, bucket 2024-05-01T10:00:00Z" in blocks
    assert "dataset orders, bucket 2024-05-01T11:00:00Z" in blocks


def test_demo_logs_flights_and_checks_the_row_count(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["demo", "--limit", "3000", "--output", str(tmp_path / "profiles")])

    printed = capsys.readouterr().out
    assert code == 0
    assert "rows             3,000" in printed
    assert "check passed" in printed
    assert "count 3,000 rows" in printed
    report = tmp_path / "profiles" / "flights-report.html"
    assert f"report written to {report}" in printed
    assert "<h2>dataset flights</h2>" in report.read_text()


def test_log_reads_a_numeric_timestamp_column_as_epoch_milliseconds(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    pd.DataFrame({"ts": [1_700_000_000_000, 1_700_003_600_000], "x": [1, 2]}).to_csv(
        path, index=False
    )

    assert main(["log", str(path), "--dataset", "events", "--timestamp-column", "ts",
                 "--output", str(tmp_path / "out")]) == 0

    buckets = sorted(p.bucket_start_ms for p in read_profiles(tmp_path / "out"))
    assert buckets == [1_699_999_200_000, 1_700_002_800_000]


def test_show_skips_a_damaged_file_and_names_it(
    tmp_path: Path, orders_csv: Path, capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    main(["log", str(orders_csv), "--dataset", "orders", "--timestamp-column", "when",
          "--output", str(tmp_path / "out")])
    damaged = tmp_path / "out" / "orders" / "damaged.bin"
    damaged.write_bytes(b"not a profile")
    capsys.readouterr()

    assert main(["show", str(tmp_path / "out")]) == 0

    assert "dataset orders: 2 profile(s)" in capsys.readouterr().out
    assert any(str(damaged) in record.getMessage() for record in caplog.records)


def test_replay_leaves_a_profile_folder_without_sidecars_alone(
    tmp_path: Path, orders_csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["log", str(orders_csv), "--dataset", "orders", "--timestamp-column", "when",
          "--output", str(tmp_path / "out")])
    before = sorted(p.name for p in (tmp_path / "out").rglob("*.bin"))

    code = main(["replay", str(tmp_path / "out"), "--exporter", "local",
                 "--option", f"base_dir={tmp_path / 'elsewhere'}"])

    assert code == 1
    assert sorted(p.name for p in (tmp_path / "out").rglob("*.bin")) == before
    assert not (tmp_path / "elsewhere").exists()
    assert "not a dead letter" in capsys.readouterr().err
