"""Settings every service shares, from `TZUROT_*` env vars and optional secret files.

`ServiceSettings.load()` also reads a folder of secret files named like the env vars
(`TZUROT_DATABASE_URL`…) when `TZUROT_SECRETS_DIR` points at one, e.g. a mounted
Kubernetes Secret. Environment variables win over files.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import BaseModel, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from tzurot.runtime.errors import StartupError

SECRETS_DIR_ENV = "TZUROT_SECRETS_DIR"


class ServiceSettings(BaseSettings):
    """The base of every service's settings."""

    model_config = SettingsConfigDict(
        env_prefix="TZUROT_", env_nested_delimiter="__", extra="ignore"
    )

    listen: str = "127.0.0.1:0"
    """host:port the mTLS gRPC server binds."""
    health_listen: str | None = None
    """Optional plaintext host:port serving only grpc.health.v1 (Kubernetes gRPC probes)."""
    metrics_listen: str | None = None
    """Optional host:port serving Prometheus metrics at /metrics over plain HTTP."""
    tls_dir: Path
    """Folder with ca.crt, tls.crt and tls.key (the layout of a cert-manager Secret)."""
    log_level: str = "INFO"
    log_format: Literal["auto", "json", "console"] = "auto"
    grace_seconds: float = 5.0
    default_deadline_seconds: float = 30.0
    """Deadline our clients set on calls that did not choose one."""
    max_request_seconds: float = 600.0
    """Longest a server lets a call run when its caller sent no deadline."""

    @classmethod
    def load(cls, **overrides: Any) -> Self:
        """Reads env vars (and the secrets dir in TZUROT_SECRETS_DIR); `overrides` win."""
        secrets_dir = os.environ.get(SECRETS_DIR_ENV)
        if not secrets_dir:
            return cls(**overrides)
        path = Path(secrets_dir)
        if not path.is_dir():
            raise StartupError(f"{SECRETS_DIR_ENV} is not a directory: {path}")
        # BaseSettings takes _secrets_dir at init; the dataclass transform cannot see it.
        return cls(_secrets_dir=path, **overrides)  # type: ignore[call-arg]  # see above


def secret_values(settings: BaseModel) -> list[str]:
    """The revealed value of every SecretStr field, nested models included (for redaction)."""
    found: list[str] = []
    _collect(settings, found)
    return found


def _collect(value: object, found: list[str]) -> None:
    if isinstance(value, SecretStr):
        secret = value.get_secret_value()
        if secret:
            found.append(secret)
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            _collect(getattr(value, name), found)
    elif isinstance(value, dict):
        for item in value.values():
            _collect(item, found)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            _collect(item, found)
