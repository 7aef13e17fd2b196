"""Settings of the tzurot command line (env `TZUROT_*`).

A plain dataclass read from the environment, not pydantic-settings: every `tzurot` command
starts by reading these, and importing pydantic costs more than the rest of `tzurot chat -m`'s
start (see tests/unit/cli/test_lazy_start.py).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path

from tzurot.cli.paths import DEFAULT_DATA_DIR

PREFIX = "TZUROT_"


class SettingsError(ValueError):
    """A malformed `TZUROT_*` setting; its message names the variable (one line)."""


@dataclass(frozen=True)
class CliSettings:
    """Where the gateway is and which certificate the CLI presents (identity `cli`)."""

    gateway_addr: str = "127.0.0.1:15051"
    cli_tls_dir: Path = DEFAULT_DATA_DIR / "certs" / "cli"
    rpc_timeout_seconds: float = 30.0
    generate_timeout_seconds: float = 600.0

    @property
    def gateway_named(self) -> str:
        """The gateway as an error message names it."""
        return f"the gateway at {self.gateway_addr} (TZUROT_GATEWAY_ADDR)"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> CliSettings:
        """`TZUROT_<FIELD>` (any case) overrides each default; a malformed number is an
        error naming the variable."""
        env = {k.upper(): v for k, v in (os.environ if environ is None else environ).items()}
        values: dict[str, object] = {}
        for field in fields(cls):
            raw = env.get(PREFIX + field.name.upper())
            if raw is None:
                continue
            if field.name.endswith("_seconds"):
                try:
                    values[field.name] = float(raw)
                except ValueError:
                    raise SettingsError(
                        f"{PREFIX}{field.name.upper()} must be a number of seconds, not {raw!r}"
                    ) from None
            elif field.name.endswith("_dir"):
                values[field.name] = Path(raw)
            else:
                values[field.name] = raw
        return cls(**values)  # type: ignore[arg-type]  # each value converted to its field's type
