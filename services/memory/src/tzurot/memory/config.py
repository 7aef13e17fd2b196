"""Memory settings (env `TZUROT_*`)."""

from pydantic import Field, SecretStr

from tzurot.memory.validation import DEFAULT_HISTORY_LIMIT, MAX_HISTORY_LIMIT
from tzurot.runtime.config import ServiceSettings


class MemorySettings(ServiceSettings):
    """Where memory listens and its database."""

    listen: str = "127.0.0.1:50053"
    database_url: SecretStr
    history_limit: int = Field(default=DEFAULT_HISTORY_LIMIT, ge=1, le=MAX_HISTORY_LIMIT)
    """`TZUROT_HISTORY_LIMIT`: turns GetHistory returns when the caller asks for 0."""
