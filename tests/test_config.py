"""The configuration model: precedence, exporter variables, validation, ``profiletel config``."""

from __future__ import annotations

from pathlib import Path

import pytest
from servers import WHYLABS_API_KEY, isolate_network_env

import profiletel
from profiletel import ConfigurationError, TimeGranularity, _config
from profiletel.cli import main

_VARIABLES = (
    _config.PROFILETEL_EXPORTERS, _config.PROFILETEL_AGGREGATE_BY, _config.PROFILETEL_WRITE_EVERY,
    _config.PROFILETEL_LOCAL_DIR, _config.PROFILETEL_DEAD_LETTER_DIR,
    _config.PROFILETEL_EXIT_TIMEOUT_S, _config.PROFILETEL_STRICT_PLUGINS,
    *(declared.variable for declared in _config.EXPORTER_VARIABLES),
)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate_network_env(monkeypatch, tmp_path)
    for name in _VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def test_argument_beats_environment_beats_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROFILETEL_AGGREGATE_BY", "day")

    from_env = _config.resolve()
    from_argument = _config.resolve(aggregate_by="minute")
    monkeypatch.delenv("PROFILETEL_AGGREGATE_BY")
    from_default = _config.resolve()

    assert from_argument.settings["aggregate_by"].value is TimeGranularity.Minute
    assert from_argument.settings["aggregate_by"].source == "argument"
    assert from_env.settings["aggregate_by"].value is TimeGranularity.Day
    assert from_env.settings["aggregate_by"].source == "environment"
    assert from_default.settings["aggregate_by"].value is TimeGranularity.Hour
    assert from_default.settings["aggregate_by"].source == "default"


def test_dead_letter_dir_follows_the_local_dir_it_sits_in(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PROFILETEL_LOCAL_DIR", "/data/profiles")

    from_env = _config.resolve().settings["dead_letter_dir"]
    from_argument = _config.resolve(local_dir="/srv/p").settings["dead_letter_dir"]

    assert (from_env.value, from_env.source) == ("/data/profiles/.dead-letter", "environment")
    assert (from_argument.value, from_argument.source) == ("/srv/p/.dead-letter", "argument")


def test_configure_uses_the_resolved_values(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PROFILETEL_AGGREGATE_BY", "day")
    monkeypatch.setenv("PROFILETEL_WRITE_EVERY", "never")

    provider = profiletel.configure(local_dir=tmp_path / "p")

    [processor] = provider.processors
    assert processor.aggregate_by is TimeGranularity.Day
    assert processor.write_schedule is None
    assert str(processor.dead_letters.directory) == str(tmp_path / "p" / ".dead-letter")


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("PROFILETEL_AGGREGATE_BY", "week", "PROFILETEL_AGGREGATE_BY: unknown time granularity "
         "'week'; expected one of: second, minute, hour, day"),
        ("PROFILETEL_WRITE_EVERY", "soon", "PROFILETEL_WRITE_EVERY: invalid write schedule "
         "'soon'; expected <number><unit> with unit s, m, h or d (for example 10m or 1h), "
         "or 'never'"),
        ("PROFILETEL_EXIT_TIMEOUT_S", "-1", "PROFILETEL_EXIT_TIMEOUT_S='-1' is not a number "
         "of seconds >= 0"),
        ("PROFILETEL_STRICT_PLUGINS", "maybe", "PROFILETEL_STRICT_PLUGINS='maybe' is not a "
         "switch; expected one of: 1, true, yes, on, 0, false, no, off"),
        ("PROFILETEL_EXPORTERS", "local,nope", "PROFILETEL_EXPORTERS: no exporter named 'nope' "
         "is registered; known: "),
    ],
)
def test_invalid_core_variable_fails_at_configure_naming_it(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    monkeypatch.setenv(variable, value)

    with pytest.raises(ConfigurationError) as raised:
        profiletel.configure()

    assert str(raised.value).startswith(message)
    assert profiletel.get_provider() is None


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("PROFILETEL_S3_BUCKET", "s3://ml-profiles/prod", "PROFILETEL_S3_BUCKET="
         "'s3://ml-profiles/prod' is not an S3 bucket name; expected the bare name: 3 to 255 "
         "letters, digits, dots, hyphens and underscores, without s3:// or a key prefix "
         "(that goes in PROFILETEL_S3_PREFIX)"),
        ("PROFILETEL_S3_ENDPOINT_URL", "127.0.0.1:9000", "PROFILETEL_S3_ENDPOINT_URL="
         "'127.0.0.1:9000' is not a URL; expected http://host[:port][/path] or https://"),
        ("PROFILETEL_S3_REGION", "EU West", "PROFILETEL_S3_REGION='EU West' is not a region "
         "name; expected lowercase letters, digits and single hyphens, such as eu-west-1"),
    ],
)
def test_invalid_s3_variable_fails_at_configure_naming_it(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    monkeypatch.setenv("PROFILETEL_S3_BUCKET", "profiles")
    monkeypatch.setenv(variable, value)

    with pytest.raises(ConfigurationError) as raised:
        profiletel.configure(exporters=["s3"])

    assert str(raised.value).startswith(message)


def test_invalid_whylabs_endpoint_fails_at_configure_naming_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WHYLABS_API_KEY", WHYLABS_API_KEY)
    monkeypatch.setenv("WHYLABS_API_ENDPOINT", "api.whylabsapp.com")

    with pytest.raises(ConfigurationError) as raised:
        profiletel.configure(exporters=["whylabs"])

    assert str(raised.value) == ("WHYLABS_API_ENDPOINT='api.whylabsapp.com' is not a URL; "
                                 "expected http://host[:port][/path] or "
                                 "https://host[:port][/path]")


def test_invalid_exporter_variable_is_ignored_while_its_exporter_is_unused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PROFILETEL_S3_ENDPOINT_URL", "not a url")

    provider = profiletel.configure(exporters=["local"], local_dir=tmp_path)

    assert [type(e).__name__ for e in provider.processors[0].exporters] == ["LocalExporter"]


def test_s3_exporter_takes_its_options_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PROFILETEL_S3_BUCKET", "env-bucket")
    monkeypatch.setenv("PROFILETEL_S3_PREFIX", "prod/eu")
    monkeypatch.setenv("PROFILETEL_S3_ENDPOINT_URL", "http://127.0.0.1:9/")
    monkeypatch.setenv("PROFILETEL_S3_REGION", "eu-west-1")

    exporter = profiletel.create_exporter("s3")
    overridden = profiletel.create_exporter("s3", bucket="arg-bucket")

    assert repr(exporter) == ("S3Exporter(bucket='env-bucket', prefix='prod/eu', "
                              "endpoint_url='http://127.0.0.1:9', region='eu-west-1')")
    assert overridden.bucket == "arg-bucket"  # type: ignore[attr-defined]
    assert overridden.prefix == "prod/eu"  # type: ignore[attr-defined]


def test_whylabs_api_key_with_a_control_character_is_refused_without_echoing_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WHYLABS_API_KEY", "secret-part\nrest")

    with pytest.raises(ConfigurationError) as raised:
        profiletel.create_exporter("whylabs", endpoint="http://127.0.0.1:9")

    assert str(raised.value).startswith("WHYLABS_API_KEY holds characters an HTTP header "
                                        "cannot carry; expected printable ASCII")
    assert "secret-part" not in str(raised.value)


def test_config_command_prints_values_and_their_sources(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PROFILETEL_WRITE_EVERY", "1h")
    monkeypatch.setenv("PROFILETEL_S3_BUCKET", "env-bucket")

    code = main(["config", "--aggregate-by", "day"])

    rows = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines()}
    assert code == 0
    assert rows["aggregate_by"] == ["aggregate_by", "day", "argument", "PROFILETEL_AGGREGATE_BY"]
    assert rows["write_schedule"] == ["write_schedule", "1h", "environment",
                                      "PROFILETEL_WRITE_EVERY"]
    assert rows["exporters"] == ["exporters", "local", "default", "PROFILETEL_EXPORTERS"]
    assert rows["max_attempts"] == ["max_attempts", "3", "default", "-"]
    assert rows["s3.bucket"] == ["s3.bucket", "env-bucket", "environment",
                                 "PROFILETEL_S3_BUCKET"]


def test_config_command_shows_a_schedule_that_never_writes_as_never(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PROFILETEL_WRITE_EVERY", "off")

    main(["config"])

    row = next(line.split() for line in capsys.readouterr().out.splitlines()
               if line.startswith("write_schedule"))
    assert row == ["write_schedule", "never", "environment", "PROFILETEL_WRITE_EVERY"]


def test_config_command_never_prints_the_api_key(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("WHYLABS_API_KEY", WHYLABS_API_KEY)

    code = main(["config"])

    out = capsys.readouterr().out
    assert code == 0
    assert WHYLABS_API_KEY not in out
    assert WHYLABS_API_KEY.split(":")[0] not in out
    row = next(line.split() for line in out.splitlines() if line.startswith("whylabs.api_key"))
    assert row == ["whylabs.api_key", "***", "environment", "WHYLABS_API_KEY"]


def test_config_command_reports_an_invalid_variable_and_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PROFILETEL_S3_REGION", "Mars 1")

    code = main(["config"])

    assert code == 2
    assert "PROFILETEL_S3_REGION='Mars 1' is not a region name" in capsys.readouterr().err


def test_plugins_command_lists_every_exporter_with_its_distribution(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["plugins"])

    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert code == 0
    assert rows[0] == ["exporter", "plugin", "distribution", "version", "status"]
    by_name = {row[0]: row for row in rows[1:]}
    version = profiletel.__version__
    assert by_name["local"] == ["local", "local", "profiletel", version, "loaded"]
    assert by_name["s3"] == ["s3", "s3", "profiletel", version, "loaded"]
    assert by_name["whylabs"] == ["whylabs", "whylabs", "profiletel", version, "loaded"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_queue_rows": "x"}, "max_queue_rows must be a whole number, got 'x'"),
        ({"max_attempts": 2.5}, "max_attempts must be a whole number, got 2.5"),
        ({"block_timeout_s": "a"}, "block_timeout_s must be a number of seconds"),
        ({"frobnicate": 1}, "unexpected keyword argument 'frobnicate'"),
        ({"exporter_options": ["local"]}, "exporter_options takes"),
        ({"exporters": "local"}, r"write exporters=\['local'\]"),
        ({"exporters": []}, "exporters is empty"),
    ],
)
def test_configure_rejects_bad_processor_options_with_a_configuration_error(
    tmp_path: Path, options: dict, message: str
) -> None:
    with pytest.raises(profiletel.ConfigurationError, match=message):
        profiletel.configure(write_schedule=None, local_dir=tmp_path, **options)
