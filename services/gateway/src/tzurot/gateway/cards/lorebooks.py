"""Lorebooks in one shape, from and to SillyTavern world info and card `character_book`s.

The shape follows SillyTavern's World Info entry (its field names turned snake_case):
primary and secondary keys with a selective logic, constant, probability, insertion order,
position (before/after the character definition, or at a depth with a role), timed effects
(sticky, cooldown, delay) and recursion flags. A card book carries the SillyTavern-only fields
in each entry's `extensions` the way SillyTavern writes them, so a book exported here imports
there and back unchanged.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tzurot.gateway.cards.lore_numbers import (
    INT32_MAX,
    checked_int32,
    numeric_uid,
    timed,
    unique_uids,
)
from tzurot.gateway.cards.spec import Book, BookEntry, parse_book, parse_card
from tzurot.gateway.uploaded_json import MAX_JSON_VALUES, load_uploaded_json
from tzurot.runtime.errors import InvalidArgument

Logic = Literal["AND_ANY", "NOT_ALL", "NOT_ANY", "AND_ALL"]
Position = Literal["before_char", "after_char", "at_depth"]
LoreRole = Literal["system", "user", "assistant"]
LOGIC_BY_NUMBER: dict[int, Logic] = {0: "AND_ANY", 1: "NOT_ALL", 2: "NOT_ANY", 3: "AND_ALL"}
NUMBER_BY_LOGIC = {name: number for number, name in LOGIC_BY_NUMBER.items()}
ROLE_BY_NUMBER: dict[int, LoreRole] = {0: "system", 1: "user", 2: "assistant"}
NUMBER_BY_ROLE = {name: number for number, name in ROLE_BY_NUMBER.items()}
# SillyTavern's positions: before, after, AN top, AN bottom, at depth, EM top, EM bottom,
# outlet. The author's-note and example-message anchors have no twin here; they map to the
# nearest placement and the original number is kept in `extensions.position` for export.
# An outlet entry (7) is never placed by SillyTavern itself, only where a `{{outlet::name}}`
# macro names it; Tzurot has no such macro, so the entry is kept (7 in its extensions, as
# `before_char`) and exported again, but a generation leaves it out (`is_outlet`).
_POSITION_BY_NUMBER: dict[int, Position] = {
    0: "before_char",
    1: "after_char",
    2: "at_depth",
    3: "at_depth",
    4: "at_depth",
    5: "before_char",
    6: "after_char",
    7: "before_char",
}
OUTLET_POSITION = 7
_KEPT_POSITIONS = (2, 3, 5, 6, OUTLET_POSITION)
"""SillyTavern positions kept in an entry's `extensions.position` (the others follow from its
placement)."""
DEFAULT_DEPTH = 4
MAX_ENTRIES = 2000
MAX_LOREBOOK_BYTES = 4 * 1024 * 1024
MAX_KEYS_PER_ENTRY = 100
"""Keys of one entry: primary, secondary, `@@additional_keys` and `@@exclude_keys` together
(SillyTavern books seldom pass a few dozen)."""
MAX_REGEX_KEYS = 1000
"""Regex keys of one lorebook (`/pattern/flags`, or any key of a `use_regex` entry): each is
searched on every message. Inference also bounds their time per message."""
_KEY_DECORATORS = ("additional_keys", "exclude_keys")


class LoreEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    uid: str
    keys: list[str] = Field(default_factory=list)
    secondary_keys: list[str] = Field(default_factory=list)
    logic: Logic = "AND_ANY"
    content: str = ""
    comment: str = ""
    name: str = ""
    constant: bool = False
    enabled: bool = True
    order: int = 100
    priority: int | None = None
    position: Position = "before_char"
    depth: int = Field(default=DEFAULT_DEPTH, ge=0, le=1000)
    role: LoreRole = "system"
    probability: int = Field(default=100, ge=0, le=100)
    use_probability: bool = True
    case_sensitive: bool | None = None
    match_whole_words: bool | None = None
    use_regex: bool = False
    scan_depth: int | None = Field(default=None, ge=0, le=1000)
    sticky: int = Field(default=0, ge=0)
    cooldown: int = Field(default=0, ge=0)
    delay: int = Field(default=0, ge=0)
    exclude_recursion: bool = False
    prevent_recursion: bool = False
    delay_until_recursion: int = Field(default=0, ge=0)
    extensions: dict[str, Any] = Field(default_factory=dict)


class Lorebook(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(default="Lorebook", min_length=1, max_length=100)
    description: str = ""
    scan_depth: int | None = Field(default=None, ge=0, le=1000)
    token_budget: int | None = Field(default=None, ge=0)
    recursive_scanning: bool = False
    extensions: dict[str, Any] = Field(default_factory=dict)
    entries: list[LoreEntry] = Field(default_factory=list, max_length=MAX_ENTRIES)


def is_outlet(entry: LoreEntry) -> bool:
    """Whether the entry is a SillyTavern outlet entry (position 7, still `before_char`):
    kept and exported, never placed in a prompt (see `OUTLET_POSITION`)."""
    return entry.position == "before_char" and entry.extensions.get("position") == OUTLET_POSITION


def without_outlets(book: Lorebook) -> Lorebook:
    """The book as a generation reads it: its outlet entries left out."""
    if not any(is_outlet(entry) for entry in book.entries):
        return book
    return book.model_copy(
        update={"entries": [entry for entry in book.entries if not is_outlet(entry)]}
    )


def _int(value: Any, default: int) -> int:
    try:
        return int(value) if value is not None and value != "" else default
    except (TypeError, ValueError, OverflowError):  # OverflowError: an infinity
        return default


def _opt_int(value: Any) -> int | None:
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        return None


def _whole(value: float, field: str) -> int:
    """A card book's number as an entry's int32; NaN and infinities have none."""
    if not math.isfinite(value):
        raise InvalidArgument(
            field, f"lorebook: {field}: {value} is not a finite number", reason="INVALID_NUMBER"
        )
    return checked_int32(int(value), field)


def _opt_bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _delay_level(value: Any) -> int:
    if value is True:
        return 1
    return max(0, _int(value, 0)) if not isinstance(value, bool) else 0


def _is_regex_key(key: str) -> bool:
    """Inference's rule for a `/pattern/flags` key (lore/matching), without its exception for
    an unescaped slash inside: counts a few more, never fewer."""
    key = key.strip()
    body = key.rstrip("gimsuy")
    return key.startswith("/") and len(body) >= 3 and body.endswith("/")  # at least "/x/"


def _decorator_keys(content: str) -> list[str]:
    """The keys of an entry's leading `@@additional_keys` / `@@exclude_keys` lines."""
    keys: list[str] = []
    for line in content.split("\n"):
        if not line.startswith("@@"):
            break
        name, _, value = line.lstrip("@").partition(" ")
        if name.strip() in _KEY_DECORATORS:
            keys += [key.strip() for key in value.split(",") if key.strip()]
    return keys


def check_key_limits(book: Lorebook) -> Lorebook:
    """The book, or InvalidArgument naming the first entry over `MAX_KEYS_PER_ENTRY`, or the
    one whose regex keys take the book past `MAX_REGEX_KEYS`."""
    regex_keys = 0
    for index, entry in enumerate(book.entries):
        keys = [*entry.keys, *entry.secondary_keys, *_decorator_keys(entry.content)]
        label = f"entry {entry.uid[:40]!r}" + (f" ({entry.comment[:60]})" if entry.comment else "")
        if len(keys) > MAX_KEYS_PER_ENTRY:
            raise InvalidArgument(
                f"entries.{index}.keys",
                f"lorebook: {label} has {len(keys)} keys; an entry may have at most "
                f"{MAX_KEYS_PER_ENTRY} (primary, secondary and decorator keys together)",
                reason="TOO_MANY_KEYS",
            )
        regex_keys += sum(1 for key in keys if entry.use_regex or _is_regex_key(key))
        if regex_keys > MAX_REGEX_KEYS:
            raise InvalidArgument(
                f"entries.{index}.keys",
                f"lorebook: {label} takes the book past {MAX_REGEX_KEYS} regex keys "
                "(/pattern/ keys, and every key of a use_regex entry); a lorebook may have "
                f"at most {MAX_REGEX_KEYS}",
                reason="TOO_MANY_REGEX_KEYS",
            )
    return book


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, list):
        return [str(item) for item in value if str(item).strip()]
    return []


# -- card character_book -----------------------------------------------------------------

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


def from_card_book(book: Book) -> Lorebook:
    """A card's `character_book` as SillyTavern reads it (its `convertCharacterBook`);
    numbers kept within the protos' range and uids made unique (`lore_numbers`)."""
    entries = []
    for index, entry in enumerate(book.entries):
        ext = dict(entry.extensions)
        st_position = _opt_int(ext.get("position"))
        position: Position
        if st_position is not None and st_position in _POSITION_BY_NUMBER:
            position = _POSITION_BY_NUMBER[st_position]
        else:
            position = "before_char" if entry.position == "before_char" else "after_char"
        case = _opt_bool(ext.get("case_sensitive"))
        entries.append(
            LoreEntry(
                uid=str(entry.id if entry.id is not None else index),
                keys=list(entry.keys),
                secondary_keys=list(entry.secondary_keys or []) if entry.selective else [],
                logic=LOGIC_BY_NUMBER.get(_int(ext.get("selectiveLogic"), 0), "AND_ANY"),
                content=entry.content,
                comment=entry.comment or "",
                name=entry.name or "",
                constant=bool(entry.constant),
                enabled=entry.enabled,
                order=_whole(entry.insertion_order, f"entries.{index}.insertion_order"),
                priority=None
                if entry.priority is None
                else _whole(entry.priority, f"entries.{index}.priority"),
                position=position,
                depth=max(0, _int(ext.get("depth"), DEFAULT_DEPTH)),
                role=ROLE_BY_NUMBER.get(_int(ext.get("role"), 0), "system"),
                probability=min(100, max(0, _int(ext.get("probability"), 100))),
                use_probability=bool(ext.get("useProbability", True)),
                case_sensitive=case if case is not None else entry.case_sensitive,
                match_whole_words=_opt_bool(ext.get("match_whole_words")),
                use_regex=entry.use_regex,
                scan_depth=_opt_int(ext.get("scan_depth")),
                sticky=timed(_int(ext.get("sticky"), 0)),
                cooldown=timed(_int(ext.get("cooldown"), 0)),
                delay=timed(_int(ext.get("delay"), 0)),
                exclude_recursion=bool(ext.get("exclude_recursion", False)),
                prevent_recursion=bool(ext.get("prevent_recursion", False)),
                delay_until_recursion=timed(_delay_level(ext.get("delay_until_recursion"))),
                extensions={
                    **{k: v for k, v in ext.items() if k not in _ST_EXTENSION_KEYS},
                    **_entry_extras(entry),
                    **({"position": st_position} if st_position in _KEPT_POSITIONS else {}),
                },
            )
        )
    return _with_unique_uids(
        Lorebook(
            name=(book.name or "Character book")[:100],
            description=book.description or "",
            scan_depth=book.scan_depth,
            token_budget=None if book.token_budget is None else min(book.token_budget, INT32_MAX),
            recursive_scanning=bool(book.recursive_scanning),
            extensions={**book.extensions, **_extras(book)},
            entries=entries,
        )
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
    entries = []
    for entry in book.entries:
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
        entries.append(BookEntry.model_validate(fields))
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
            "entries": [e.model_dump(mode="json", exclude_none=True) for e in entries],
            **unknown,
        }
    )


# -- SillyTavern world info JSON ---------------------------------------------------------

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


def from_world_info(document: dict[str, Any], *, name: str = "") -> Lorebook:
    """SillyTavern's world info file: `{"entries": {"<uid>": {...}}}`; numbers kept within
    the protos' range and uids made unique (`lore_numbers`)."""
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
        st_position = _int(raw.get("position"), 0)
        role_number = raw.get("role")
        selective = raw.get("selective", True)
        secondary = _strings(raw.get("keysecondary"))
        extensions = {k: v for k, v in raw.items() if k not in _WI_KNOWN}
        if st_position in _KEPT_POSITIONS:
            extensions["position"] = st_position
        if not selective and secondary:
            extensions["tzurot/inactive_secondary_keys"] = secondary
        entries.append(
            LoreEntry(
                uid=str(raw.get("uid", key)),
                keys=_strings(raw.get("key")),
                secondary_keys=secondary if selective else [],
                logic=LOGIC_BY_NUMBER.get(_int(raw.get("selectiveLogic"), 0), "AND_ANY"),
                content=str(raw.get("content") or ""),
                comment=str(raw.get("comment") or ""),
                constant=bool(raw.get("constant", False)),
                enabled=not bool(raw.get("disable", False)),
                order=checked_int32(_int(raw.get("order"), 100), f"entries.{key}.order"),
                position=_POSITION_BY_NUMBER.get(st_position, "before_char"),
                depth=max(0, _int(raw.get("depth"), DEFAULT_DEPTH)),
                role=ROLE_BY_NUMBER.get(_int(role_number, 0), "system"),
                probability=min(100, max(0, _int(raw.get("probability"), 100))),
                use_probability=bool(raw.get("useProbability", True)),
                case_sensitive=_opt_bool(raw.get("caseSensitive")),
                match_whole_words=_opt_bool(raw.get("matchWholeWords")),
                scan_depth=_opt_int(raw.get("scanDepth")),
                sticky=timed(_int(raw.get("sticky"), 0)),
                cooldown=timed(_int(raw.get("cooldown"), 0)),
                delay=timed(_int(raw.get("delay"), 0)),
                exclude_recursion=bool(raw.get("excludeRecursion", False)),
                prevent_recursion=bool(raw.get("preventRecursion", False)),
                delay_until_recursion=timed(_delay_level(raw.get("delayUntilRecursion"))),
                extensions=extensions,
            )
        )
    title = str(document.get("name") or name or "World info")[:100]
    return _with_unique_uids(Lorebook(name=title, entries=entries))


def _with_unique_uids(book: Lorebook) -> Lorebook:
    """The book checked (`check_key_limits`, its errors naming uids as the file has them),
    then each entry's uid a distinct number (`lore_numbers.unique_uids`)."""
    check_key_limits(book)
    uids = unique_uids(entry.uid for entry in book.entries)
    for entry, uid in zip(book.entries, uids, strict=True):
        entry.uid = uid
    return book


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


# -- documents ---------------------------------------------------------------------------


def parse_lorebook_document(data: bytes, *, name: str = "") -> Lorebook:
    """A lorebook file: SillyTavern world info, `lorebook_v3`, a bare book, or a card's
    `character_book`; InvalidArgument says what is wrong."""
    if len(data) > MAX_LOREBOOK_BYTES:
        raise InvalidArgument(
            "document", f"a lorebook may be at most {MAX_LOREBOOK_BYTES} bytes", reason="TOO_LARGE"
        )
    document = load_uploaded_json(
        data, what="the lorebook", reason="BAD_LOREBOOK", max_values=MAX_JSON_VALUES
    )
    if not isinstance(document, dict):
        raise InvalidArgument("document", "a lorebook is a JSON object", reason="BAD_LOREBOOK")
    try:
        if isinstance(document.get("entries"), dict):
            return from_world_info(document, name=name)
        if document.get("spec") in ("chara_card_v2", "chara_card_v3"):
            book = parse_card(document).data.character_book
            if book is None:
                raise InvalidArgument(
                    "document", "the card has no character_book", reason="BAD_LOREBOOK"
                )
            return from_card_book(book)
        lore = from_card_book(parse_book(document))
        inner = document.get("data")
        titled = document.get("name") or (isinstance(inner, dict) and inner.get("name"))
        if name and not titled:
            lore.name = name[:100]
        return lore
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "document"
        raise InvalidArgument(
            field, f"lorebook: {field}: {first['msg']}", reason="BAD_LOREBOOK"
        ) from None


def lorebook_v3_document(book: Lorebook) -> dict[str, Any]:
    """The export format: `{"spec": "lorebook_v3", "data": <character_book>}`."""
    return {
        "spec": "lorebook_v3",
        "data": to_card_book(book).model_dump(mode="json", exclude_none=True),
    }
