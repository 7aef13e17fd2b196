"""Keyvault settings (env `TZUROT_*`); the master key comes from one of two places."""

from pathlib import Path

from pydantic import Field, SecretStr

from tzurot.keyvault.service import DEFAULT_BATCH_SIZE
from tzurot.keyvault.validation import MAX_BATCH_SIZE
from tzurot.runtime.config import ServiceSettings


class KeyVaultSettings(ServiceSettings):
    """Where keyvault listens, its database and its master key."""

    listen: str = "127.0.0.1:15054"
    database_url: SecretStr
    master_key: SecretStr | None = None
    """`TZUROT_MASTER_KEY`: one key (base64 or hex) or `<version>:<key>` lines."""
    master_key_file: Path | None = None
    """`TZUROT_MASTER_KEY_FILE`: the same text in a file, e.g. a mounted Kubernetes Secret."""
    rewrap_batch_size: int = Field(default=DEFAULT_BATCH_SIZE, ge=1, le=MAX_BATCH_SIZE)
