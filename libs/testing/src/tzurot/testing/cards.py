"""Character cards built from the published specs, for tests: V2 and V3 JSON, PNG with each
chunk kind, CHARX; and a SillyTavern world info file."""

from __future__ import annotations

import base64
import io
import json
import random
import zipfile
from typing import Any

from PIL import Image, PngImagePlugin


def card_v3(name: str = "Father Grigori", **data: Any) -> dict[str, Any]:
    """A V3 card whose character_book has one keyed entry at depth 2 and one constant."""
    return {
        "spec": "chara_card_v3",
        "spec_version": "3.0",
        "data": {
            "name": name,
            "description": "{{char}} is the last priest of Ravenholm.",
            "personality": "zealous, kind to the living",
            "scenario": "{{user}} arrives in Ravenholm at dusk.",
            "first_mes": "Come, {{user}}! Join me on the rooftops!",
            "mes_example": "<START>\n{{char}}: Rise up, {{user}}!",
            "creator_notes": "Best with a shotgun.",
            "system_prompt": "You are {{char}}. Speak to {{user}} in sermons.",
            "post_history_instructions": "Stay in character as {{char}}.",
            "alternate_greetings": ["Ah, a visitor!"],
            "tags": ["horror"],
            "creator": "tests",
            "character_version": "1.0",
            "extensions": {"talkativeness": "0.5"},
            "nickname": "Grigori",
            "group_only_greetings": [],
            "creation_date": 1700000000,
            "modification_date": 1700000500,
            "character_book": {
                "name": "Ravenholm lore",
                "scan_depth": 3,
                "extensions": {},
                "entries": [
                    {
                        "id": 1,
                        "keys": ["mines"],
                        "content": "LORE-MINES: the old mines under Ravenholm flooded in 1952.",
                        "extensions": {"position": 4, "depth": 2, "role": 0},
                        "enabled": True,
                        "insertion_order": 10,
                        "use_regex": False,
                        "comment": "the mines",
                    },
                    {
                        "id": 2,
                        "keys": [],
                        "content": "LORE-ALWAYS: {{char}} never sleeps.",
                        "extensions": {},
                        "enabled": True,
                        "insertion_order": 5,
                        "use_regex": False,
                        "constant": True,
                        "comment": "constant",
                    },
                ],
            },
            **data,
        },
    }


def picture(color: str = "red", size: tuple[int, int] = (16, 24)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, "PNG")
    return out.getvalue()


def png_card(card: dict[str, Any], *, chunk: str = "ccv3", color: str = "red") -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text(chunk, base64.b64encode(json.dumps(card).encode()).decode())
    out = io.BytesIO()
    Image.new("RGB", (16, 24), color).save(out, "PNG", pnginfo=info)
    return out.getvalue()


def charx_card(card: dict[str, Any], files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("card.json", json.dumps(card))
        for path, data in files.items():
            archive.writestr(path, data)
    return out.getvalue()


def world_info(**entries: dict[str, Any]) -> dict[str, Any]:
    """SillyTavern's world info file; each keyword argument is one entry (uid = position)."""
    return {
        "entries": {
            str(uid): {"uid": uid, "comment": name, "disable": False, "order": 100, **fields}
            for uid, (name, fields) in enumerate(entries.items())
        }
    }


def photo(side: int, *, seed: int = 1) -> bytes:
    """A square JPEG that compresses like a photo: small as a JPEG, large as a PNG (a 4096 px
    one is about 3 MB, and over 20 MB as a PNG)."""
    pixels = random.Random(seed).randbytes(256 * 256 * 3)  # noqa: S311 - a picture, no secret
    noise = Image.frombytes("RGB", (256, 256), pixels)
    out = io.BytesIO()
    noise.resize((side, side), Image.Resampling.BICUBIC).save(out, "JPEG", quality=85)
    return out.getvalue()
