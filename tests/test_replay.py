"""``profiletel replay``: dead letters sent again through an exporter, against loopback servers."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from servers import (
    WHYLABS_API_KEY,
    S3Server,
    WhyLabsServer,
    column_counts,
    files_under,
    read_bucket,
    status,
)
from whylogs.core import DatasetProfile

import profiletel
from conftest import RecordingExporter
from profiletel import BucketProfile, DeadLetterStore, TransientExportError
from profiletel.cli import main
from profiletel.cli._replay import parse_options, replay
from profiletel_exporters.s3 import object_key

BUCKET = "profiles"




def _profile(dataset_id: str, rows: int) -> BucketProfile:
    """A profile as the processor makes it: its dataset timestamp is its bucket start."""
    bucket = datetime(2024, 3, 5, 7, tzinfo=timezone.utc)
    profile = DatasetProfile(dataset_timestamp=bucket)
    profile.track(pandas=pd.DataFrame({"amount": [float(i) for i in range(rows)]}))
    return BucketProfile(dataset_id, int(bucket.timestamp() * 1000), profile.view())


def _dead_letters(directory: Path, *rows: int) -> list[BucketProfile]:
    store = DeadLetterStore(directory)
    profiles = [_profile(f"model-{index}", count) for index, count in enumerate(rows)]
    for profile in profiles:
        store.put(profile, "whylabs", 3, "TransientExportError: told to fail")
    return profiles


def test_replay_delivers_dead_letters_of_a_refused_run_and_empties_the_directory(
    whylabs: WhyLabsServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dead = tmp_path / "dead"
    whylabs.always_answer_log(status(403))
    provider = profiletel.configure(exporters=["whylabs"], dead_letter_dir=dead,
                                    write_schedule=None)
    provider.get_logger("model-1").log([{"amount": 1.0}, {"amount": 2.0}])
    provider.get_logger("model-2").log({"amount": 5.0})
    provider.shutdown(10)
    letters_before = len(DeadLetterStore(dead))
    whylabs.always_answer_log(None)

    code = main(["replay", str(dead), "--exporter", "whylabs"])

    uploads = {u.resource: column_counts([u.profile()]) for u in whylabs.uploads}
    assert letters_before == 2
    assert code == 0
    assert capsys.readouterr().out == "replay through whylabs: delivered 2, left 0\n"
    assert files_under(dead) == []
    assert [p for p in dead.iterdir()] == []
    assert uploads == {"model-1": {"amount": 2}, "model-2": {"amount": 1}}
    assert whylabs.problems == []


def test_replay_through_s3_keeps_each_profiles_key(
    s3: S3Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    client = s3.client()
    client.create_bucket(Bucket=BUCKET)
    dead = tmp_path / "dead"
    profiles = _dead_letters(dead, 3, 4)

    code = main(["replay", str(dead), "--exporter", "s3", "--option", f"bucket={BUCKET}",
                 "--option", f"endpoint_url={s3.url}", "--option", "prefix=replayed"])

    stored = read_bucket(client, BUCKET)
    assert code == 0
    assert capsys.readouterr().out == "replay through s3: delivered 2, left 0\n"
    assert sorted(stored) == sorted(object_key(p, "replayed") for p in profiles)
    assert sorted(column_counts([p])["amount"] for p in stored.values()) == [3, 4]
    assert files_under(dead) == []


def test_replay_leaves_what_is_refused_and_exits_1(
    whylabs: WhyLabsServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dead = tmp_path / "dead"
    _dead_letters(dead, 1, 2)
    whylabs.always_answer_log(status(403))

    code = main(["replay", str(dead), "--exporter", "whylabs"])

    out, err = capsys.readouterr()
    assert code == 1
    assert out == f"replay through whylabs: delivered 0, left 2 in {dead}\n"
    assert len(err.splitlines()) == 2
    assert all("answered HTTP 403 Forbidden; check WHYLABS_API_KEY" in line
               for line in err.splitlines())
    assert WHYLABS_API_KEY not in out + err
    assert len(whylabs.log_requests()) == 2
    assert len(files_under(dead)) == 4


def test_replay_stops_once_the_destination_keeps_failing(
    whylabs: WhyLabsServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dead = tmp_path / "dead"
    _dead_letters(dead, 1, 2, 3)
    whylabs.always_answer_log(status(503))

    code = main(["replay", str(dead), "--exporter", "whylabs", "--attempts", "2",
                 "--retry-delay", "0"])

    out = capsys.readouterr().out
    assert code == 1
    assert out == (f"replay through whylabs: delivered 0, left 3 in {dead} (stopped: the "
                   "destination kept failing; run replay again later)\n")
    assert len(whylabs.log_requests()) == 2
    assert len(files_under(dead)) == 6


def test_replay_waits_for_retry_after_between_attempts(tmp_path: Path) -> None:
    dead = tmp_path / "dead"
    _dead_letters(dead, 1)
    exporter = RecordingExporter(
        fail_times=1, error=TransientExportError("busy", retry_after_s=2.5)
    )
    pauses: list[float] = []

    result = replay(DeadLetterStore(dead), exporter, retry_delay_s=1.0, sleep=pauses.append)

    assert (result.delivered, result.left, pauses) == (1, 0, [2.5])
    assert exporter.calls == 2


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--exporter", "local", "--option", "base_dir"], "--option takes KEY=VALUE"),
        (["--exporter", "nope"], "no exporter named 'nope' is registered"),
        (["--exporter", "s3"], "the s3 exporter needs a bucket"),
        (["--exporter", "local", "--attempts", "0"], "--attempts must be at least 1"),
    ],
)
def test_replay_usage_errors_exit_2(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["replay", str(tmp_path), *argv])

    assert code == 2
    assert message in capsys.readouterr().err


def test_replay_of_a_missing_directory_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["replay", str(tmp_path / "nowhere"), "--exporter", "local"])

    assert code == 2
    assert "no such dead-letter directory" in capsys.readouterr().err


def test_parse_options_reads_key_value_pairs() -> None:
    options: dict[str, Any] = parse_options(["bucket=b", "prefix=", "endpoint_url=http://h/x=y"])

    assert options == {"bucket": "b", "prefix": "", "endpoint_url": "http://h/x=y"}
    with pytest.raises(ValueError, match="--option bucket is given twice"):
        parse_options(["bucket=a", "bucket=b"])
