"""ServiceSettings: env vars, the secrets dir, secret_values() and startup error text."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, SecretStr, ValidationError

from tzurot.runtime.config import ServiceSettings, secret_values
from tzurot.runtime.errors import StartupError
from tzurot.runtime.main import describe_settings_error


class Upstream(BaseModel):
    token: SecretStr = SecretStr("")
    url: str = "http://x"


class DemoSettings(ServiceSettings):
    database_url: SecretStr
    api_key: SecretStr | None = None
    upstream: Upstream = Upstream()


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TZUROT_SECRETS_DIR", "TZUROT_DATABASE_URL", "TZUROT_API_KEY", "TZUROT_TLS_DIR"):
        monkeypatch.delenv(name, raising=False)


def test_reads_prefixed_and_nested_env_vars(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TZUROT_TLS_DIR", str(tmp_path))
    monkeypatch.setenv("TZUROT_DATABASE_URL", "postgresql://u:pw@h/db")
    monkeypatch.setenv("TZUROT_GRACE_SECONDS", "2.5")
    monkeypatch.setenv("TZUROT_LOG_FORMAT", "json")
    monkeypatch.setenv("TZUROT_UPSTREAM__TOKEN", "upstream-token")
    settings = DemoSettings.load()
    assert settings.tls_dir == tmp_path
    assert settings.grace_seconds == 2.5
    assert settings.log_format == "json"
    assert settings.listen == "127.0.0.1:0"
    assert settings.upstream.token.get_secret_value() == "upstream-token"
    assert "pw@h" not in repr(settings)
    assert sorted(secret_values(settings)) == ["postgresql://u:pw@h/db", "upstream-token"]


def test_reads_secrets_from_files_and_env_wins(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "TZUROT_DATABASE_URL").write_text("postgresql://from-file\n")
    (secrets / "TZUROT_API_KEY").write_text("sk-from-file")
    monkeypatch.setenv("TZUROT_SECRETS_DIR", str(secrets))
    monkeypatch.setenv("TZUROT_TLS_DIR", str(tmp_path))
    monkeypatch.setenv("TZUROT_API_KEY", "sk-from-env")
    settings = DemoSettings.load(log_level="DEBUG")
    assert settings.database_url.get_secret_value() == "postgresql://from-file"
    assert settings.api_key is not None
    assert settings.api_key.get_secret_value() == "sk-from-env"
    assert settings.log_level == "DEBUG"


def test_missing_secrets_dir_is_a_startup_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TZUROT_SECRETS_DIR", str(tmp_path / "absent"))
    with pytest.raises(StartupError, match="TZUROT_SECRETS_DIR is not a directory"):
        DemoSettings.load()


def test_validation_error_names_env_vars_but_not_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZUROT_GRACE_SECONDS", "sk-not-a-number-but-secret")
    with pytest.raises(ValidationError) as caught:
        DemoSettings.load()
    text = describe_settings_error(caught.value)
    assert text.startswith(
        "TZUROT_TLS_DIR, TZUROT_DATABASE_URL are not set; TZUROT_GRACE_SECONDS: "
    )
    assert "sk-not" not in text
