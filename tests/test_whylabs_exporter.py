"""The ``whylabs`` exporter against a WhyLabs-compatible server on 127.0.0.1."""

from __future__ import annotations

import json
import logging
import threading
from datetime import datetime, timezone
from pathlib import Path

import pytest
from servers import (
    CLOSE,
    STALL,
    UPLOAD_SIGNATURE,
    WHYLABS_API_KEY,
    WhyLabsServer,
    column_counts,
    dead_letter_profiles,
    files_under,
    isolate_network_env,
    refused_url,
    status,
    wait_until,
)
from whylogs.core import DatasetSchema
from whylogs.core.segmentation_partition import segment_on_column

import profiletel
from profiletel import (
    DeadLetterStore,
    PermanentExportError,
    Schedule,
    TimeGranularity,
    TransientExportError,
)
from profiletel._export import call_exporter
from profiletel_exporters._common import parse_retry_after
from profiletel_exporters.whylabs import DEFAULT_ENDPOINT, WhyLabsExporter


def _ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp() * 1000)


def _configure(dead: Path, **options: object) -> profiletel.ProfileProvider:
    options.setdefault("write_schedule", None)
    return profiletel.configure(exporters=["whylabs"], dead_letter_dir=dead, **options)


def _errors(caplog: pytest.LogCaptureFixture, level: int = logging.ERROR) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == level]


def test_whylabs_is_registered_and_reads_whylogs_environment(whylabs: WhyLabsServer) -> None:
    plugin = {p.name: p for p in profiletel.list_plugins()}["whylabs"]
    exporter = profiletel.create_exporter("whylabs")

    assert (plugin.distribution, plugin.loaded, plugin.error) == ("profiletel", True, None)
    assert type(exporter) is WhyLabsExporter
    assert repr(exporter) == (
        f"WhyLabsExporter(endpoint={whylabs.url!r}, org_id='org-test', dataset_id=None)"
    )


def test_whylabs_endpoint_defaults_to_the_whylabs_api(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    isolate_network_env(monkeypatch, tmp_path)
    monkeypatch.setenv("WHYLABS_DEFAULT_ORG_ID", "org-7")

    exporter = WhyLabsExporter(api_key="k")  # built only: nothing is sent

    assert (exporter.endpoint, exporter.org_id) == (DEFAULT_ENDPOINT, "org-7")


def test_whylabs_without_an_api_key_fails_at_configure_time(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    isolate_network_env(monkeypatch, tmp_path)
    monkeypatch.delenv("WHYLABS_API_KEY", raising=False)

    with pytest.raises(profiletel.ConfigurationError, match="needs an API key: set WHYLABS_"):
        profiletel.configure(exporters=["whylabs"], dead_letter_dir=tmp_path / "dead")


def test_whylabs_rejects_an_endpoint_that_is_not_http() -> None:
    with pytest.raises(profiletel.ConfigurationError, match="is not an http"):
        WhyLabsExporter(api_key="k", endpoint="127.0.0.1:9")


def test_uploads_follow_the_whylabs_protocol(whylabs: WhyLabsServer, tmp_path: Path) -> None:
    provider = _configure(tmp_path / "dead")
    logger = provider.get_logger("model-1")
    logger.log([{"amount": 1.0, "country": "NL"}, {"amount": 3.0, "country": "DE"}],
               _ms("2024-03-05T07:15:00"))

    delivered = provider.force_flush(10)

    (post, put), uploads = whylabs.seen, whylabs.uploads
    assert delivered is True
    assert whylabs.problems == []
    assert (post.method, post.path, put.method) == ("POST", "/v1/log/async", "PUT")
    assert post.headers["x-api-key"] == WHYLABS_API_KEY
    assert post.headers["x-whylabs-resource"] == "model-1"
    assert json.loads(post.body) == {"datasetTimestamp": _ms("2024-03-05T07:00:00"),
                                     "segmentTags": []}
    assert put.headers["content-type"] == "application/octet-stream"
    assert "x-api-key" not in put.headers
    assert len(uploads) == 1
    assert (uploads[0].resource, uploads[0].dataset_timestamp) == (
        "model-1", _ms("2024-03-05T07:00:00"))
    assert column_counts([uploads[0].profile()]) == {"amount": 2, "country": 2}


def test_segmented_profiles_carry_their_segment_tags(
    whylabs: WhyLabsServer, tmp_path: Path
) -> None:
    provider = _configure(tmp_path / "dead")
    schema = DatasetSchema(segments=segment_on_column("country"))
    provider.get_logger("model-1", schema=schema).log(
        [{"amount": 1.0, "country": "NL"}, {"amount": 2.0, "country": "DE"},
         {"amount": 4.0, "country": "DE"}]
    )

    assert provider.force_flush(10) is True
    tags = {json.dumps(u.segment_tags): column_counts([u.profile()])["amount"]
            for u in whylabs.uploads}

    assert whylabs.problems == []
    assert tags == {'[{"key": "country", "value": "NL"}]': 1,
                    '[{"key": "country", "value": "DE"}]': 2}


def test_dataset_id_option_names_one_resource_for_every_dataset(
    whylabs: WhyLabsServer, tmp_path: Path
) -> None:
    options = {"whylabs": {"dataset_id": "model-7"}}
    provider = _configure(tmp_path / "dead", exporter_options=options)
    provider.get_logger("orders").log({"amount": 1.0})
    provider.get_logger("payments").log({"amount": 2.0})

    assert provider.force_flush(10) is True
    assert sorted(u.resource for u in whylabs.uploads) == ["model-7", "model-7"]


def test_503_503_then_200_is_delivered_on_the_third_attempt(
    whylabs: WhyLabsServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    whylabs.answer_log(status(503), status(503))
    dead = tmp_path / "dead"
    provider = _configure(dead)
    provider.get_logger("model-1").log({"amount": 1.0})

    flushes = [provider.force_flush(10) for _ in range(3)]

    assert flushes == [False, False, True]
    assert len(whylabs.log_requests()) == 3
    assert len(whylabs.uploads) == 1
    assert files_under(dead) == []
    assert len(_errors(caplog, logging.WARNING)) == 2
    assert "attempt 2 of 3: TransientExportError: whylabs: POST /v1/log/async for resource " \
           "model-1 answered HTTP 503" in _errors(caplog, logging.WARNING)[1]


def test_429_retry_after_delays_the_next_attempt(whylabs: WhyLabsServer, tmp_path: Path) -> None:
    whylabs.answer_log(status(429, retry_after="1"))
    provider = _configure(tmp_path / "dead")
    provider.get_logger("model-1").log({"amount": 1.0})

    # Ask for a write every 50 ms: only Retry-After can hold the second attempt back.
    assert wait_until(lambda: provider.force_flush(5), timeout_s=15)

    first, second = whylabs.log_requests()
    assert second.at_s - first.at_s >= 1.0
    assert len(whylabs.uploads) == 1
    assert provider.status().dead_lettered == 0


def test_403_is_dead_lettered_after_one_attempt_naming_exporter_and_status(
    whylabs: WhyLabsServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    whylabs.always_answer_log(status(403))
    dead = tmp_path / "dead"
    provider = _configure(dead)
    provider.get_logger("model-1").log({"amount": 1.0})

    delivered = provider.force_flush(10)
    provider.force_flush(10)

    letters = list(DeadLetterStore(dead))
    errors = _errors(caplog)
    assert delivered is False
    assert len(whylabs.log_requests()) == 1
    assert len(letters) == 1
    assert (letters[0].info["exporter"], letters[0].info["attempts"]) == ("whylabs", 1)
    assert len(errors) == 1
    assert errors[0].startswith("Exporter whylabs refused the profile of dataset 'model-1'")
    assert "answered HTTP 403 Forbidden; check WHYLABS_API_KEY" in errors[0]


def test_closed_connection_and_failed_upload_are_retried(
    whylabs: WhyLabsServer, tmp_path: Path
) -> None:
    whylabs.answer_log(CLOSE)
    whylabs.answer_upload(status(503))
    provider = _configure(tmp_path / "dead")
    provider.get_logger("model-1").log({"amount": 1.0})

    flushes = [provider.force_flush(10) for _ in range(3)]

    assert flushes == [False, False, True]
    assert [s.method for s in whylabs.seen] == ["POST", "POST", "PUT", "POST", "PUT"]
    assert len(whylabs.uploads) == 1


def test_read_timeout_is_transient(whylabs: WhyLabsServer) -> None:
    whylabs.answer_log(STALL)
    exporter = WhyLabsExporter(read_timeout_s=0.5)
    profile_source = profiletel.BucketProfile.from_bytes(_one_row_view())

    with pytest.raises(TransientExportError, match="ReadTimeout"):
        exporter.write(profile_source)
    assert exporter.write(profile_source)[0] is True


def test_stalled_server_shutdown_returns_and_dead_letters_the_profile(
    whylabs: WhyLabsServer, tmp_path: Path
) -> None:
    whylabs.answer_log(STALL)
    dead = tmp_path / "dead"
    provider = _configure(dead)
    provider.get_logger("model-1").log([{"amount": 1.0}, {"amount": 2.0}])
    returned: list[bool] = []

    shutdown = threading.Thread(target=lambda: returned.append(provider.shutdown(timeout_s=5)))
    shutdown.start()
    shutdown.join(timeout=30)  # a hang fails the test instead of blocking the suite

    assert shutdown.is_alive() is False
    assert returned == [False]
    assert column_counts(dead_letter_profiles(dead)) == {"amount": 2}
    assert [letter.info["attempts"] for letter in DeadLetterStore(dead)] == [1]
    assert whylabs.uploads == []


def test_whylabs_503_outage_through_three_scheduled_writes_loses_no_row(
    whylabs: WhyLabsServer, tmp_path: Path
) -> None:
    dead = tmp_path / "dead"
    provider = _configure(
        dead, aggregate_by="minute", write_schedule=Schedule(TimeGranularity.Second, 1)
    )
    processor = provider.processors[0]
    logger = provider.get_logger("model-1")
    logged = 0

    def log_rows(count: int) -> None:
        nonlocal logged
        logger.log([{"amount": float(i), "country": "NL"} for i in range(count)])
        logged += count

    log_rows(5)
    assert wait_until(lambda: processor.status().profiles_exported >= 1, 10)
    whylabs.always_answer_log(status(503))
    for batch in range(3):
        writes = processor.status().writes
        log_rows(7 + batch)
        assert wait_until(lambda w=writes: processor.status().writes > w, 10)
    assert wait_until(lambda: processor.status().dead_lettered >= 1, 10)
    whylabs.always_answer_log(None)
    log_rows(11)
    provider.shutdown(timeout_s=20)

    status_now = processor.status()
    delivered = [upload.profile() for upload in whylabs.uploads]
    dead_letters = dead_letter_profiles(dead)
    assert whylabs.problems == []
    assert (status_now.pending_exports, status_now.profiles_lost) == (0, 0)
    assert len(dead_letters) == status_now.dead_lettered >= 1
    assert len(delivered) == status_now.profiles_exported >= 2
    assert column_counts(delivered + dead_letters) == {"amount": logged, "country": logged}


def test_api_key_and_upload_signature_never_leak(
    whylabs: WhyLabsServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    dead = tmp_path / "dead"
    whylabs.answer_log(status(403))
    whylabs.answer_upload(CLOSE)
    provider = _configure(dead, max_attempts=1)
    exporter = provider.processors[0].exporters[0]
    provider.get_logger("a").log({"amount": 1.0})
    provider.force_flush(10)
    provider.get_logger("b").log({"amount": 1.0})
    provider.force_flush(10)
    failures = []
    for answer in (status(401), CLOSE):
        whylabs.answer_log(answer)
        with pytest.raises((PermanentExportError, TransientExportError)) as caught:
            exporter.write(profiletel.BucketProfile.from_bytes(_one_row_view()))
        failures.append(str(caught.value))
    whylabs.upload_base = refused_url()
    with pytest.raises(TransientExportError) as upload_failure:
        exporter.write(profiletel.BucketProfile.from_bytes(_one_row_view()))
    failures.append(str(upload_failure.value))

    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("profiletel"))
    sidecars = "\n".join(p.read_text() for p in dead.rglob("*.json"))
    assert len(list(dead.rglob("*.json"))) == 2
    assert "ConnectionError" in failures[2]
    assert "/upload/" in failures[2]
    for secret in (WHYLABS_API_KEY, "secret-4f2a"):
        assert secret not in caplog.text
        assert secret not in sidecars
        assert secret not in repr(exporter)
        assert all(secret not in failure for failure in failures)
    assert UPLOAD_SIGNATURE not in ours + sidecars + "".join(failures)


def _one_row_view() -> bytes:
    import pandas as pd
    from whylogs.core import DatasetProfile

    profile = DatasetProfile()
    profile.track(pandas=pd.DataFrame({"amount": [1.0]}))
    return profile.view().serialize()


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("1", 1.0),
        (" 2.5 ", 2.5),
        ("-3", 0.0),
        ("86400", 3600.0),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_reads_seconds_or_an_http_date(
    header: str | None, seconds: float | None
) -> None:
    assert parse_retry_after(header) == seconds


def test_key_in_a_reason_phrase_or_userinfo_in_the_endpoint_is_never_shown(
    whylabs: WhyLabsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import requests

    exporter = profiletel.create_exporter(
        "whylabs", api_key=WHYLABS_API_KEY, endpoint="http://user:secret-pw@127.0.0.1:9"
    )
    answer = requests.Response()
    answer.status_code = 500
    answer.reason = f"bad key {WHYLABS_API_KEY}"
    monkeypatch.setattr(exporter._session, "request", lambda *a, **k: answer)  # type: ignore[attr-defined]
    profile = profiletel.BucketProfile.from_bytes(_one_row_view())

    outcome = call_exporter(exporter, profile)

    assert not outcome.ok and "HTTP 500 bad key ***" in outcome.error
    assert WHYLABS_API_KEY not in outcome.error
    assert "secret-pw" not in repr(exporter)
