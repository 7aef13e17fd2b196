"""A name may not be spelled as a personality's id: an id means that personality or nothing
wherever a name is looked up (`personality_access.find_personality_for`), so a slug, display
name or alias written as one would mean two things."""

from __future__ import annotations

import uuid

from tzurot.runtime.errors import InvalidArgument, quoted


def is_id(text: str) -> bool:
    """`text` is written as a row id is: a UUID's canonical lowercase text (as the bot sends
    `Personality.id`)."""
    try:
        return str(uuid.UUID(text)) == text
    except ValueError:
        return False


def refuse_id_shaped(field: str, name: str | None) -> None:
    """INVALID_ARGUMENT `NAME_LOOKS_LIKE_ID` for a name that, as a lookup would read it
    (trimmed, any case, an '@' before it), is a personality id."""
    if name is not None and is_id(name.strip().lstrip("@").strip().lower()):
        raise InvalidArgument(
            field,
            f"{quoted(name.strip())} cannot be a name or alias: it is written as an id, "
            "which means the personality with that id",
            reason="NAME_LOOKS_LIKE_ID",
        )
