"""The CLI's settings come from `TZUROT_*` like every service's (read without pydantic)."""

from pathlib import Path

import pytest

from tzurot.cli.settings import CliSettings


def test_defaults_without_environment() -> None:
    settings = CliSettings.from_env({})
    assert settings == CliSettings()
    assert settings.gateway_addr == "127.0.0.1:15051"
    assert settings.cli_tls_dir == Path(".data/certs/cli")


def test_environment_overrides_each_field_with_its_type() -> None:
    settings = CliSettings.from_env(
        {
            "TZUROT_GATEWAY_ADDR": "10.0.0.5:443",
            "tzurot_cli_tls_dir": "/etc/tzurot/cli",
            "TZUROT_RPC_TIMEOUT_SECONDS": "2.5",
            "TZUROT_GENERATE_TIMEOUT_SECONDS": "60",
            "TZUROT_UNRELATED": "x",
        }
    )
    assert settings == CliSettings("10.0.0.5:443", Path("/etc/tzurot/cli"), 2.5, 60.0)


def test_a_malformed_number_names_its_variable() -> None:
    with pytest.raises(ValueError, match="TZUROT_RPC_TIMEOUT_SECONDS"):
        CliSettings.from_env({"TZUROT_RPC_TIMEOUT_SECONDS": "soon"})
