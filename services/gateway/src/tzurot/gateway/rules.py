"""A personality's author's note depth and cleanup rules as the gateway accepts them.

The limits are inference's (it checks again before using them): a rule that would make every
answer fail is refused when it is written, naming the rule, not when someone talks.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from tzurot.gateway.domain import CleanupRule
from tzurot.runtime.errors import InvalidArgument

MAX_RULES = 50
MAX_PATTERN_CHARS = 500
MAX_REPLACEMENT_CHARS = 2000
AUTHOR_NOTE_DEPTHS = frozenset({0, 2, 3, 4})
"""0 means inference's default (3)."""


def check_author_note_depth(
    depth: int, field: str = "personality.character.author_note_depth"
) -> int:
    if depth not in AUTHOR_NOTE_DEPTHS:
        raise InvalidArgument(
            field, "author_note_depth is 2, 3 or 4 messages from the bottom (0: the default, 3)"
        )
    return depth


def check_cleanup_rules(
    rules: Sequence[CleanupRule], field: str = "personality.cleanup_rules"
) -> tuple[CleanupRule, ...]:
    """The rules as given; InvalidArgument naming the first one that is too long, not a
    Python regular expression, or refers to a group the pattern lacks."""
    if len(rules) > MAX_RULES:
        raise InvalidArgument(field, f"at most {MAX_RULES} cleanup rules")
    for index, rule in enumerate(rules):
        where = f"{field}[{index}]"
        if not rule.pattern:
            raise InvalidArgument(f"{where}.pattern", f"cleanup rule {index} has no pattern")
        if len(rule.pattern) > MAX_PATTERN_CHARS:
            raise InvalidArgument(
                f"{where}.pattern",
                f"cleanup rule {index}: the pattern is longer than {MAX_PATTERN_CHARS} characters",
            )
        if len(rule.replacement) > MAX_REPLACEMENT_CHARS:
            raise InvalidArgument(
                f"{where}.replacement",
                f"cleanup rule {index}: the replacement is longer than "
                f"{MAX_REPLACEMENT_CHARS} characters",
            )
        try:
            pattern = re.compile(rule.pattern, re.MULTILINE)
        except re.error as exc:
            raise InvalidArgument(
                f"{where}.pattern", f"cleanup rule {index} is not a valid regex: {exc}"
            ) from None
        try:
            pattern.sub(rule.replacement, "")  # a bad group reference fails here, not later
        except (re.error, IndexError) as exc:
            raise InvalidArgument(
                f"{where}.replacement", f"cleanup rule {index}: bad replacement: {exc}"
            ) from None
    return tuple(rules)


def rules_to_json(rules: Iterable[CleanupRule]) -> list[dict[str, str]]:
    return [{"pattern": r.pattern, "replacement": r.replacement} for r in rules]


def rules_from_json(value: Any) -> tuple[CleanupRule, ...]:
    """Rules as stored (a JSON list of {pattern, replacement}); anything else is none."""
    if not isinstance(value, list):
        return ()
    return tuple(
        CleanupRule(str(item.get("pattern", "")), str(item.get("replacement", "")))
        for item in value
        if isinstance(item, Mapping)
    )
