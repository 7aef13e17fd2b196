"""Character cards: import (JSON, PNG, CHARX) and export (V3 as PNG, JSON or CHARX).

An imported card creates or updates the personality of its slug: a user may update only a
personality they own (a superuser, any). The card's picture is kept as the personality's
card image (exported again inside the PNG) and, when the edge is reachable
(TZUROT_PUBLIC_URL), becomes its avatar served at `/avatars/{slug}.{ext}`; its CHARX assets
are kept by path, its character_book as the personality's card lorebook (attached to it).

Reading a card (Pillow, JSON, zip) and writing one run on a worker thread, one document at a
time in the process (`document_work`: each costs many times its size): a large picture takes
seconds, which the event loop serves other calls meanwhile. A card whose export would
not fit in a gRPC message is refused at import, so every imported card can be exported.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncConnection

from tzurot.gateway.admin.avatars import AvatarAdmin
from tzurot.gateway.admin.base import MAX_TEXT, Principal, limit_text, named_for
from tzurot.gateway.cards import codec
from tzurot.gateway.cards.mapping import (
    CHARX_ICON_PATH,
    CharacterDraft,
    CharacterView,
    card_from_view,
    draft_from_card,
    with_charx_icon,
)
from tzurot.gateway.cards.spec import Card
from tzurot.gateway.document_work import run_document_work
from tzurot.gateway.domain import Personality
from tzurot.gateway.rules import rules_to_json
from tzurot.gateway.store.lorebooks import save_card_parts
from tzurot.runtime.errors import FailedPrecondition, InvalidArgument, PermissionDenied
from tzurot.runtime.grpc_options import MAX_MESSAGE_BYTES

CardFormatName = Literal["png", "json", "charx"]
AVATAR_ASSET = "avatar"
"""The key under which the card picture is kept among a personality's assets."""
ASSET_PREFIX = "asset:"
"""What a CHARX asset's key starts with (then its path): no asset takes the picture's key,
whatever its path (`embeded://avatar` too). A key without it is an asset stored before the
prefix, at its bare path."""
_CONTENT_TYPES = {"png": "image/png", "json": "application/json", "charx": "application/zip"}
MAX_EXPORT_BYTES = MAX_MESSAGE_BYTES - 64 * 1024
"""A card's largest export: a gRPC message, less room for the reply's other fields and for
what export adds to the card (its slug, aliases and dates)."""
MAX_IMPORTED_CARD_JSON_BYTES = codec.MAX_CARD_JSON_BYTES - 64 * 1024
"""A card's JSON export at import at most: what a card's JSON may be (`codec`), less room for
what export adds (its slug, aliases and dates), so the export imports again."""
_ZIP_ENTRY_BYTES = 128  # a zip entry's headers beyond its name
_CARD_FIELD_OF = {
    "description": "data.description",
    "personality": "data.personality",
    "scenario": "data.scenario",
    "example_dialogues": "data.mes_example",
    "post_history_instructions": "data.post_history_instructions",
    "author_note": "data.extensions.depth_prompt.prompt (or tzurot.author_note)",
}
"""The card field each character field comes from."""


@dataclass(frozen=True)
class CardContents:
    """What a personality's card export is made of: the card, its picture, and its CHARX
    assets by path (the picture aside: a CHARX carries it as its main icon)."""

    slug: str
    card: Card
    picture: bytes | None
    assets: dict[str, bytes]

    async def encode(self, fmt: CardFormatName) -> bytes:
        """The card as `fmt`, whatever its size (on a worker thread, one document at a time
        in the process: `document_work`)."""
        return await run_document_work(_encode, self.card, fmt, self.picture, self.assets)


@dataclass(frozen=True)
class CardImport:
    personality: Personality
    created: bool
    warnings: tuple[str, ...] = ()


class CardAdmin(AvatarAdmin):
    async def import_card(self, who: Principal, document: bytes) -> CardImport:
        """The card as a personality, created, or updated when the importer may (its owner, a
        superuser): decided in the import's transaction, so two imports of one new slug by
        two users cannot both pass."""
        draft, warnings = await run_document_work(_read_card, document)
        assets = {
            asset_key(path): ("application/octet-stream", data)
            for path, data in draft.assets.items()
        }
        if draft.avatar:
            assets[AVATAR_ASSET] = (draft.avatar_type or "image/png", draft.avatar)
        kept_owner: list[str | None] = []  # the owner of the personality replaced, if any

        def may_replace(existing: Personality) -> None:
            if not (who.superuser or existing.owner_user_id == who.user_id):
                raise PermissionDenied(
                    f"a personality {existing.slug!r} already exists and is not yours; rename "
                    "the card or ask its owner",
                    reason="NOT_OWNER",
                )
            kept_owner.append(existing.owner_user_id)

        async def parts(conn: AsyncConnection, personality_id: str) -> None:
            owner = kept_owner[0] if kept_owner else who.user_id
            await save_card_parts(
                conn, personality_id, assets=assets, book=draft.lorebook, owner_user_id=owner
            )

        personality, created = await self._store.import_personality(
            draft.seed,
            owner_user_id=who.user_id,  # a personality replaced keeps its owner
            extra_values={"card": draft.card},
            then=parts,
            may_replace=may_replace,
            named=named_for(who),
        )
        if draft.avatar:
            served = await self._serve_avatar(personality, draft.avatar)
            if served is None and self._public_url:
                warnings.append("the card's picture is kept with the card but cannot be served")
            personality = served or personality
        return CardImport(personality, created, tuple(warnings))

    async def export_card(
        self, who: Principal, name: str, fmt: CardFormatName
    ) -> tuple[bytes, str, str]:
        """The personality as a V3 card: (document, file name, content type). The owner's or
        a superuser's: a card holds the whole system prompt."""
        contents = await self.card_contents(who, name)
        document = await contents.encode(fmt)
        if len(document) > MAX_EXPORT_BYTES:  # grown since its import (its lorebook edited)
            raise FailedPrecondition(
                f"the {fmt.upper()} card would be {len(document)} bytes, over the "
                f"{MAX_EXPORT_BYTES} a reply may carry; try another format or a smaller lorebook",
                reason="CARD_TOO_LARGE",
            )
        return document, f"{contents.slug}.{fmt}", _CONTENT_TYPES[fmt]

    async def card_contents(self, who: Principal, name: str) -> CardContents:
        """What the personality's card is exported from (the owner's or a superuser's)."""
        personality = await self._owned(name, who)
        book = await self._db.card_lorebook(personality.id)
        assets = await self._db.card_assets(personality.id)
        c = personality.character
        card = card_from_view(
            CharacterView(
                name=personality.display_name,
                slug=personality.slug,
                aliases=personality.aliases,
                avatar_url=personality.avatar_url,
                system_prompt=personality.system_prompt,
                description=c.description,
                personality=c.personality,
                scenario=c.scenario,
                example_dialogues=c.example_dialogues,
                post_history_instructions=c.post_history_instructions,
                author_note=c.author_note,
                author_note_depth=c.author_note_depth,
                cleanup_rules=rules_to_json(personality.cleanup_rules),
                error_message=personality.error_message,
                birthday=personality.birthday,
                nsfw=personality.nsfw,
                public=personality.public,
                card=dict(personality.card),
                lorebook=None if book is None else book.book,
                created_at=int(personality.created_at.timestamp()),
                updated_at=int(personality.updated_at.timestamp()),
            )
        )
        picture = assets.pop(AVATAR_ASSET, None)
        files = {asset_path(key): data for key, (_, data) in assets.items()}
        return CardContents(personality.slug, card, picture[1] if picture else None, files)


def asset_key(path: str) -> str:
    """The key a CHARX asset at `path` is stored under."""
    return ASSET_PREFIX + path


def asset_path(key: str) -> str:
    """The path of the asset stored under `key` (one stored before the prefix: its key)."""
    return key.removeprefix(ASSET_PREFIX)


def _encode(
    card: Card, fmt: CardFormatName, picture: bytes | None, files: dict[str, bytes]
) -> bytes:
    """The card as `fmt`; a picture that cannot be read is left out (one stored before
    assets had their own keys may be an asset's bytes), so the card is still exported."""
    try:
        return _encode_with(card, fmt, picture, files)
    except InvalidArgument:
        if picture is None:
            raise
    named = {asset.uri for asset in card.data.assets or ()}
    if codec.EMBEDDED_PREFIX + AVATAR_ASSET in named and AVATAR_ASSET not in files:
        files = {**files, AVATAR_ASSET: picture}  # that asset, stored as the picture
    return _encode_with(card, fmt, None, files)


def _encode_with(
    card: Card, fmt: CardFormatName, picture: bytes | None, files: dict[str, bytes]
) -> bytes:
    if fmt == "png":
        return codec.encode_png(card, picture)
    if fmt == "json":
        return codec.encode_json(card)
    if picture is not None:
        card = with_charx_icon(card)
        files = {**files, CHARX_ICON_PATH: codec.encode_png_plain(picture)}
    return codec.encode_charx(card, files)


def _read_card(document: bytes) -> tuple[CharacterDraft, list[str]]:
    """The card's draft and what the importer is warned of; refuses one whose export would
    not fit in a reply, or whose JSON export (compact if need be) would be over the card JSON
    import takes. CPU-bound: run on a worker thread."""
    decoded = codec.decode(document)
    draft = draft_from_card(decoded)
    _check_character_lengths(draft)
    fmt, size, card_json = _largest_export(draft)
    if card_json > MAX_IMPORTED_CARD_JSON_BYTES:
        raise InvalidArgument(
            "document",
            f"exported (a JSON card, a CHARX's card.json), this card's JSON would be "
            f"{card_json} bytes even without indentation, over the "
            f"{MAX_IMPORTED_CARD_JSON_BYTES} an imported card's may be, so it could not be "
            "imported again (text JSON writes as escapes, such as control characters, counts "
            "several times); make its lorebook or texts smaller",
            reason="CARD_TOO_LARGE",
        )
    if size > MAX_EXPORT_BYTES:
        raise InvalidArgument(
            "document",
            f"as a {fmt.upper()} card (its export) this card would be {size} bytes, over the "
            f"{MAX_EXPORT_BYTES} a message may carry; make its lorebook, assets or picture "
            "smaller",
            reason="CARD_TOO_LARGE",
        )
    return draft, [*decoded.warnings, *draft.warnings]


def _check_character_lengths(draft: CharacterDraft) -> None:
    """The limit UpdatePersonality puts on each character field (`MAX_TEXT`), naming the
    card's field: every prompt of the personality carries them."""
    ours = draft.seed.character
    for name, card_field in _CARD_FIELD_OF.items():
        limit_text(card_field, getattr(ours, name), MAX_TEXT)


def _largest_export(draft: CharacterDraft) -> tuple[CardFormatName, int, int]:
    """The format whose export of this card is largest, its size (a CHARX's counted without
    compression: a PNG carries the card twice in base64, a CHARX every asset), and the size
    of the card's exported JSON (a `.json` card's, or a CHARX's card.json with its icon),
    as `codec.encode_json` writes it (counted, not written)."""
    seed = draft.seed
    view = CharacterView(
        name=seed.name,
        slug=seed.effective_slug,
        aliases=tuple(seed.aliases),
        avatar_url=seed.avatar_url,
        system_prompt=seed.system_prompt,
        description=seed.character.description,
        personality=seed.character.personality,
        scenario=seed.character.scenario,
        example_dialogues=seed.character.example_dialogues,
        post_history_instructions=seed.character.post_history_instructions,
        author_note=seed.character.author_note,
        author_note_depth=seed.character.author_note_depth,
        cleanup_rules=rules_to_json(seed.rules),
        error_message=seed.error_message,
        birthday=seed.birthday,
        nsfw=seed.nsfw,
        public=seed.public,
        card=dict(draft.card),
        lorebook=draft.lorebook,
    )
    try:
        card = card_from_view(view)
    except ValueError as exc:  # what export would fail on: refused now, not then
        raise InvalidArgument("document", f"the card cannot be exported again: {exc}") from None
    files = dict(draft.assets)
    if draft.avatar:
        card_with_icon = with_charx_icon(card)
        files[CHARX_ICON_PATH] = codec.encode_png_plain(draft.avatar)
    else:
        card_with_icon = card
    charx_json = codec.json_export_size(card_with_icon)
    charx = charx_json + sum(
        len(path) + len(data) + _ZIP_ENTRY_BYTES for path, data in files.items()
    )
    sizes: dict[CardFormatName, int] = {
        "png": len(codec.encode_png(card, draft.avatar)),
        "json": codec.json_export_size(card),
        "charx": charx,
    }
    largest = max(sizes, key=lambda fmt: sizes[fmt])
    return largest, sizes[largest], max(sizes["json"], charx_json)
