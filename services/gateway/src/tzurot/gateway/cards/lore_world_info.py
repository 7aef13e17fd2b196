"""SillyTavern's world info file (`{"entries": {"<uid>": {...}}}`) as a lorebook and back.

Fields Tzurot has no place for stay in each entry's `extensions` and are written back on
export, so a book exported here imports in SillyTavern unchanged.
"""

from __future__ import annotations

from typing import Any

from tzurot.gateway.cards.lore_checks import with_unique_uids
from tzurot.gateway.cards.lore_model import (
    DEFAULT_DEPTH,
    KEPT_POSITIONS,
    LOGIC_BY_NUMBER,
    MAX_LOREBOOK_NAME,
    NUMBER_BY_LOGIC,
    NUMBER_BY_ROLE,
    POSITION_BY_NUMBER,
    ROLE_BY_NUMBER,
    Lorebook,
    LoreEntry,
    is_outlet,
)
from tzurot.gateway.cards.lore_numbers import (
    checked_int32,
    delay_level,
    int_or,
    opt_bool,
    opt_int,
    timed,
    unique_uids,
)
from tzurot.runtime.errors import InvalidArgument
from tzurot.runtime.graphemes import grapheme_prefix

_WI_KNOWN = {
    "uid",
    "key",
    "keysecondary",
    "comment",
    "content",
    "constant",
    "selective",
    "selectiveLogic",
    "order",
    "position",
    "disable",
    "excludeRecursion",
    "preventRecursion",
    "delayUntilRecursion",
    "probability",
    "useProbability",
    "depth",
    "role",
    "scanDepth",
    "caseSensitive",
    "matchWholeWords",
    "sticky",
    "cooldown",
    "delay",
}


def from_world_info(
    document: dict[str, Any], *, name: str = "", warnings: list[str] | None = None
) -> Lorebook:
    """SillyTavern's world info file: `{"entries": {"<uid>": {...}}}`; numbers kept within
    the protos' range and uids made unique (`lore_numbers`), each uid renumbered told in
    `warnings`."""
    raw_entries = document.get("entries")
    if not isinstance(raw_entries, dict):
        raise InvalidArgument(
            "entries", "world info needs an 'entries' object", reason="BAD_LOREBOOK"
        )
    for key, raw in raw_entries.items():
        if not isinstance(raw, dict):
            raise InvalidArgument(
                f"entries.{key}", "each entry must be an object", reason="BAD_LOREBOOK"
            )
    entries = []
    for key, raw in raw_entries.items():
        st_position = int_or(raw.get("position"), 0)
        role_number = raw.get("role")
        selective = raw.get("selective", True)
        secondary = _strings(raw.get("keysecondary"))
        extensions = {k: v for k, v in raw.items() if k not in _WI_KNOWN}
        if st_position in KEPT_POSITIONS:
            extensions["position"] = st_position
        if not selective and secondary:
            extensions["tzurot/inactive_secondary_keys"] = secondary
        entries.append(
            LoreEntry(
                uid=str(raw.get("uid", key)),
                keys=_strings(raw.get("key")),
                secondary_keys=secondary if selective else [],
                logic=LOGIC_BY_NUMBER.get(int_or(raw.get("selectiveLogic"), 0), "AND_ANY"),
                content=str(raw.get("content") or ""),
                comment=str(raw.get("comment") or ""),
                constant=bool(raw.get("constant", False)),
                enabled=not bool(raw.get("disable", False)),
                order=checked_int32(int_or(raw.get("order"), 100), f"entries.{key}.order"),
                position=POSITION_BY_NUMBER.get(st_position, "before_char"),
                depth=max(0, int_or(raw.get("depth"), DEFAULT_DEPTH)),
                role=ROLE_BY_NUMBER.get(int_or(role_number, 0), "system"),
                probability=min(100, max(0, int_or(raw.get("probability"), 100))),
                use_probability=bool(raw.get("useProbability", True)),
                case_sensitive=opt_bool(raw.get("caseSensitive")),
                match_whole_words=opt_bool(raw.get("matchWholeWords")),
                scan_depth=opt_int(raw.get("scanDepth")),
                sticky=timed(int_or(raw.get("sticky"), 0)),
                cooldown=timed(int_or(raw.get("cooldown"), 0)),
                delay=timed(int_or(raw.get("delay"), 0)),
                exclude_recursion=bool(raw.get("excludeRecursion", False)),
                prevent_recursion=bool(raw.get("preventRecursion", False)),
                delay_until_recursion=timed(delay_level(raw.get("delayUntilRecursion"))),
                extensions=extensions,
            )
        )
    title = str(document.get("name") or name or "World info")
    title = grapheme_prefix(title, MAX_LOREBOOK_NAME) or "World info"
    return with_unique_uids(Lorebook(name=title, entries=entries), warnings)


def to_world_info(book: Lorebook) -> dict[str, Any]:
    """The lorebook as a SillyTavern world info file."""
    entries: dict[str, Any] = {}
    # A book stored before import made uids unique still exports every entry.
    uids = unique_uids(entry.uid for entry in book.entries)
    for entry, unique in zip(book.entries, uids, strict=True):
        ext = dict(entry.extensions)
        inactive = ext.pop("tzurot/inactive_secondary_keys", None)
        st_position = ext.pop("position", None)
        number = {"before_char": 0, "after_char": 1, "at_depth": 4}[entry.position]
        if st_position in (2, 3, 5, 6) or is_outlet(entry):
            number = st_position
        uid = int(unique)
        entries[str(uid)] = {
            **ext,
            "uid": uid,
            "key": entry.keys,
            "keysecondary": entry.secondary_keys or inactive or [],
            "comment": entry.comment,
            "content": entry.content,
            "constant": entry.constant,
            "selective": inactive is None,
            "selectiveLogic": NUMBER_BY_LOGIC[entry.logic],
            "order": entry.order,
            "position": number,
            "disable": not entry.enabled,
            "excludeRecursion": entry.exclude_recursion,
            "preventRecursion": entry.prevent_recursion,
            "delayUntilRecursion": entry.delay_until_recursion,
            "probability": entry.probability,
            "useProbability": entry.use_probability,
            "depth": entry.depth,
            "role": NUMBER_BY_ROLE[entry.role],
            "scanDepth": entry.scan_depth,
            "caseSensitive": entry.case_sensitive,
            "matchWholeWords": entry.match_whole_words,
            "sticky": entry.sticky or None,
            "cooldown": entry.cooldown or None,
            "delay": entry.delay or None,
        }
    return {"name": book.name, "entries": entries}


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, list):
        return [str(item) for item in value if str(item).strip()]
    return []
