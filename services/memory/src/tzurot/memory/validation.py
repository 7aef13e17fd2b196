"""Input rules for every use-case; a violation is InvalidArgument naming the field."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from tzurot.memory.domain import Exchange, NewTurn, Role
from tzurot.runtime.errors import InvalidArgument

MAX_ID_CHARS = 128
MAX_TURNS = 16
MAX_CONTENT_CHARS = 32_000
MAX_MESSAGE_IDS_PER_TURN = 32
MAX_ATTACHMENTS = 16
MAX_URL_CHARS = 2048
MAX_LOOKUP_IDS = 500
DEFAULT_HISTORY_LIMIT = 50
MAX_HISTORY_LIMIT = 500
STORABLE_ROLES = frozenset({Role.USER, Role.ASSISTANT})
MAX_USED_MEMORIES = 100
CLOCK_SKEW = timedelta(minutes=5)


def _printable_word(text: str) -> bool:
    """No whitespace or control character: of the whitespace characters only the space is
    printable (the unit tests check every code point), so two scans in C suffice."""
    return text.isprintable() and " " not in text


def check_id(field: str, value: str, *, required: bool = True) -> str:
    """An opaque id (job, channel, personality, user, message): short, no spaces or controls."""
    if not value:
        if required:
            raise InvalidArgument(field, f"{field} is required")
        return value
    if len(value) > MAX_ID_CHARS:
        raise InvalidArgument(field, f"{field} must be at most {MAX_ID_CHARS} characters")
    if not _printable_word(value):
        raise InvalidArgument(field, f"{field} must not contain whitespace or control characters")
    return value


def check_content(field: str, content: str) -> str:
    if len(content) > MAX_CONTENT_CHARS:
        raise InvalidArgument(field, f"{field} must be at most {MAX_CONTENT_CHARS} characters")
    return content


def check_message_ids(field: str, message_ids: Sequence[str], *, limit: int) -> tuple[str, ...]:
    if len(message_ids) > limit:
        raise InvalidArgument(field, f"{field} holds at most {limit} ids")
    for index, message_id in enumerate(message_ids):
        check_id(f"{field}[{index}]", message_id)
    return tuple(message_ids)


def check_lookup_ids(message_ids: Sequence[str]) -> tuple[str, ...]:
    """The ids of a lookup or delete: 1..MAX_LOOKUP_IDS valid ids."""
    if not message_ids:
        raise InvalidArgument("message_ids", "message_ids needs at least one id")
    return check_message_ids("message_ids", message_ids, limit=MAX_LOOKUP_IDS)


def check_role(field: str, role: str) -> Role:
    if role not in STORABLE_ROLES:
        raise InvalidArgument(field, f"{field} must be user or assistant")
    return Role(role)


def check_turn(index: int, turn: NewTurn) -> NewTurn:
    prefix = f"turns[{index}]"
    check_role(f"{prefix}.role", turn.role)
    check_content(f"{prefix}.content", turn.content)
    check_id(f"{prefix}.author_id", turn.author_id, required=False)
    if len(turn.author_name) > MAX_ID_CHARS:
        raise InvalidArgument(
            f"{prefix}.author_name", f"author_name must be at most {MAX_ID_CHARS} characters"
        )
    check_message_ids(f"{prefix}.message_ids", turn.message_ids, limit=MAX_MESSAGE_IDS_PER_TURN)
    if len(turn.attachments) > MAX_ATTACHMENTS:
        raise InvalidArgument(
            f"{prefix}.attachments", f"a turn holds at most {MAX_ATTACHMENTS} attachments"
        )
    for number, attachment in enumerate(turn.attachments):
        if len(attachment.url) > MAX_URL_CHARS:
            raise InvalidArgument(
                f"{prefix}.attachments[{number}].url",
                f"url must be at most {MAX_URL_CHARS} characters",
            )
        check_content(f"{prefix}.attachments[{number}].description", attachment.description)
    return turn


def check_exchange(exchange: Exchange) -> Exchange:
    check_id("job_id", exchange.job_id)
    check_id("channel_id", exchange.channel_id)
    check_id("personality_id", exchange.personality_id)
    check_id("user_id", exchange.user_id, required=False)
    if not 1 <= len(exchange.turns) <= MAX_TURNS:
        raise InvalidArgument("turns", f"an exchange holds 1 to {MAX_TURNS} turns")
    for index, turn in enumerate(exchange.turns):
        check_turn(index, turn)
    if exchange.occurred_at is not None:
        check_past_time("occurred_at", exchange.occurred_at)
    if len(exchange.used_memory_ids) > MAX_USED_MEMORIES:
        raise InvalidArgument(
            "used_memory_ids", f"used_memory_ids holds at most {MAX_USED_MEMORIES} ids"
        )
    for index, memory_id in enumerate(exchange.used_memory_ids):
        check_uuid(f"used_memory_ids[{index}]", memory_id)
    return exchange


EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
"""No conversation or memory is older (shapes.inc's import clamps to it too). Older times
would decay a memory's salience past what Postgres' exp() computes, and the year 1 is
stored as -infinity."""


def check_past_time(field: str, when: datetime) -> datetime:
    """A time of the past (a few minutes of clock skew allowed), not before 1970."""
    if when > datetime.now(UTC) + CLOCK_SKEW:
        raise InvalidArgument(field, f"{field} must not be in the future")
    if when < EARLIEST:
        raise InvalidArgument(field, f"{field} must not be before 1970")
    return when


def check_uuid(field: str, value: str) -> str:
    try:
        uuid.UUID(value)
    except ValueError:
        raise InvalidArgument(field, f"{field} must be a memory id (a UUID)") from None
    return value


def check_history_limit(limit: int, default: int = DEFAULT_HISTORY_LIMIT) -> int:
    """0 means the default; otherwise 1..MAX_HISTORY_LIMIT."""
    if limit == 0:
        return default
    if not 1 <= limit <= MAX_HISTORY_LIMIT:
        raise InvalidArgument("limit", f"limit must be between 1 and {MAX_HISTORY_LIMIT}")
    return limit


MAX_HISTORY_TOKENS = 2_000_000


def check_max_tokens(max_tokens: int) -> int:
    """0 means no token budget; otherwise 1..MAX_HISTORY_TOKENS."""
    if not 0 <= max_tokens <= MAX_HISTORY_TOKENS:
        raise InvalidArgument(
            "max_tokens", f"max_tokens must be between 0 and {MAX_HISTORY_TOKENS}"
        )
    return max_tokens
