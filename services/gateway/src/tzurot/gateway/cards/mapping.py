"""A character card as a personality, and a personality as a V3 card.

Card fields with a place in a personality go there (name, description, personality, scenario,
mes_example, system_prompt, post_history_instructions); the rest (greetings, creator notes,
tags, creator, version, nickname, assets, source, dates, extensions and any field a newer
spec adds) is kept as the personality's card data and written back on export. The
`character_book` becomes the personality's lorebook. Tzurot's own fields travel in
`extensions["tzurot"]` (slug, aliases, error message, birthday, nsfw, author's note and its
depth, cleanup rules), so export then import gives the same personality. A card without our
extension may carry SillyTavern's character note (`extensions.depth_prompt`): it becomes the
author's note, its depth brought into 2-4.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from tzurot.gateway.cards.codec import EMBEDDED_PREFIX, DecodedCard, main_icon
from tzurot.gateway.cards.lore_checks import check_size
from tzurot.gateway.cards.lorebooks import (
    MAX_ENTRIES,
    Lorebook,
    LoreEntry,
    from_card_book,
    to_card_book,
)
from tzurot.gateway.cards.spec import SPEC_V3, V1_FIELDS, Book, Card, CardData
from tzurot.gateway.personalities import SLUG_PATTERN, PersonalitySeed, slugify
from tzurot.runtime.errors import InvalidArgument
from tzurot.runtime.graphemes import trimmed_prefix

TZUROT_EXTENSION = "tzurot"
DEFAULT_DEPTH = 4
"""SillyTavern's default depth for a character's note."""
CARD_KEYS = (
    "nickname",
    "first_mes",
    "alternate_greetings",
    "group_only_greetings",
    "creator_notes",
    "creator_notes_multilingual",
    "tags",
    "creator",
    "character_version",
    "extensions",
    "assets",
    "source",
    "creation_date",
    "modification_date",
)
MAX_NAME = 80
"""A personality's name (`PersonalitySeed.name`): a card's longer name is cut to it."""


@dataclass
class CharacterDraft:
    """Everything a card says about a character, in Tzurot's terms."""

    seed: PersonalitySeed
    card: dict[str, Any]
    """The card-only fields (CARD_KEYS, plus `unknown_fields` of newer specs)."""
    lorebook: Lorebook | None = None
    avatar: bytes | None = None
    avatar_type: str = ""
    assets: dict[str, bytes] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    """What the importer is told (its lorebook's uids renumbered)."""


def draft_from_card(decoded: DecodedCard) -> CharacterDraft:
    data = decoded.card.data
    ours = data.extensions.get(TZUROT_EXTENSION)
    ours = ours if isinstance(ours, dict) else {}
    name = _cut_name(data.name.strip())
    slug = str(ours.get("slug") or "") or slugify(name)
    if not SLUG_PATTERN.match(slug):
        raise InvalidArgument("data.name", f"cannot derive a slug from the name {name!r}")
    try:
        seed = PersonalitySeed.model_validate(
            {
                "name": name,
                "slug": slug,
                "aliases": _list_of(ours, "aliases"),
                "avatar_url": str(ours.get("avatar_url") or ""),
                "system_prompt": data.system_prompt,
                "character": {
                    "description": data.description,
                    "personality": data.personality,
                    "scenario": data.scenario,
                    "example_dialogues": data.mes_example,
                    "post_history_instructions": data.post_history_instructions,
                    **_author_note(ours, data.extensions),
                },
                "cleanup_rules": _list_of(ours, "cleanup_rules"),
                "error_message": str(ours.get("error_message") or ""),
                "birthday": str(ours.get("birthday") or ""),
                "nsfw": bool(ours.get("nsfw", False)),
                # a card from elsewhere becomes private to its importer until shared
                "public": bool(ours.get("public", False)),
            }
        )
    except ValueError as exc:
        raise InvalidArgument("data", f"the card cannot become a personality: {exc}") from None
    dumped = data.model_dump(mode="json", exclude_none=True)
    card = {key: dumped[key] for key in CARD_KEYS if key in dumped}
    card["extensions"] = {
        k: v for k, v in card.get("extensions", {}).items() if k != TZUROT_EXTENSION
    }
    if data.model_extra:
        card["unknown_fields"] = dict(data.model_extra)
    top_level = _without_v1_fields(decoded.card.model_extra or {})
    if top_level:
        card["card_unknown_fields"] = top_level
    warnings: list[str] = []
    lorebook = _card_lorebook(data.character_book, warnings) if data.character_book else None
    if lorebook is not None and not data.character_book.name:  # type: ignore[union-attr]
        lorebook.name = f"{name} (card)"  # MAX_NAME + 7: within a lorebook's 100
    assets = dict(decoded.assets)
    icon = main_icon(decoded.card)
    if icon is not None and icon.uri.startswith(EMBEDDED_PREFIX) and decoded.image:
        # The main icon becomes the avatar; a CHARX export puts it back as that asset.
        assets.pop(icon.uri[len(EMBEDDED_PREFIX) :], None)
        card["assets"] = [a for a in card.get("assets", []) if a.get("uri") != icon.uri]
        if not card["assets"]:
            del card["assets"]
    return CharacterDraft(
        seed=seed,
        card=card,
        lorebook=lorebook,
        avatar=decoded.image,
        avatar_type=decoded.image_type,
        assets=assets,
        warnings=warnings,
    )


def _cut_name(name: str) -> str:
    """A card's name within `MAX_NAME`, cut between graphemes (never an emoji without its
    skin tone) and without spaces at the cut; a first grapheme longer than that alone is cut
    where the limit falls, as there is no whole one to keep."""
    return trimmed_prefix(name, MAX_NAME) or name[:MAX_NAME]


def _without_v1_fields(top_level: dict[str, Any]) -> dict[str, Any]:
    """A card's unknown top-level fields without the V1 ones a V2 card repeats there
    (SillyTavern writes them): they are `data`'s, and written back unchanged they would go
    stale once the personality is edited (readers that fall back to V1 show them)."""
    return {key: value for key, value in top_level.items() if key not in V1_FIELDS}


_JSON_TYPES = {str: "a string", int: "a number", float: "a number", bool: "a boolean"}


def _list_of(ours: dict[str, Any], key: str) -> list[Any]:
    """A list of Tzurot's extension (its items are checked by the seed's model)."""
    value = ours.get(key)
    if not value:
        return []
    if not isinstance(value, list):
        field = f"data.extensions.{TZUROT_EXTENSION}.{key}"
        raise InvalidArgument(
            field, f"{field} must be a list, not {_JSON_TYPES.get(type(value), 'an object')}"
        )
    return value


def _card_lorebook(book: Book, warnings: list[str]) -> Lorebook:
    """The card's character_book as a lorebook, within a lorebook file's limits (it is read
    on every turn of the personality), its size measured by its text (`lore_checks`), as a
    lorebook file's is, so the card's own export imports again."""
    field = "data.character_book"
    if len(book.entries) > MAX_ENTRIES:
        raise InvalidArgument(
            f"{field}.entries",
            f"the card's character_book has {len(book.entries)} entries; "
            f"a lorebook may have at most {MAX_ENTRIES}",
            reason="TOO_LARGE",
        )
    try:
        lore = from_card_book(book, warnings)
    except ValidationError as exc:
        first = exc.errors()[0]
        if exc.title == LoreEntry.__name__:
            field += f".entries.{_first_bad_entry(book)}"
        where = ".".join([field, *(str(part) for part in first["loc"])])
        raise InvalidArgument(where, f"card: {where}: {first['msg']}", reason="BAD_CARD") from None
    return check_size(lore, field, "the card's character_book")


def _first_bad_entry(book: Book) -> int:
    """The index of the first entry that cannot become a lore entry (after an error only)."""
    for index, entry in enumerate(book.entries):
        try:
            from_card_book(Book(entries=[entry]))
        except ValidationError:
            return index
    return 0


def _author_note(ours: dict[str, Any], extensions: dict[str, Any]) -> dict[str, Any]:
    """Tzurot's own note when the card has our extension; else SillyTavern's character note
    (`extensions.depth_prompt`), its depth brought into 2-4."""
    if "author_note" in ours:
        return {
            "author_note": str(ours.get("author_note") or ""),
            "author_note_depth": ours.get("author_note_depth") or 0,
        }
    theirs = extensions.get("depth_prompt")
    prompt = theirs.get("prompt") if isinstance(theirs, dict) else None
    if not isinstance(prompt, str) or not prompt.strip():
        return {}
    depth = theirs.get("depth", DEFAULT_DEPTH) if isinstance(theirs, dict) else DEFAULT_DEPTH
    depth = depth if isinstance(depth, int) else DEFAULT_DEPTH
    return {"author_note": prompt, "author_note_depth": min(max(depth, 2), 4)}


@dataclass(frozen=True)
class CharacterView:
    """What export needs of a personality."""

    name: str
    slug: str
    aliases: tuple[str, ...]
    avatar_url: str
    system_prompt: str
    description: str
    personality: str
    scenario: str
    example_dialogues: str
    post_history_instructions: str
    error_message: str
    birthday: str
    nsfw: bool
    public: bool
    card: dict[str, Any]
    lorebook: Lorebook | None = None
    author_note: str = ""
    author_note_depth: int = 0
    cleanup_rules: list[dict[str, str]] = field(default_factory=list)
    created_at: int = 0
    updated_at: int = 0


def card_from_view(view: CharacterView) -> Card:
    """A V3 card (spec_version 3.0) of the personality."""
    card = dict(view.card)
    unknown = dict(card.pop("unknown_fields", {}) or {})
    # a card stored before V1 fields were dropped at import: not written back either
    top_unknown = _without_v1_fields(card.pop("card_unknown_fields", {}) or {})
    extensions = dict(card.pop("extensions", {}) or {})
    extensions[TZUROT_EXTENSION] = {
        "slug": view.slug,
        "aliases": list(view.aliases),
        "avatar_url": view.avatar_url,
        "error_message": view.error_message,
        "birthday": view.birthday,
        "nsfw": view.nsfw,
        "public": view.public,
        "author_note": view.author_note,
        "author_note_depth": view.author_note_depth,
        "cleanup_rules": list(view.cleanup_rules),
    }
    data: dict[str, Any] = {
        **unknown,
        "name": view.name,
        "description": view.description,
        "personality": view.personality,
        "scenario": view.scenario,
        "first_mes": card.pop("first_mes", ""),
        "mes_example": view.example_dialogues,
        "creator_notes": card.pop("creator_notes", ""),
        "system_prompt": view.system_prompt,
        "post_history_instructions": view.post_history_instructions,
        "alternate_greetings": card.pop("alternate_greetings", []),
        "tags": card.pop("tags", []),
        "creator": card.pop("creator", ""),
        "character_version": card.pop("character_version", ""),
        "extensions": extensions,
        "group_only_greetings": card.pop("group_only_greetings", []),
        "creation_date": card.pop("creation_date", view.created_at or None),
        "modification_date": view.updated_at or card.pop("modification_date", None),
        **{k: v for k, v in card.items() if k in CARD_KEYS and k != "modification_date"},
    }
    if view.lorebook is not None:
        data["character_book"] = to_card_book(view.lorebook).model_dump(
            mode="json", exclude_none=True
        )
    document = {**top_unknown, "spec": SPEC_V3, "spec_version": "3.0", "data": data}
    cleaned = {k: v for k, v in document.items()}
    cleaned["data"] = {k: v for k, v in data.items() if v is not None}
    return Card.model_validate(cleaned)


def card_data_defaults() -> dict[str, Any]:
    """Card fields of a personality that never came from a card."""
    return CardData(name="x").model_dump(mode="json", include=set(CARD_KEYS), exclude_none=True)


CHARX_ICON_PATH = "assets/icon/images/main.png"


def with_charx_icon(card: Card) -> Card:
    """The card with the avatar as its main icon asset (a CHARX carries it as a file)."""
    icon = {"type": "icon", "uri": EMBEDDED_PREFIX + CHARX_ICON_PATH, "name": "main", "ext": "png"}
    data = card.data.model_dump(mode="json", exclude_none=True)
    data["assets"] = [icon, *data.get("assets", [])]
    document = card.model_dump(mode="json", exclude_none=True)
    document["data"] = data
    return Card.model_validate(document)
