"""What `/character edit <field> <value>` changes: one field of a personality, as an
UpdatePersonality with the field's path (character fields one at a time, so the rest stay)."""

from __future__ import annotations

import json

from tzurot.v1 import common_pb2 as common

TOP_LEVEL = ("display_name", "system_prompt", "error_message")
CHARACTER = (
    "description",
    "personality",
    "scenario",
    "example_dialogues",
    "post_history_instructions",
    "author_note",
    "author_note_depth",
)
EDITABLE = (*TOP_LEVEL, *CHARACTER, "cleanup_rules")
RULES_HELP = (
    'cleanup_rules is a JSON list, e.g. `[{"pattern": "\\\\*sighs\\\\*", "replacement": ""}]` '
    "(Python regular expressions, applied in order to every answer); `[]` removes them all"
)


class BadValue(ValueError):
    """The value cannot be what the field holds; the message says what it should be."""


def edit_request(slug: str, field: str, value: str) -> tuple[common.Personality, str]:
    """The personality message carrying `value` in `field`, and the update path."""
    changed = common.Personality(slug=slug)
    if field in TOP_LEVEL:
        setattr(changed, field, value)
        return changed, field
    if field == "author_note_depth":
        try:
            changed.character.author_note_depth = int(value)
        except ValueError:
            raise BadValue("author_note_depth is 2, 3 or 4 (messages from the bottom)") from None
        return changed, f"character.{field}"
    if field in CHARACTER:
        setattr(changed.character, field, value)
        return changed, f"character.{field}"
    if field == "cleanup_rules":
        changed.cleanup_rules.extend(_rules(value))
        return changed, field
    raise BadValue(f"{field} cannot be edited here; one of: {', '.join(EDITABLE)}")


def _rules(value: str) -> list[common.CleanupRule]:
    try:
        data = json.loads(value or "[]")
    except json.JSONDecodeError:
        raise BadValue(RULES_HELP) from None
    if not isinstance(data, list) or not all(
        isinstance(item, dict)
        and isinstance(item.get("pattern"), str)
        and isinstance(item.get("replacement", ""), str)
        for item in data
    ):
        raise BadValue(RULES_HELP)
    return [
        common.CleanupRule(pattern=item["pattern"], replacement=item.get("replacement", ""))
        for item in data
    ]
