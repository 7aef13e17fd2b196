"""A lorebook in Tzurot's one shape (`Lorebook`, `LoreEntry`), and SillyTavern's numbers for
its selective logic, roles and positions.

The shape follows SillyTavern's World Info entry (its field names turned snake_case):
primary and secondary keys with a selective logic, constant, probability, insertion order,
position (before/after the character definition, or at a depth with a role), timed effects
(sticky, cooldown, delay) and recursion flags. The conversions live beside it
(`lore_card_book`, `lore_world_info`), the import checks in `lore_checks`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

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
POSITION_BY_NUMBER: dict[int, Position] = {
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
KEPT_POSITIONS = (2, 3, 5, 6, OUTLET_POSITION)
"""SillyTavern positions kept in an entry's `extensions.position` (the others follow from its
placement)."""
DEFAULT_DEPTH = 4
MAX_ENTRIES = 2000


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


MAX_LOREBOOK_NAME = 100
"""The most characters a lorebook's name has. A name given on import (`ImportLorebook.name`)
over it is refused, never cut; a file's own title is cut to it (the file is someone else's)."""


class Lorebook(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(default="Lorebook", min_length=1, max_length=MAX_LOREBOOK_NAME)
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
