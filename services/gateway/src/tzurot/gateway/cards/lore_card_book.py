"""A card's `character_book` as a lorebook and back, the way SillyTavern reads and writes it.

A card book carries the SillyTavern-only fields in each entry's `extensions` the way
SillyTavern writes them (its `convertCharacterBook`), so a book exported here imports there
and back unchanged; fields a newer spec adds are kept under `tzurot/unknown_fields`.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from tzurot.gateway.cards.lore_checks import with_unique_uids
from tzurot.gateway.cards.lore_model import (
    DEFAULT_DEPTH,
    KEPT_POSITIONS,
    LOGIC_BY_NUMBER,
    MAX_LOREBOOK_NAME,
    NUMBER_BY_LOGIC,
    NUMBER_BY_ROLE,
    OUTLET_POSITION,
    POSITION_BY_NUMBER,
    ROLE_BY_NUMBER,
    Lorebook,
    LoreEntry,
    Position,
)
from tzurot.gateway.cards.lore_numbers import (
    INT32_MAX,
    delay_level,
    int_or,
    numeric_uid,
    opt_bool,
    opt_int,
    timed,
    whole,
)
from tzurot.gateway.cards.spec import Book, BookEntry
from tzurot.runtime.graphemes import grapheme_prefix

_ST_EXTENSION_KEYS = (
    "position",
    "exclude_recursion",
    "prevent_recursion",
    "delay_until_recursion",
    "display_index",
    "probability",
    "useProbability",
    "depth",
    "selectiveLogic",
    "scan_depth",
    "case_sensitive",
    "match_whole_words",
    "role",
    "sticky",
    "cooldown",
    "delay",
)


def from_card_book(book: Book, warnings: list[str] | None = None) -> Lorebook:
    """A card's `character_book` as SillyTavern reads it (its `convertCharacterBook`);
    numbers kept within the protos' range and uids made unique (`lore_numbers`), each uid
    renumbered told in `warnings`."""
    entries = []
    for index, entry in enumerate(book.entries):
        ext = dict(entry.extensions)
        st_position = opt_int(ext.get("position"))
        position: Position
        if st_position is not None and st_position in POSITION_BY_NUMBER:
            position = POSITION_BY_NUMBER[st_position]
        else:
            position = "before_char" if entry.position == "before_char" else "after_char"
        case = opt_bool(ext.get("case_sensitive"))
        entries.append(
            LoreEntry(
                uid=str(entry.id if entry.id is not None else index),
                keys=list(entry.keys),
                secondary_keys=list(entry.secondary_keys or []) if entry.selective else [],
                logic=LOGIC_BY_NUMBER.get(int_or(ext.get("selectiveLogic"), 0), "AND_ANY"),
                content=entry.content,
                comment=entry.comment or "",
                name=entry.name or "",
                constant=bool(entry.constant),
                enabled=entry.enabled,
                order=whole(entry.insertion_order, f"entries.{index}.insertion_order"),
                priority=None
                if entry.priority is None
                else whole(entry.priority, f"entries.{index}.priority"),
                position=position,
                depth=max(0, int_or(ext.get("depth"), DEFAULT_DEPTH)),
                role=ROLE_BY_NUMBER.get(int_or(ext.get("role"), 0), "system"),
                probability=min(100, max(0, int_or(ext.get("probability"), 100))),
                use_probability=bool(ext.get("useProbability", True)),
                case_sensitive=case if case is not None else entry.case_sensitive,
                match_whole_words=opt_bool(ext.get("match_whole_words")),
                use_regex=entry.use_regex,
                scan_depth=opt_int(ext.get("scan_depth")),
                sticky=timed(int_or(ext.get("sticky"), 0)),
                cooldown=timed(int_or(ext.get("cooldown"), 0)),
                delay=timed(int_or(ext.get("delay"), 0)),
                exclude_recursion=bool(ext.get("exclude_recursion", False)),
                prevent_recursion=bool(ext.get("prevent_recursion", False)),
                delay_until_recursion=timed(delay_level(ext.get("delay_until_recursion"))),
                extensions={
                    **{k: v for k, v in ext.items() if k not in _ST_EXTENSION_KEYS},
                    **_entry_extras(entry),
                    **({"position": st_position} if st_position in KEPT_POSITIONS else {}),
                },
            )
        )
    return with_unique_uids(
        Lorebook(
            name=grapheme_prefix(book.name or "", MAX_LOREBOOK_NAME) or "Character book",
            description=book.description or "",
            scan_depth=book.scan_depth,
            token_budget=None if book.token_budget is None else min(book.token_budget, INT32_MAX),
            recursive_scanning=bool(book.recursive_scanning),
            extensions={**book.extensions, **_extras(book)},
            entries=entries,
        ),
        warnings,
    )


def _extras(model: BaseModel) -> dict[str, Any]:
    """Fields a newer spec added (kept for export) under one reserved key."""
    extra = model.model_extra or {}
    return {"tzurot/unknown_fields": dict(extra)} if extra else {}


def _entry_extras(entry: BookEntry) -> dict[str, Any]:
    extras = _extras(entry)
    if entry.selective is not None and not entry.selective and entry.secondary_keys:
        extras["tzurot/inactive_secondary_keys"] = list(entry.secondary_keys)
    return extras


def to_card_book(book: Lorebook) -> Book:
    """The lorebook as a card `character_book`, SillyTavern's fields in entry extensions."""
    return card_book_frame(book, [card_book_entry(entry) for entry in book.entries])


def card_book_entry(entry: LoreEntry) -> dict[str, Any]:
    """One entry as a card book writes it (JSON-ready), SillyTavern's fields in extensions."""
    ext = dict(entry.extensions)
    unknown = ext.pop("tzurot/unknown_fields", {})
    inactive = ext.pop("tzurot/inactive_secondary_keys", None)
    st_position = ext.pop("position", None)
    if entry.position == "at_depth" and st_position not in (2, 3):
        st_position = 4
    elif entry.position == "before_char" and st_position not in (5, OUTLET_POSITION):
        st_position = 0
    elif entry.position == "after_char" and st_position != 6:
        st_position = 1
    ext |= {
        "position": st_position,
        "exclude_recursion": entry.exclude_recursion,
        "prevent_recursion": entry.prevent_recursion,
        "delay_until_recursion": entry.delay_until_recursion,
        "probability": entry.probability,
        "useProbability": entry.use_probability,
        "depth": entry.depth,
        "selectiveLogic": NUMBER_BY_LOGIC[entry.logic],
        "scan_depth": entry.scan_depth,
        "case_sensitive": entry.case_sensitive,
        "match_whole_words": entry.match_whole_words,
        "role": NUMBER_BY_ROLE[entry.role],
        "sticky": entry.sticky,
        "cooldown": entry.cooldown,
        "delay": entry.delay,
    }
    selective = bool(entry.secondary_keys) or inactive is None
    fields: dict[str, Any] = {
        "id": entry.uid if numeric_uid(entry.uid) is None else numeric_uid(entry.uid),
        "keys": entry.keys,
        "secondary_keys": entry.secondary_keys or inactive or [],
        "selective": selective,
        "content": entry.content,
        "comment": entry.comment,
        "constant": entry.constant,
        "enabled": entry.enabled,
        "insertion_order": entry.order,
        "position": "before_char" if st_position in (0, 5) else "after_char",
        "case_sensitive": entry.case_sensitive,
        "use_regex": entry.use_regex,
        "extensions": ext,
        **unknown,
    }
    if entry.name:
        fields["name"] = entry.name
    if entry.priority is not None:
        fields["priority"] = entry.priority
    return BookEntry.model_validate(fields).model_dump(mode="json", exclude_none=True)


def card_book_frame(book: Lorebook, entries: list[Any]) -> Book:
    """The book's card `character_book` around `entries` (`card_book_entry`'s)."""
    extensions = dict(book.extensions)
    unknown = extensions.pop("tzurot/unknown_fields", {})
    return Book.model_validate(
        {
            "name": book.name,
            "description": book.description,
            "scan_depth": book.scan_depth,
            "token_budget": book.token_budget,
            "recursive_scanning": book.recursive_scanning,
            "extensions": extensions,
            "entries": entries,
            **unknown,
        }
    )
