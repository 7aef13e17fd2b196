"""Settings of the tzurot command line (env `TZUROT_*`)."""

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

from tzurot.cli.paths import DEFAULT_DATA_DIR


class CliSettings(BaseSettings):
    """Where the gateway is and which certificate the CLI presents (identity `cli`)."""

    model_config = SettingsConfigDict(env_prefix="TZUROT_", extra="ignore")

    gateway_addr: str = "127.0.0.1:15051"
    cli_tls_dir: Path = DEFAULT_DATA_DIR / "certs" / "cli"
    rpc_timeout_seconds: float = 30.0
    generate_timeout_seconds: float = 600.0
