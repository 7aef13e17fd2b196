"""Input rules for every use-case; a violation is InvalidArgument naming the field."""

from __future__ import annotations

import re

from pydantic import SecretStr

from tzurot.runtime.errors import InvalidArgument

PROVIDER_PATTERN = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
# Gateway's internal user id: a UUID in its canonical 8-4-4-4-12 form. Holding ids to this
# shape also keeps a key sent in the wrong field out of the table and the audit log.
USER_ID_PATTERN = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
MAX_KEY_CHARS = 4096
MAX_BATCH_SIZE = 10_000


def _printable_word(text: str) -> bool:
    return all(char.isprintable() and not char.isspace() for char in text)


def check_user_id(user_id: str) -> str:
    if not user_id:
        raise InvalidArgument("user_id", "user_id is required")
    if not USER_ID_PATTERN.fullmatch(user_id):
        raise InvalidArgument("user_id", "user_id must be a UUID (gateway's internal user id)")
    return user_id


def check_provider(provider: str) -> str:
    if not provider:
        raise InvalidArgument("provider", "provider is required")
    if not PROVIDER_PATTERN.fullmatch(provider):
        raise InvalidArgument(
            "provider",
            "provider must be 1-64 characters of a-z, 0-9, '_', '.', '-' "
            "starting with a letter or digit",
        )
    return provider


def check_api_key(api_key: SecretStr) -> SecretStr:
    """Rejects an empty, oversized or non-printable key, never quoting it."""
    value = api_key.get_secret_value()
    if not value:
        raise InvalidArgument("api_key", "api_key is required")
    if len(value) > MAX_KEY_CHARS:
        raise InvalidArgument("api_key", f"api_key must be at most {MAX_KEY_CHARS} characters")
    if not _printable_word(value):
        raise InvalidArgument(
            "api_key", "api_key must not contain whitespace or control characters"
        )
    return api_key


def check_batch_size(batch_size: int, default: int) -> int:
    """0 means the configured default; otherwise 1..MAX_BATCH_SIZE."""
    if batch_size == 0:
        return default
    if not 1 <= batch_size <= MAX_BATCH_SIZE:
        raise InvalidArgument("batch_size", f"batch_size must be between 1 and {MAX_BATCH_SIZE}")
    return batch_size
