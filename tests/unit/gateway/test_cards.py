"""Character cards generated here from the published V2/V3 specs, read and written back."""

from __future__ import annotations

import base64
import io
import json
import struct
import zipfile
import zlib
from typing import Any

import pytest
from PIL import Image, PngImagePlugin

from tzurot.gateway.admin.avatars import MAX_AVATAR_BYTES, image_kind
from tzurot.gateway.cards import codec, pictures
from tzurot.gateway.cards.mapping import CharacterView, card_from_view, draft_from_card
from tzurot.gateway.cards.spec import backfill_v2, card_json
from tzurot.gateway.personalities import SLUG_PATTERN, CleanupRuleSeed, slugify
from tzurot.runtime.errors import InvalidArgument
from tzurot.testing.cards import card_v3, charx_card, photo

BOOK_V2: dict[str, Any] = {
    "name": "Ravenholm lore",
    "scan_depth": 3,
    "token_budget": 500,
    "recursive_scanning": True,
    "extensions": {"ns/flag": 1},
    "entries": [
        {
            "keys": ["ravenholm"],
            "content": "Ravenholm is a mining town overrun by headcrabs.",
            "extensions": {"sticky": 2, "selectiveLogic": 3, "depth": 2, "position": 4, "role": 1},
            "enabled": True,
            "insertion_order": 10,
            "case_sensitive": False,
            "id": 7,
            "comment": "town",
            "selective": True,
            "secondary_keys": ["mine", "town"],
            "constant": False,
            "position": "after_char",
            "priority": 3,
        }
    ],
}


def v2_card(**data: Any) -> dict[str, Any]:
    return {
        "spec": "chara_card_v2",
        "spec_version": "2.0",
        "data": {
            "name": "Father Grigori",
            "description": "A priest of Ravenholm.",
            "personality": "zealous, kind to the living",
            "scenario": "{{user}} arrives in Ravenholm.",
            "first_mes": "Come, {{user}}! Join me on the rooftops!",
            "mes_example": "<START>\n{{char}}: Rise up!",
            "creator_notes": "Best with a shotgun.",
            "system_prompt": "{{original}} Stay in character as {{char}}.",
            "post_history_instructions": "Keep answers short.",
            "alternate_greetings": ["Ah, a visitor!"],
            "character_book": BOOK_V2,
            "tags": ["horror", "priest"],
            "creator": "valve-fan",
            "character_version": "1.2",
            "extensions": {"talkativeness": "0.5", "depth_prompt": {"depth": 4}},
            **data,
        },
    }


def v3_card(**data: Any) -> dict[str, Any]:
    card = v2_card(**data)
    card["spec"], card["spec_version"] = "chara_card_v3", "3.0"
    card["data"] |= {
        "nickname": "Grigori",
        "group_only_greetings": ["Welcome, all of you!"],
        "creation_date": 1700000000,
        "modification_date": 1700000500,
        "source": ["https://example.com/grigori"],
        "creator_notes_multilingual": {"en": "Best with a shotgun.", "de": "Mit Schrotflinte."},
        "future_field": {"kept": True},
    }
    card["data"]["character_book"] = {
        **BOOK_V2,
        "entries": [{**BOOK_V2["entries"][0], "use_regex": False}],
    }
    return card


def png_with(chunks: dict[str, str], color: str = "red") -> bytes:
    info = PngImagePlugin.PngInfo()
    for key, value in chunks.items():
        info.add_text(key, value)
    out = io.BytesIO()
    Image.new("RGB", (8, 12), color).save(out, "PNG", pnginfo=info)
    return out.getvalue()


def b64(document: dict[str, Any]) -> str:
    return base64.b64encode(json.dumps(document).encode()).decode()


def test_v2_json_card_is_read_field_by_field() -> None:
    decoded = codec.decode(json.dumps(v2_card()).encode())
    assert decoded.container == "json"
    assert decoded.card.version == 2
    draft = draft_from_card(decoded)
    assert draft.seed.name == "Father Grigori"
    assert draft.seed.effective_slug == "father-grigori"
    assert draft.seed.character.description == "A priest of Ravenholm."
    assert draft.seed.character.personality == "zealous, kind to the living"
    assert draft.seed.character.scenario == "{{user}} arrives in Ravenholm."
    assert draft.seed.character.example_dialogues == "<START>\n{{char}}: Rise up!"
    assert draft.seed.character.post_history_instructions == "Keep answers short."
    # macros stay as written: they are expanded when the prompt is built
    assert draft.seed.system_prompt == "{{original}} Stay in character as {{char}}."
    assert draft.card["first_mes"] == "Come, {{user}}! Join me on the rooftops!"
    assert draft.card["alternate_greetings"] == ["Ah, a visitor!"]
    assert draft.card["tags"] == ["horror", "priest"]
    assert draft.card["creator"] == "valve-fan"
    assert draft.card["character_version"] == "1.2"
    assert draft.card["creator_notes"] == "Best with a shotgun."
    assert draft.card["extensions"] == {"talkativeness": "0.5", "depth_prompt": {"depth": 4}}
    book = draft.lorebook
    assert book is not None
    assert book.name == "Ravenholm lore"
    assert (book.scan_depth, book.token_budget, book.recursive_scanning) == (3, 500, True)
    entry = book.entries[0]
    assert entry.uid == "7"
    assert entry.keys == ["ravenholm"]
    assert entry.secondary_keys == ["mine", "town"]
    assert entry.logic == "AND_ALL"
    assert (entry.position, entry.depth, entry.role) == ("at_depth", 2, "user")
    assert (entry.sticky, entry.order, entry.priority) == (2, 10, 3)


@pytest.mark.parametrize(
    ("depth_prompt", "note"),
    [
        ({"prompt": "Mention the crows.", "depth": 9, "role": "system"}, ("Mention the crows.", 4)),
        ({"prompt": "Mention the crows.", "depth": 0}, ("Mention the crows.", 2)),
        ({"prompt": "Mention the crows."}, ("Mention the crows.", 4)),
        ({"depth": 4}, ("", 0)),
    ],
)
def test_a_sillytavern_character_note_becomes_the_author_note(
    depth_prompt: dict[str, Any], note: tuple[str, int]
) -> None:
    card = v2_card(extensions={"depth_prompt": depth_prompt})
    seed = draft_from_card(codec.decode(json.dumps(card).encode())).seed
    assert (seed.character.author_note, seed.character.author_note_depth) == note


def test_our_extension_wins_over_the_character_note() -> None:
    ours = {"author_note": "", "author_note_depth": 0}
    card = v2_card(extensions={"depth_prompt": {"prompt": "x"}, "tzurot": ours})
    seed = draft_from_card(codec.decode(json.dumps(card).encode())).seed
    assert seed.character.author_note == ""


def test_v1_card_reads_as_v2() -> None:
    v1 = {
        k: v2_card()["data"][k]
        for k in ("name", "description", "personality", "scenario", "first_mes", "mes_example")
    }
    draft = draft_from_card(codec.decode(json.dumps(v1).encode()))
    assert draft.seed.name == "Father Grigori"
    assert draft.card["first_mes"].startswith("Come")


def test_v3_json_keeps_new_and_unknown_fields() -> None:
    draft = draft_from_card(codec.decode(json.dumps(v3_card()).encode()))
    assert draft.card["nickname"] == "Grigori"
    assert draft.card["group_only_greetings"] == ["Welcome, all of you!"]
    assert (draft.card["creation_date"], draft.card["modification_date"]) == (
        1700000000,
        1700000500,
    )
    assert draft.card["source"] == ["https://example.com/grigori"]
    assert draft.card["creator_notes_multilingual"]["de"] == "Mit Schrotflinte."
    assert draft.card["unknown_fields"] == {"future_field": {"kept": True}}


@pytest.mark.parametrize(
    ("chunks", "expected_name"),
    [
        ({"chara": b64(v2_card())}, "Father Grigori"),
        ({"ccv3": b64(v3_card(name="Grigori V3"))}, "Grigori V3"),
        # both chunks: ccv3 wins, whatever their order
        ({"chara": b64(v2_card(name="Old")), "ccv3": b64(v3_card(name="New"))}, "New"),
        ({"ccv3": b64(v3_card(name="New")), "chara": b64(v2_card(name="Old"))}, "New"),
    ],
)
def test_png_chunks(chunks: dict[str, str], expected_name: str) -> None:
    decoded = codec.decode(png_with(chunks))
    assert decoded.container == "png"
    assert decoded.card.data.name == expected_name
    assert decoded.image is not None
    picture = Image.open(io.BytesIO(decoded.image))
    assert picture.size == (8, 12)
    assert not getattr(picture, "text", {})  # the avatar keeps no card chunk


def test_charx_with_assets() -> None:
    card = v3_card()
    card["data"]["assets"] = [
        {
            "type": "icon",
            "uri": "embeded://assets/icon/images/main.png",
            "name": "main",
            "ext": "png",
        },
        {
            "type": "background",
            "uri": "embeded://assets/background/images/bg.png",
            "name": "bg",
            "ext": "png",
        },
        {"type": "emotion", "uri": "https://example.com/happy.png", "name": "happy", "ext": "png"},
    ]
    icon = png_with({}, "blue")
    background = png_with({}, "green")
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("card.json", json.dumps(card))
        archive.writestr("assets/icon/images/main.png", icon)
        archive.writestr("assets/background/images/bg.png", background)
        archive.writestr("x_app.json", "{}")
    decoded = codec.decode(out.getvalue())
    assert decoded.container == "charx"
    assert decoded.image is not None
    assert Image.open(io.BytesIO(decoded.image)).getpixel((0, 0)) == (0, 0, 255)
    draft = draft_from_card(decoded)
    assert set(draft.assets) == {"assets/background/images/bg.png"}
    assert [a["name"] for a in draft.card["assets"]] == ["bg", "happy"]  # main: the avatar


@pytest.mark.parametrize(
    ("data", "reason", "words"),
    [
        (b"GIF89a....", "UNSUPPORTED_FORMAT", "not a PNG, JSON or CHARX"),
        (png_with({}), "NO_CARD", "no character card"),
        (png_with({"chara": "!!!not base64!!!"}), "BAD_CARD", "not valid base64"),
        (png_with({"ccv3": base64.b64encode(b"{nope").decode()}), "BAD_CARD", "not valid JSON"),
        (json.dumps({"spec": "chara_card_v9", "data": {}}).encode(), "WRONG_SPEC", "chara_card_v9"),
        (
            json.dumps(
                {"spec": "chara_card_v2", "spec_version": "2.0", "data": {"name": ""}}
            ).encode(),
            "BAD_CARD",
            "data.name",
        ),
        (b"{" + b" " * codec.MAX_CARD_BYTES + b"}", "CARD_TOO_LARGE", "at most"),
        (codec.PNG_MAGIC + b"truncated", "BAD_CARD", "cannot be read"),
        (codec.ZIP_MAGIC + b"broken", "BAD_CARD", "not a valid zip"),
    ],
)
def test_bad_files_get_clear_errors(data: bytes, reason: str, words: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        codec.decode(data)
    assert caught.value.reason == reason
    assert words in caught.value.message


def test_charx_without_card_json() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("other.json", "{}")
    with pytest.raises(InvalidArgument, match=r"no card\.json"):
        codec.decode(out.getvalue())


def view_of(draft: Any, **changes: Any) -> CharacterView:
    fields = {
        "name": draft.seed.name,
        "slug": draft.seed.effective_slug,
        "aliases": tuple(draft.seed.aliases),
        "avatar_url": draft.seed.avatar_url,
        "system_prompt": draft.seed.system_prompt,
        "description": draft.seed.character.description,
        "personality": draft.seed.character.personality,
        "scenario": draft.seed.character.scenario,
        "example_dialogues": draft.seed.character.example_dialogues,
        "post_history_instructions": draft.seed.character.post_history_instructions,
        "error_message": draft.seed.error_message,
        "birthday": draft.seed.birthday,
        "nsfw": draft.seed.nsfw,
        "public": draft.seed.public,
        "card": draft.card,
        "lorebook": draft.lorebook,
        "updated_at": 1700000500,
    }
    return CharacterView(**(fields | changes))


@pytest.mark.parametrize("container", ["png", "json", "charx"])
def test_round_trip_is_identity(container: str) -> None:
    first = draft_from_card(codec.decode(json.dumps(v3_card()).encode()))
    first.seed.aliases = ["the priest"]
    first.seed.birthday = "10-31"
    first.seed.character.author_note = "Speak of Ravenholm."
    first.seed.character.author_note_depth = 2
    rules = [{"pattern": "(?i)headcrab", "replacement": "crab"}]
    first.seed.cleanup_rules = [CleanupRuleSeed.model_validate(r) for r in rules]
    card = card_from_view(
        view_of(
            first,
            author_note="Speak of Ravenholm.",
            author_note_depth=2,
            cleanup_rules=rules,
        )
    )
    if container == "png":
        data = codec.encode_png(card, png_with({}, "blue"))
    elif container == "json":
        data = codec.encode_json(card)
    else:
        data = codec.encode_charx(card, {})
    again = draft_from_card(codec.decode(data))
    assert again.seed == first.seed
    assert again.card == first.card
    assert again.lorebook == first.lorebook
    assert again.seed.rules == first.seed.rules
    assert card_json(
        card_from_view(
            view_of(
                again, author_note="Speak of Ravenholm.", author_note_depth=2, cleanup_rules=rules
            )
        )
    ) == card_json(card)
    if container == "png":
        assert again.avatar is not None
        assert Image.open(io.BytesIO(again.avatar)).getpixel((0, 0)) == (0, 0, 255)


def test_png_export_backfills_v2_without_v3_fields() -> None:
    card = card_from_view(view_of(draft_from_card(codec.decode(json.dumps(v3_card()).encode()))))
    picture = Image.open(io.BytesIO(codec.encode_png(card, None)))
    picture.load()
    chara = json.loads(base64.b64decode(picture.text["chara"]))  # type: ignore[attr-defined]
    assert chara["spec"] == "chara_card_v2"
    assert "nickname" not in chara["data"]
    assert "group_only_greetings" not in chara["data"]
    assert chara["data"]["creator_notes"].startswith("This character card is Character Card V3")
    assert chara == backfill_v2(card)
    ccv3 = json.loads(base64.b64decode(picture.text["ccv3"]))  # type: ignore[attr-defined]
    assert ccv3["spec"] == "chara_card_v3"
    assert ccv3["data"]["nickname"] == "Grigori"


# ---- the picture as the avatar, and slugs of names in other scripts ----


def charx_with_icon(icon: bytes, ext: str = "jpg", **data: Any) -> bytes:
    card = v3_card(**data)
    path = f"assets/icon/images/main.{ext}"
    card["data"]["assets"] = [
        {"type": "icon", "uri": f"embeded://{path}", "name": "main", "ext": ext}
    ]
    return charx_card(card, {path: icon})


def test_a_large_icon_becomes_an_avatar_discord_and_the_edge_take() -> None:
    decoded = codec.decode(charx_with_icon(photo(4096)))
    assert decoded.image is not None
    assert len(decoded.image) <= pictures.MAX_BYTES < MAX_AVATAR_BYTES
    assert image_kind(decoded.image) == "png"
    assert max(Image.open(io.BytesIO(decoded.image)).size) <= pictures.MAX_SIDE
    assert decoded.warnings == []


def test_a_small_picture_is_kept_as_it_came() -> None:
    icon = photo(256)
    decoded = codec.decode(charx_with_icon(icon))
    # A JPEG keeps its format, re-encoded without its metadata (test_avatar_metadata.py).
    assert decoded.image_type == "image/jpeg"
    assert decoded.image is not None
    assert Image.open(io.BytesIO(decoded.image)).size == (256, 256)
    card = png_with({"ccv3": b64(v3_card())})
    from_png = codec.decode(card)
    assert from_png.image == pictures.without_text_chunks(card)
    assert from_png.image is not None
    assert b"ccv3" not in from_png.image


def test_an_icon_that_cannot_be_the_avatar_is_a_warning_not_a_failure() -> None:
    decoded = codec.decode(charx_with_icon(b"\xff\xd8\xffnot really a JPEG"))
    assert decoded.image is None
    assert decoded.warnings
    assert "cannot be the avatar" in decoded.warnings[0]
    draft = draft_from_card(decoded)
    assert draft.avatar is None
    assert set(draft.assets) == {"assets/icon/images/main.jpg"}  # kept for a CHARX export


@pytest.mark.parametrize("name", ["Алиса", "アリス", "Алиса 2", "李小龍"])
def test_a_name_in_another_script_gets_a_stable_slug(name: str) -> None:
    slug = draft_from_card(codec.decode(json.dumps(v2_card(name=name)).encode())).seed.slug
    assert SLUG_PATTERN.match(slug)
    assert slug.startswith("char-")
    assert slugify(f"  {name.upper()} ") == slug  # case and spacing do not matter
    assert slug != slugify(name + "x")
    assert slugify("Alice 2") == "alice-2"  # Latin names are as before


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares `width` by `height` and holds no pixels: what a bomb looks like
    before it is decoded."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return codec.PNG_MAGIC + chunk(b"IHDR", header) + chunk(b"IEND", b"")


@pytest.mark.parametrize(
    "side",
    [
        5_000,  # past our limit: refused by its size, before any pixel is read
        10_000,  # past Pillow's warning threshold (89M pixels), the warning an error
        pytest.param(  # the same where warnings are only printed (production)
            10_000, marks=pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
        ),
        20_000,  # past Pillow's bomb limit (179M pixels): DecompressionBombError at open
    ],
)
def test_a_picture_too_large_is_refused_as_too_large(side: int) -> None:
    with pytest.raises(InvalidArgument) as refused:
        codec.decode(_png_header_only(side, side))
    assert refused.value.reason == "CARD_TOO_LARGE"


def test_a_charx_built_twice_is_the_same_bytes_whatever_the_clock(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A data export measures a card to plan its parts, then builds it again for the part
    that carries it: the clock moving between the two must not change its bytes."""
    card = codec.decode(json.dumps(card_v3("Nova")).encode()).card
    assets = {"assets/emotion/joy.png": b"\x89PNG joy"}
    first = codec.encode_charx(card, assets)
    monkeypatch.setattr(zipfile.time, "time", lambda: 2_000_000_000.0)  # type: ignore[attr-defined]  # zipfile's own `time` import
    second = codec.encode_charx(card, assets)
    assert first == second
    with zipfile.ZipFile(io.BytesIO(first)) as archive:
        assert archive.namelist() == ["card.json", "assets/emotion/joy.png"]
        assert archive.read("assets/emotion/joy.png") == b"\x89PNG joy"
        assert all(entry.external_attr >> 16 == 0o600 for entry in archive.infolist())
