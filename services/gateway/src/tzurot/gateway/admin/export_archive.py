"""The data export's format (privacy.py gathers what goes in it): the files and what each
holds (FILES), every archive's manifest and README, which part carries each audio, image
or CHARX file, and the zip.

Part 1 holds every JSON file and card, and the files that fit beside them; part 2 and on
hold only files the parts before left out, each as many as fit, with a manifest listing
them. The plan is made from the sizes the rows list, in the rows' fixed order, not from the
bytes read: a part holds the same files at every request while the data does not change, so
part 1 can say which part holds each file before any later part is asked for.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

EXPORT_FORMAT = "tzurot-user-export"
EXPORT_VERSION = 1

NEXT_PART_COMMAND = "/settings data export part:{part}"
"""How a user asks for a part (the bot's command), named in each archive's README."""

FILES = {
    "user.json": "your account: Discord id, name, timezone, flags",
    "personas.json": "your personas (the default one, and per personality)",
    "llm_configs.json": "the LLM configs you made",
    "model_overrides.json": "the config you chose per personality",
    "user_models.json": "the config you chose for every personality",
    "personal_aliases.json": "your own aliases for personalities",
    "settings.json": "your settings (yours, and yours per personality)",
    "personalities_owned.json": "the personalities you own, with their aliases; `card_file` "
    "is their V3 character card in cards/ (import it again with /character import), "
    "`pictures` their avatar and card picture (`used_as`), each `file` in pictures/; `charx`, "
    "for one with assets beyond its picture (`assets` lists them), is its CHARX card, `file` "
    "in cards/: import that one to get it back with its assets",
    "messages.json": "every request you sent and its answer (model, usage, what helper models "
    "read of your attachments, the files it carried: `files`); a turn you pay for that "
    "answered nobody (free will, a chain reply: `scheduled`) has no answer here, its text "
    "is the channel's",
    "usage.json": "every paid call made for you",
    "lorebooks.json": "the lorebooks you own, with their entries and where they are attached",
    "voice_samples.json": "the recordings you uploaded to clone voices; `file` is the audio "
    "in voice_samples/",
    "voices_cloned.json": "the voices you cloned (they are in your ElevenLabs account)",
    "free_will.json": "the personalities whose free will you pay for, per conversation",
    "scheduled_turns.json": "the turns scheduled on you (free will, chain replies, greetings) "
    "that have not run yet or ran lately: a turn's record is deleted some days after it ran "
    "(a week unless the operator set TZUROT_BOT_EVENTS_RETENTION_DAYS; a greeting's only once "
    "its personality is no longer activated in that channel)",
    "wallet.json": "which providers hold a key of yours and when it was last used (never a key)",
    "history.json": "the conversation turns of your exchanges (the context personalities see)",
    "memories.json": "what personalities remember about you long-term (facts are tagged "
    "`fact`; a fact replaced by a newer one has `superseded_by`)",
    "memory_modes.json": "your memory modes per personality (incognito, fresh start)",
}
_ENTRY_BYTES = 128  # a stored zip entry's headers beyond its name (local and central)
_LISTING_BYTES = 64  # a later part's manifest line for a file, beyond its path


@dataclass
class Blob:
    """Bytes the archive may carry: the row that lists them (in `listed_in`, a JSON file of
    part 1), where they go, their listed size."""

    row: dict[str, Any]
    listed_in: str
    path: str
    size: int
    read: Callable[[], Awaitable[bytes]]

    def cost(self, size: int | None = None) -> int:
        """What the file adds to an archive (its listed size unless `size` is given): its
        bytes, its zip entry (the name twice, headers) and its line in a later part's
        manifest."""
        name = len(self.path.encode())
        return (self.size if size is None else size) + 3 * name + _ENTRY_BYTES + _LISTING_BYTES


def plan_parts(costs: Sequence[int], first_room: int, later_room: int) -> list[int | None]:
    """The part that carries each file: in order, every file that still fits the first
    part's room goes there; what is left goes to part 2 the same way, and so on. None: a
    file no part has room for."""
    plan: list[int | None] = [None] * len(costs)
    left = list(range(len(costs)))
    part, room = 1, first_room
    while left:
        rest = []
        for index in left:
            if costs[index] <= room:
                plan[index] = part
                room -= costs[index]
            else:
                rest.append(index)
        # An empty later part takes at least the first of these: the loop ends.
        left = [index for index in rest if costs[index] <= later_room]
        part, room = part + 1, later_room
    return plan


def pack(texts: dict[str, bytes], blobs: dict[str, bytes]) -> bytes:
    """A zip: texts deflated, blobs (audio, images: compressed already) stored."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in texts.items():
            archive.writestr(name, text)
        for name, content in blobs.items():
            archive.writestr(name, content, compress_type=zipfile.ZIP_STORED)
    return buffer.getvalue()


def safe_name(name: str) -> str:
    """A file name safe inside the archive: no folders, no dots first, no odd characters."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", name.rsplit("/", 1)[-1]).lstrip(".")
    return cleaned[:100] or "file"


@dataclass(frozen=True)
class Head:
    """What every archive of one export names: whose it is and when it was made."""

    platform_user_id: str
    stamp: datetime

    def manifest(self, part: int, parts: int) -> dict[str, Any]:
        return {
            "format": EXPORT_FORMAT,
            "version": EXPORT_VERSION,
            "created_at": self.stamp.isoformat(),
            "discord_user_id": self.platform_user_id,
            "part": part,
            "parts": parts,
            "next_part": part + 1 if part < parts else None,
        }


def first_texts(
    *,
    data: dict[str, list[dict[str, Any]]],
    cards: dict[str, bytes],
    head: Head,
    parts: int,
    left_out: int,
    too_large: int,
) -> dict[str, bytes]:
    """Part 1's JSON: the manifest, the README, a file per kind of data, the cards."""
    manifest = head.manifest(1, parts) | {"files": FILES, "files_left_out": left_out}
    out = {
        "manifest.json": _json(manifest),
        "README.txt": _readme(1, parts, left_out, too_large).encode(),
    }
    out |= {f"{name}.json": _json(rows) for name, rows in data.items()}
    return out | cards


def later_texts(head: Head, part: int, parts: int, blobs: list[Blob]) -> dict[str, bytes]:
    """A later part's manifest (the files it carries, and which JSON file of part 1 lists
    each) and README."""
    manifest = head.manifest(part, parts) | {
        "files": {blob.path: f"listed in {blob.listed_in} (part 1)" for blob in blobs}
    }
    return {
        "manifest.json": _json(manifest),
        "README.txt": _readme(part, parts, 0, 0).encode(),
    }


def _readme(part: int, parts: int, left_out: int, too_large: int) -> str:
    if part == 1:
        lines = [
            "Everything Tzurot stores about you, as of manifest.json's created_at.",
            f"Format {EXPORT_FORMAT} version {EXPORT_VERSION}: manifest.json lists each file.",
            "",
            *(f"{name}: {about}." for name, about in FILES.items()),
            "cards/: the V3 character card (JSON) of each personality you own; for one with "
            "assets beyond its picture, also its CHARX card (.charx: a zip of card.json and "
            "the assets at their paths), as /character export format:charx gives it. Import "
            "the .charx with /character import to get the personality back with its assets "
            "(the .json alone does not carry them).",
            "pictures/: the avatar and card picture of each personality you own.",
            "voice_samples/, answer_files/: your recordings, and the files answers carried.",
            "",
            "API keys are never exported (wallet.json lists the providers).",
        ]
        if left_out:
            lines.append(
                f"{left_out} audio, image or CHARX files did not fit in this archive (they are "
                'listed with "file": null, and "part" names the part that carries them); '
                "what you uploaded yourself came first."
            )
        if too_large:
            lines.append(
                f"{too_large} of them are larger than one export can carry "
                '("omitted": "too large").'
            )
    else:
        lines = [
            "More of what Tzurot stores about you, as of manifest.json's created_at: the "
            "audio, image and CHARX files earlier parts had no room for.",
            "manifest.json lists them; part 1's JSON files describe each (its row has "
            f'"part": {part} and "part_file", its path here).',
        ]
    lines += ["", f"This is part {part} of {parts} of your export."]
    if part < parts:
        command = NEXT_PART_COMMAND.format(part=part + 1)
        lines.append(f"Get the next part with {command} (in Discord).")
    return "\n".join(lines) + "\n"


def _json(value: Any) -> bytes:
    return json.dumps(value, indent=2, ensure_ascii=False).encode()
