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


MAX_SNOWFLAKE = 2**64 - 1


def is_snowflake(value: str) -> bool:
    """Whether `value` is written as Discord writes an id (a server's, a channel's, a
    user's): ASCII decimal digits without a leading zero, not 0, within 64 bits (at most 20
    digits). Ids are matched as text, so any other spelling would never match one."""
    return (
        0 < len(value) <= len(str(MAX_SNOWFLAKE))
        and value.isascii()
        and value.isdigit()
        and value[0] != "0"
        and int(value) <= MAX_SNOWFLAKE
    )
