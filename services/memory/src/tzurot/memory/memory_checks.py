"""Input rules of long-term memory's requests (a memory added, a search asked for); a
violation is InvalidArgument naming the field. The rules shared with the other use-cases
(ids, times) are validation.py's.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from tzurot.memory.validation import check_id
from tzurot.runtime.errors import InvalidArgument

DEFAULT_QUERY_LIMIT = 20
MAX_QUERY_LIMIT = 100
DEFAULT_THRESHOLD = 0.5
MAX_MEMORY_CHARS = 4_000
MAX_TAGS = 8
_TAG = re.compile(r"[a-z0-9_:-]{1,40}")


def check_text(field_name: str, text: str) -> str:
    if not text.strip():
        raise InvalidArgument(field_name, f"{field_name} is required")
    if len(text) > MAX_MEMORY_CHARS:
        raise InvalidArgument(
            field_name, f"{field_name} must be at most {MAX_MEMORY_CHARS} characters"
        )
    return text


def check_tags(tags: Sequence[str]) -> list[str]:
    """At most MAX_TAGS short lowercase tags, once each."""
    chosen = list(dict.fromkeys(tags))
    if len(chosen) > MAX_TAGS:
        raise InvalidArgument("memory.tags", f"at most {MAX_TAGS} tags")
    for tag in chosen:
        if not _TAG.fullmatch(tag):
            raise InvalidArgument("memory.tags", "a tag is 1-40 of a-z, 0-9, _ : -")
    return chosen


def check_unit(field_name: str, value: float, *, default: float) -> float:
    """A value in [0, 1]; 0 means `default`."""
    if value == 0:
        return default
    if not 0 < value <= 1:
        raise InvalidArgument(field_name, f"{field_name} must be between 0 and 1")
    return value


def check_uuid(field: str, value: str) -> str:
    """A UUID, in its canonical form."""
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise InvalidArgument(field, f"{field} must be a UUID") from None


@dataclass(frozen=True)
class MemorySearch:
    """A checked search: whose memories, for what text, how many, how relevant at least."""

    personality_id: str
    user_id: str
    query: str
    limit: int
    threshold: float


def memory_search(
    personality_id: str,
    user_id: str,
    query: str,
    *,
    limit: int = 0,
    threshold: float = 0.0,
    no_threshold: bool = False,
) -> MemorySearch:
    """The search QueryMemories asks for, checked (InvalidArgument naming the field); a
    `limit` of 0 is the default, a `threshold` of 0 too (0.0 itself with `no_threshold`)."""
    check_id("personality_id", personality_id)
    check_id("user_id", user_id, required=False)
    check_text("query", query)
    if limit == 0:
        limit = DEFAULT_QUERY_LIMIT
    if not 1 <= limit <= MAX_QUERY_LIMIT:
        raise InvalidArgument("limit", f"limit must be between 1 and {MAX_QUERY_LIMIT}")
    threshold = (
        0.0 if no_threshold else check_unit("threshold", threshold, default=DEFAULT_THRESHOLD)
    )
    return MemorySearch(personality_id, user_id, query, limit, threshold)
