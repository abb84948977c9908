"""The ``s3`` exporter against moto's S3 server on 127.0.0.1, over real HTTP."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError
from servers import (
    AWS_SECRET_ACCESS_KEY,
    S3Server,
    column_counts,
    dead_letter_profiles,
    files_under,
    read_bucket,
    wait_until,
)
from whylogs.core import DatasetProfile, DatasetSchema
from whylogs.core.segmentation_partition import segment_on_column

import profiletel
from profiletel import (
    BucketProfile,
    DeadLetterStore,
    PermanentExportError,
    Schedule,
    TimeGranularity,
    TransientExportError,
)
from profiletel._read import summarize
from profiletel_exporters.s3 import S3Exporter, classify_s3_error, object_key

BUCKET = "profiles"



def _ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp() * 1000)


def _configure_s3(server: S3Server, dead: Path, **options: object) -> profiletel.ProfileProvider:
    return profiletel.configure(
        exporters=["s3"],
        exporter_options={"s3": {"bucket": BUCKET, "endpoint_url": server.url}},
        dead_letter_dir=dead,
        **options,
    )


def test_s3_is_registered_through_its_entry_point() -> None:
    plugin = {p.name: p for p in profiletel.list_plugins()}["s3"]
    exporter = profiletel.create_exporter("s3", bucket=BUCKET, endpoint_url="http://127.0.0.1:9")

    assert (plugin.distribution, plugin.loaded, plugin.error) == ("profiletel", True, None)
    assert type(exporter) is S3Exporter
    assert repr(exporter) == (
        "S3Exporter(bucket='profiles', prefix='', endpoint_url='http://127.0.0.1:9', region=None)"
    )


def test_s3_without_a_bucket_is_a_configuration_error() -> None:
    with pytest.raises(profiletel.ConfigurationError, match="needs a bucket"):
        profiletel.create_exporter("s3")


def test_s3_without_boto3_still_loads_and_says_what_to_install(tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "sys.modules['boto3'] = None\n"
        "sys.modules['botocore'] = None\n"
        "import profiletel\n"
        "print(profiletel.exporter_names())\n"
        "try:\n"
        "    profiletel.create_exporter('s3', bucket='profiles')\n"
        "except profiletel.ConfigurationError as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
        cwd=tmp_path,
    )

    lines = done.stdout.splitlines()
    assert done.returncode == 0, done.stderr
    assert lines[0] == "['local', 's3', 'whylabs']"
    assert lines[1].startswith("the s3 exporter needs boto3, which is not installed")
    assert lines[1].endswith("run: pip install 'profiletel[s3]'")


def test_object_key_is_prefix_dataset_date_hour_and_unique_name() -> None:
    view = DatasetProfile().view()
    profile = BucketProfile(
        "orders/eu", _ms("2024-03-05T07:00:00"), view, (("country", "N L"),), "ab" * 16
    )

    key = object_key(profile, "team//../x y/")

    assert key == (
        "team/%2E%2E/x%20y/orders%2Feu/2024/03/05/07/"
        "orders%2Feu.20240305T070000Z.country=N%20L.abababababababab.bin"
    )


def test_profiles_round_trip_through_the_bucket(s3: S3Server, tmp_path: Path) -> None:
    client = s3.client()
    client.create_bucket(Bucket=BUCKET)
    provider = profiletel.configure(
        exporters=["s3"],
        exporter_options={"s3": {"bucket": BUCKET, "endpoint_url": s3.url, "prefix": "team"}},
        dead_letter_dir=tmp_path / "dead",
        write_schedule=None,
    )
    logger = provider.get_logger("orders")
    for amount in (1.5, 2.5, 4.0):
        logger.log({"amount": amount, "country": "NL"}, _ms("2024-03-05T07:15:00"))
    for amount in (10.0, 20.0):
        logger.log({"amount": amount, "country": "DE"}, _ms("2024-03-05T08:20:00"))

    assert provider.force_flush(10) is True
    stored = read_bucket(client, BUCKET)
    by_hour = {key.split("/")[5]: profile for key, profile in stored.items()}
    seven = {s.column: s for s in summarize(by_hour["07"].view)}
    eight = {s.column: s for s in summarize(by_hour["08"].view)}

    assert sorted(stored) == sorted(object_key(p, "team") for p in stored.values())
    assert sorted(key.split("/")[:5] for key in stored) == [
        ["team", "orders", "2024", "03", "05"]
    ] * 2
    assert {p.dataset_id for p in stored.values()} == {"orders"}
    assert (seven["amount"].count, seven["amount"].min, seven["amount"].max) == (3, 1.5, 4.0)
    assert seven["amount"].mean == pytest.approx(8.0 / 3)
    assert (eight["amount"].count, eight["amount"].min, eight["amount"].max) == (2, 10.0, 20.0)
    assert (seven["country"].count, eight["country"].count) == (3, 2)
    assert by_hour["07"].bucket_start_ms == _ms("2024-03-05T07:00:00")


def test_segmented_profiles_get_one_key_per_segment(s3: S3Server, tmp_path: Path) -> None:
    client = s3.client()
    client.create_bucket(Bucket=BUCKET)
    provider = _configure_s3(s3, tmp_path / "dead", write_schedule=None)
    schema = DatasetSchema(segments=segment_on_column("country"))
    logger = provider.get_logger("orders", schema=schema)
    logger.log([{"amount": 1.0, "country": "NL"}, {"amount": 2.0, "country": "NL"},
                {"amount": 3.0, "country": "DE"}], _ms("2024-03-05T07:15:00"))

    assert provider.force_flush(10) is True
    stored = read_bucket(client, BUCKET)
    counts = {
        key.rsplit("/", 1)[1].split(".")[2]: column_counts([profile])["amount"]
        for key, profile in stored.items()
    }

    assert counts == {"country=NL": 2, "country=DE": 1}


def test_s3_outage_through_three_scheduled_writes_loses_no_row(
    s3: S3Server, tmp_path: Path
) -> None:
    client = s3.client()
    client.create_bucket(Bucket=BUCKET)
    dead = tmp_path / "dead"
    provider = _configure_s3(
        s3, dead, aggregate_by="minute", write_schedule=Schedule(TimeGranularity.Second, 1)
    )
    processor = provider.processors[0]
    logger = provider.get_logger("orders")
    logged = 0

    def log_rows(count: int) -> None:
        nonlocal logged
        logger.log([{"amount": float(i), "country": "NL"} for i in range(count)])
        logged += count

    log_rows(5)
    assert wait_until(lambda: processor.status().profiles_exported >= 1, 10)
    s3.stop()
    for batch in range(3):
        writes = processor.status().writes
        log_rows(7 + batch)
        assert wait_until(lambda w=writes: processor.status().writes > w, 10)
    # The first profile of the outage has now had its third and last attempt.
    assert wait_until(lambda: processor.status().dead_lettered >= 1, 10)
    s3.start()
    log_rows(11)
    delivered_all = provider.shutdown(timeout_s=20)

    status = processor.status()
    in_bucket = list(read_bucket(client, BUCKET).values())
    dead_letters = dead_letter_profiles(dead)
    assert delivered_all is False
    assert (status.pending_exports, status.profiles_lost) == (0, 0)
    assert len(dead_letters) == status.dead_lettered >= 1
    assert len(in_bucket) == status.profiles_exported >= 2
    assert column_counts(in_bucket + dead_letters) == {"amount": logged, "country": logged}


def test_s3_exports_leave_no_file_in_cwd_or_tempdir(
    s3: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cwd, tmp = tmp_path / "cwd", tmp_path / "tmp"
    cwd.mkdir()
    tmp.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("TMPDIR", str(tmp))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    client = s3.client()
    client.create_bucket(Bucket=BUCKET)
    provider = _configure_s3(s3, tmp_path / "dead", write_schedule=None)
    logger = provider.get_logger("orders")

    logger.log({"amount": 1.0})
    delivered_first = provider.force_flush(10)
    s3.stop()
    logger.log({"amount": 2.0})
    delivered_in_outage = provider.force_flush(10)
    s3.start()
    delivered_after = provider.force_flush(10)
    provider.shutdown(10)

    assert (delivered_first, delivered_in_outage, delivered_after) == (True, False, True)
    assert len(read_bucket(client, BUCKET)) == 2
    assert files_under(cwd) == []
    assert files_under(tmp) == []


def test_missing_bucket_is_dead_lettered_after_one_attempt(
    s3: S3Server, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    dead = tmp_path / "dead"
    provider = _configure_s3(s3, dead, write_schedule=None)
    provider.get_logger("orders").log({"amount": 1.0})

    delivered = provider.force_flush(10)
    delivered_later = provider.force_flush(10)

    letters = list(DeadLetterStore(dead))
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert (delivered, delivered_later) == (False, True)
    assert len(letters) == 1
    assert (letters[0].info["exporter"], letters[0].info["attempts"]) == ("s3", 1)
    assert "NoSuchBucket (HTTP 404)" in letters[0].info["last_error"]
    assert len(errors) == 1
    assert errors[0].startswith("Exporter s3 refused the profile of dataset 'orders'")
    assert "NoSuchBucket (HTTP 404); the bucket does not exist: create it" in errors[0]
    assert AWS_SECRET_ACCESS_KEY not in caplog.text
    assert AWS_SECRET_ACCESS_KEY not in letters[0].sidecar_path.read_text()


def test_s3_secret_key_is_in_no_log_sidecar_or_repr_during_an_outage(
    s3: S3Server, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    s3.client().create_bucket(Bucket=BUCKET)
    dead = tmp_path / "dead"
    provider = _configure_s3(s3, dead, write_schedule=None, max_attempts=1)
    exporter = provider.processors[0].exporters[0]
    s3.stop()
    provider.get_logger("orders").log({"amount": 1.0})

    delivered = provider.force_flush(10)

    sidecars = [json.loads(letter.sidecar_path.read_text()) for letter in DeadLetterStore(dead)]
    assert delivered is False
    assert len(sidecars) == 1
    assert sidecars[0]["last_error"].startswith("TransientExportError: s3 put of s3://profiles/")
    assert "EndpointConnectionError" in sidecars[0]["last_error"]
    assert AWS_SECRET_ACCESS_KEY not in caplog.text
    assert AWS_SECRET_ACCESS_KEY not in json.dumps(sidecars)
    assert AWS_SECRET_ACCESS_KEY not in repr(exporter)


def test_s3_accepts_a_plain_whylogs_profile_view(s3: S3Server) -> None:
    client = s3.client()
    client.create_bucket(Bucket=BUCKET)
    profile = DatasetProfile()
    profile.track(pandas=pd.DataFrame({"amount": [1.0, 2.0]}))
    exporter = S3Exporter(bucket=BUCKET, endpoint_url=s3.url)

    success, where = exporter.write(profile.view())

    stored = read_bucket(client, BUCKET)
    assert success is True
    assert [where] == [f"s3://{BUCKET}/{key}" for key in stored]
    assert next(iter(stored)).startswith("unknown/")
    assert column_counts(stored.values()) == {"amount": 2}


def _client_error(code: str, status: int, retry_after: str | None = None) -> ClientError:
    headers = {"retry-after": retry_after} if retry_after else {}
    return ClientError(
        {"Error": {"Code": code, "Message": "told so"},
         "ResponseMetadata": {"HTTPStatusCode": status, "HTTPHeaders": headers}},
        "PutObject",
    )


@pytest.mark.parametrize(
    ("error", "kind", "retry_after_s"),
    [
        (_client_error("SlowDown", 503, "2"), TransientExportError, 2.0),
        (_client_error("InternalError", 500), TransientExportError, None),
        (_client_error("RequestTimeout", 400), TransientExportError, None),
        (_client_error("TooManyRequests", 429), TransientExportError, None),
        (_client_error("BadGateway", 502), TransientExportError, None),
        (_client_error("NoSuchBucket", 404), PermanentExportError, None),
        (_client_error("AccessDenied", 403), PermanentExportError, None),
        (_client_error("InvalidAccessKeyId", 403), PermanentExportError, None),
        (_client_error("SignatureDoesNotMatch", 403), PermanentExportError, None),
        (_client_error("InvalidArgument", 400), PermanentExportError, None),
        (EndpointConnectionError(endpoint_url="http://127.0.0.1:9"), TransientExportError, None),
        (NoCredentialsError(), PermanentExportError, None),
    ],
)
def test_s3_failures_are_classified_transient_or_permanent(
    error: Exception, kind: type, retry_after_s: float | None
) -> None:
    classified = classify_s3_error(error, BUCKET, "k")

    assert type(classified) is kind
    assert classified.retry_after_s == retry_after_s
    assert str(classified).startswith(f"s3 put of s3://{BUCKET}/k failed")


def test_s3_permanent_failures_say_what_to_fix() -> None:
    messages = {
        code: str(classify_s3_error(_client_error(code, 403), BUCKET, "k"))
        for code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch")
    }

    assert messages == {
        "AccessDenied": "s3 put of s3://profiles/k failed with AccessDenied (HTTP 403); the "
        "credentials may not write there: grant s3:PutObject on the bucket and prefix, or use "
        "other credentials",
        "InvalidAccessKeyId": "s3 put of s3://profiles/k failed with InvalidAccessKeyId (HTTP "
        "403); the access key id is unknown to the store: check AWS_ACCESS_KEY_ID or the AWS "
        "profile in use",
        "SignatureDoesNotMatch": "s3 put of s3://profiles/k failed with SignatureDoesNotMatch "
        "(HTTP 403); the secret key does not match the access key id: check "
        "AWS_SECRET_ACCESS_KEY or the AWS profile in use",
    }
