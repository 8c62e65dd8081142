from pathlib import Path

import pytest

from sentiment_core.settings import Settings, SettingsError


def test_defaults_are_local_files_and_an_embedded_redis(monkeypatch, tmp_path) -> None:
    for name in ("DATABASE_URL", "REDIS_URL", "MODEL_DIR", "IMDB_DATA"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SENTIMENT_VAR", str(tmp_path))
    settings = Settings.from_env()
    assert settings.database_url == f"sqlite:///{tmp_path / 'sentiment.db'}"
    assert settings.redis_url is None
    assert settings.model_dir == tmp_path / "models"
    assert settings.imdb_data is None
    with pytest.raises(RuntimeError, match="REDIS_URL"):
        settings.broker_url  # noqa: B018


def test_environment_overrides_defaults(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://db/sentiment")
    monkeypatch.setenv("REDIS_URL", "redis://broker:6379/0")
    monkeypatch.setenv("MODEL_DIR", str(tmp_path / "m"))
    monkeypatch.setenv("IMDB_DATA", "/data/imdb.tar.gz")
    monkeypatch.setenv("BATCH_SIZE", "32")
    settings = Settings.from_env()
    assert settings.database_url == "postgresql://db/sentiment"
    assert settings.broker_url == "redis://broker:6379/0"
    assert settings.model_dir == Path(tmp_path / "m")
    assert settings.imdb_data == "/data/imdb.tar.gz"
    assert settings.batch_size == 32


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("BATCH_SIZE", "abc", 'BATCH_SIZE must be a positive integer, got "abc"'),
        ("BATCH_SIZE", "0", 'BATCH_SIZE must be a positive integer, got "0"'),
        ("PROXY_HOPS", "-1", 'PROXY_HOPS must be an integer of 0 or more, got "-1"'),
        ("FEEDBACK_HOLDOUT", "1.5", 'FEEDBACK_HOLDOUT must be a number between 0 and 1, got "1.5"'),
        ("RETRAIN_EVERY_S", "soon", 'RETRAIN_EVERY_S must be a positive number, got "soon"'),
        ("GATE_MIN_GAIN", "", 'GATE_MIN_GAIN must be a number, got ""'),
        ("GATE_MIN_GAIN", "nan", 'GATE_MIN_GAIN must be a number, got "nan"'),
        ("RECONCILE_AFTER_S", "inf", 'RECONCILE_AFTER_S must be a positive number, got "inf"'),
        (
            "SUBMIT_RATE_LIMIT",
            "lots",
            'SUBMIT_RATE_LIMIT must be a rate limit such as "120/minute" or "10 per second; '
            '1000 per day", got "lots"',
        ),
    ],
)
def test_a_bad_value_is_refused_with_the_variable_and_what_it_expects(
    monkeypatch, name, value, message
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as raised:
        Settings.from_env()
    assert str(raised.value) == message


@pytest.mark.parametrize("value", ["120/minute", "10 per second; 1000 per day", "5/2 hours"])
def test_rate_limits_in_flask_limiters_notation_are_taken(monkeypatch, value) -> None:
    from limits import parse_many

    monkeypatch.setenv("FEEDBACK_RATE_LIMIT", value)
    assert Settings.from_env().feedback_rate_limit == value and parse_many(value)


def test_a_bad_setting_stops_the_command_line_in_one_line(monkeypatch) -> None:
    from click.testing import CliRunner

    from sentiment_cli.main import cli

    monkeypatch.setenv("MAX_ATTEMPTS", "many")
    result = CliRunner().invoke(cli, ["models", "list"])
    assert result.exit_code == 1
    assert result.output == 'Error: MAX_ATTEMPTS must be a positive integer, got "many"\n'


def test_the_readme_documents_every_setting_with_its_default() -> None:
    from dataclasses import MISSING, fields

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    table = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in table.splitlines()[4:]:
        if line.startswith("| `"):
            variable, default, _ = (cell.strip() for cell in line.strip("|").split(" | ", 2))
            rows[variable.strip("`")] = default
    declared = {item.metadata["env"]: item.default for item in fields(Settings)}
    assert set(rows) == set(declared)
    for variable, default in declared.items():
        assert default is not MISSING
        # A number or a rate is written first as it is; the other defaults, in words.
        written = rows[variable].split(":")[0].strip("`")
        if isinstance(default, int | float):
            assert float(written) == default, variable
        elif isinstance(default, str) and "/" in default:
            assert written == default, variable
