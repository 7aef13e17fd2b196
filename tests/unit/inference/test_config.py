"""Inference settings from the environment: JSON mappings, secrets registered for redaction."""

from pathlib import Path

import pytest
from pydantic import ValidationError

from tzurot.inference.answering import AnswerSettings
from tzurot.inference.app import reply_settings
from tzurot.inference.config import InferenceSettings
from tzurot.runtime.config import secret_values
from tzurot.runtime.errors import StartupError
from tzurot.runtime.main import describe_settings_error

SYSTEM_KEY = "sk-or-systemKEYp8Ny4Lq"


def test_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TZUROT_TLS_DIR", str(tmp_path))
    settings = InferenceSettings.load()
    assert settings.listen == "127.0.0.1:15052"
    assert (settings.memory_addr, settings.keyvault_addr) == ("127.0.0.1:15053", "127.0.0.1:15054")
    assert (settings.providers, settings.system_keys) == ({}, {})
    assert (settings.provider_max_retries, settings.provider_timeout_seconds) == (2, 120.0)
    assert settings.history_limit == 30


def test_json_mappings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TZUROT_TLS_DIR", str(tmp_path))
    monkeypatch.setenv("TZUROT_PROVIDERS", '{"local": "http://127.0.0.1:8080/v1"}')
    monkeypatch.setenv("TZUROT_SYSTEM_KEYS", f'{{"openrouter": "{SYSTEM_KEY}"}}')
    settings = InferenceSettings.load()
    assert settings.providers == {"local": "http://127.0.0.1:8080/v1"}
    assert settings.system_keys["openrouter"].get_secret_value() == SYSTEM_KEY
    assert SYSTEM_KEY not in repr(settings)
    assert SYSTEM_KEY in secret_values(settings)


def test_one_variable_per_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TZUROT_TLS_DIR", str(tmp_path))
    monkeypatch.setenv("TZUROT_SYSTEM_KEYS__OPENROUTER", SYSTEM_KEY)
    settings = InferenceSettings.load()
    assert settings.system_keys["openrouter"].get_secret_value() == SYSTEM_KEY


def test_system_keys_from_the_secrets_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "TZUROT_SYSTEM_KEYS").write_text(f'{{"openai": "{SYSTEM_KEY}"}}')
    monkeypatch.setenv("TZUROT_TLS_DIR", str(tmp_path))
    monkeypatch.setenv("TZUROT_SECRETS_DIR", str(secrets))
    settings = InferenceSettings.load()
    assert secret_values(settings) == [SYSTEM_KEY]


def test_bad_json_is_one_line_without_the_value(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TZUROT_TLS_DIR", str(tmp_path))
    monkeypatch.setenv("TZUROT_SYSTEM_KEYS", f'{{"openrouter": {SYSTEM_KEY}')
    with pytest.raises(StartupError) as caught:
        InferenceSettings.load()
    assert str(caught.value) == "TZUROT_SYSTEM_KEYS is not valid JSON"


def test_an_image_is_never_larger_than_discords_upload_limit(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """10 MiB per file: what Discord takes in any server, so every image drawn can be posted."""
    monkeypatch.setenv("TZUROT_TLS_DIR", str(tmp_path))
    assert InferenceSettings.load().image_max_bytes == 5 * 1024 * 1024
    assert InferenceSettings.load(image_max_bytes=10 * 1024 * 1024).image_max_bytes == 10 << 20
    monkeypatch.setenv("TZUROT_IMAGE_MAX_BYTES", str(11 * 1024 * 1024))
    with pytest.raises(ValueError, match="image_max_bytes"):
        InferenceSettings.load()


def test_the_attempt_floor_is_an_operator_setting(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """TZUROT_MIN_ATTEMPT_SECONDS reaches the answers' settings, as the timeouts beside it."""
    monkeypatch.setenv("TZUROT_TLS_DIR", str(tmp_path))
    assert InferenceSettings.load().min_attempt_seconds == 15.0
    assert reply_settings(InferenceSettings.load()).answer == AnswerSettings()  # the same default
    monkeypatch.setenv("TZUROT_MIN_ATTEMPT_SECONDS", "7.5")
    monkeypatch.setenv("TZUROT_FIRST_EVENT_TIMEOUT_SECONDS", "60")
    answer = reply_settings(InferenceSettings.load()).answer
    assert (answer.min_attempt_seconds, answer.first_event_timeout) == (7.5, 60.0)


@pytest.mark.parametrize(
    ("value", "said"),
    [
        ("0", "Input should be greater than 0"),
        ("-5", "Input should be greater than 0"),
        ("soon", "Input should be a valid number, unable to parse string as a number"),
    ],
)
def test_an_attempt_floor_that_is_not_a_positive_number_stops_startup(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, value: str, said: str
) -> None:
    monkeypatch.setenv("TZUROT_TLS_DIR", str(tmp_path))
    monkeypatch.setenv("TZUROT_MIN_ATTEMPT_SECONDS", value)
    with pytest.raises(ValidationError) as caught:
        InferenceSettings.load()
    # What run_service prints (one line, the value never quoted) before it exits 2.
    assert describe_settings_error(caught.value) == f"TZUROT_MIN_ATTEMPT_SECONDS: {said}"
