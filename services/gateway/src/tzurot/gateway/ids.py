"""Row ids as callers send them: a string that may or may not be a UUID."""

from __future__ import annotations

import uuid


def is_uuid(value: str) -> bool:
    """Whether `value` parses as a UUID (a row id): anything else names no row, so it is
    looked up nowhere (Postgres would refuse it as a uuid)."""
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True
