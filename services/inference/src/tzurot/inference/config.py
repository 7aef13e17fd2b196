"""Inference settings (env `TZUROT_*`).

Mappings are JSON in one variable (`TZUROT_PROVIDERS='{"local": "http://…/v1"}'`) or one
variable per entry (`TZUROT_SYSTEM_KEYS__OPENROUTER=…`); both also work as files in
`TZUROT_SECRETS_DIR`.
"""

import re
from typing import Any, Self

from pydantic import Field, SecretStr
from pydantic_settings import SettingsError

from tzurot.inference.keys import DEFAULT_FREE_MODELS
from tzurot.runtime.config import ServiceSettings
from tzurot.runtime.errors import StartupError

_FIELD_IN_ERROR = re.compile(r'field "(\w+)"')


class InferenceSettings(ServiceSettings):
    """Where inference listens, the services it calls, its providers and their limits."""

    listen: str = "127.0.0.1:50052"
    memory_addr: str = "127.0.0.1:50053"
    keyvault_addr: str = "127.0.0.1:50054"
    providers: dict[str, str] = Field(default_factory=dict)
    """`TZUROT_PROVIDERS`: extra or overriding providers, name -> OpenAI-compatible base URL."""
    system_keys: dict[str, SecretStr] = Field(default_factory=dict)
    """`TZUROT_SYSTEM_KEYS`: the operator's keys by provider, only for free_use configs."""
    free_models: list[str] = Field(default_factory=lambda: list(DEFAULT_FREE_MODELS))
    """`TZUROT_FREE_MODELS`: JSON list of model globs a free_use config may run on a system key."""
    provider_max_retries: int = Field(default=2, ge=0, le=10)
    """Retries the OpenAI client makes (with backoff) on connection errors, 408/409/429/5xx."""
    provider_timeout_seconds: float = Field(default=120.0, gt=0)
    """Per connect/read/write: for a stream, the longest silence between two chunks."""
    history_limit: int = Field(default=30, ge=0, le=500)
    """Turns of history in the prompt when the request does not say."""

    @classmethod
    def load(cls, **overrides: Any) -> Self:
        """As ServiceSettings.load; a mapping that is not JSON is one line, not a traceback."""
        try:
            return super().load(**overrides)
        except SettingsError as exc:
            # pydantic-settings names the field but not the value (which may be a key).
            found = _FIELD_IN_ERROR.search(str(exc))
            name = f"TZUROT_{found.group(1).upper()}" if found else "a TZUROT_* setting"
            raise StartupError(f"{name} is not valid JSON") from None
