"""Character Card V2 (`chara_card_v2`) and V3 (`chara_card_v3`) as published, field by field.

Every model keeps unknown fields (`extra="allow"`): the V2 spec forbids destroying unknown
data and the V3 spec asks importers to keep fields of newer versions for export. A V1 card
(the fields at the top level, no `spec`) is read as V2.
"""

from __future__ import annotations

from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tzurot.runtime.errors import InvalidArgument

SPEC_V2 = "chara_card_v2"
SPEC_V3 = "chara_card_v3"
SPEC_LOREBOOK_V3 = "lorebook_v3"
_M = TypeVar("_M", bound=BaseModel)
V1_FIELDS = ("name", "description", "personality", "scenario", "first_mes", "mes_example")


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class BookEntry(_Open):
    """One entry of a card's `character_book` (V2, with the V3 additions)."""

    keys: list[str] = Field(default_factory=list)
    content: str = ""
    extensions: dict[str, Any] = Field(default_factory=dict)
    enabled: bool = True
    insertion_order: float = 0
    case_sensitive: bool | None = None
    use_regex: bool = False
    constant: bool | None = None
    name: str | None = None
    priority: float | None = None
    id: int | str | None = None
    comment: str | None = None
    selective: bool | None = None
    secondary_keys: list[str] | None = None
    position: Literal["before_char", "after_char"] | None = None


class Book(_Open):
    """A card's `character_book`, or the `data` of a standalone `lorebook_v3`."""

    name: str | None = None
    description: str | None = None
    scan_depth: int | None = Field(default=None, ge=0)
    token_budget: int | None = Field(default=None, ge=0)
    recursive_scanning: bool | None = None
    extensions: dict[str, Any] = Field(default_factory=dict)
    entries: list[BookEntry] = Field(default_factory=list)


class Asset(_Open):
    type: str
    uri: str
    name: str = ""
    ext: str = ""


class CardData(_Open):
    """`data` of a V3 card, a superset of V2's."""

    name: str = Field(min_length=1)
    description: str = ""
    personality: str = ""
    scenario: str = ""
    first_mes: str = ""
    mes_example: str = ""
    creator_notes: str = ""
    system_prompt: str = ""
    post_history_instructions: str = ""
    alternate_greetings: list[str] = Field(default_factory=list)
    character_book: Book | None = None
    tags: list[str] = Field(default_factory=list)
    creator: str = ""
    character_version: str = ""
    extensions: dict[str, Any] = Field(default_factory=dict)
    # V3 additions
    assets: list[Asset] | None = None
    nickname: str | None = None
    creator_notes_multilingual: dict[str, str] | None = None
    source: list[str] | None = None
    group_only_greetings: list[str] = Field(default_factory=list)
    # int64 seconds, as CharacterCard carries them
    creation_date: int | None = Field(default=None, ge=-(2**63), le=2**63 - 1)
    modification_date: int | None = Field(default=None, ge=-(2**63), le=2**63 - 1)


class Card(_Open):
    spec: Literal["chara_card_v2", "chara_card_v3"]
    spec_version: str
    data: CardData

    @property
    def version(self) -> int:
        return 3 if self.spec == SPEC_V3 else 2


def parse_card(document: Any, *, source: str = "card") -> Card:
    """A card from decoded JSON; InvalidArgument names the first bad field."""
    if not isinstance(document, dict):
        raise InvalidArgument("document", f"{source} must be a JSON object", reason="BAD_CARD")
    spec = document.get("spec")
    if spec is None and isinstance(document.get("name"), str):
        document = {"spec": SPEC_V2, "spec_version": "2.0", "data": document}  # V1
    elif spec not in (SPEC_V2, SPEC_V3):
        raise InvalidArgument(
            "spec",
            f"{source} has spec {spec!r}; expected {SPEC_V2!r} or {SPEC_V3!r}",
            reason="WRONG_SPEC",
        )
    return _validate(Card, document, source)


def parse_book(document: Any, *, source: str = "lorebook") -> Book:
    """A `lorebook_v3` document, or a bare Book object."""
    if isinstance(document, dict) and document.get("spec") == SPEC_LOREBOOK_V3:
        document = document.get("data")
    return _validate(Book, document, source)


def _validate(model: type[_M], document: Any, source: str) -> _M:
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "document"
        raise InvalidArgument(
            field, f"{source}: {field}: {first['msg']}", reason="BAD_CARD"
        ) from None


def card_json(card: Card) -> dict[str, Any]:
    """The card as JSON-ready data, unknown fields included, unset optionals left out."""
    return card.model_dump(mode="json", exclude_none=True, by_alias=True)


def backfill_v2(card: Card) -> dict[str, Any]:
    """The V2 form of a card, for the `chara` chunk next to `ccv3` (V3 fields dropped,
    decorators trimmed from lorebook entries, the warning the V3 spec asks for)."""
    data = card.data.model_dump(mode="json", exclude_none=True)
    for key in (
        "assets",
        "nickname",
        "creator_notes_multilingual",
        "source",
        "group_only_greetings",
        "creation_date",
        "modification_date",
    ):
        data.pop(key, None)
    if card.version == 3:
        warning = (
            "This character card is Character Card V3, but it is loaded as a Character Card V2. "
            "Please use a Character Card V3 compatible application to use this character card "
            "properly."
        )
        data["creator_notes"] = (
            f"{warning}\n\n{data['creator_notes']}" if data.get("creator_notes") else warning
        )
    book = data.get("character_book")
    if isinstance(book, dict):
        for entry in book.get("entries", []):
            entry.pop("use_regex", None)
            entry["content"] = strip_decorators(str(entry.get("content", "")))
    return {"spec": SPEC_V2, "spec_version": "2.0", "data": data}


def strip_decorators(content: str) -> str:
    """Content without its leading `@@decorator` lines (V3 lorebook decorators)."""
    lines = content.split("\n")
    index = 0
    while index < len(lines) and lines[index].startswith("@@"):
        index += 1
    return "\n".join(lines[index:]).strip("\n") if index else content
