"""Attachments: images go to inference for vision, audio (voice messages too) to transcription.

Anything too large or of another kind is not sent; the user's text gets a clear note instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import discord

from tzurot.v1 import common_pb2 as common


@dataclass(frozen=True)
class AttachmentLimits:
    max_image_bytes: int = 10 * 1024 * 1024
    max_audio_bytes: int = 25 * 1024 * 1024


def kind_of(content_type: str, filename: str) -> str:
    """ "image", "audio" or "other", from the content type or, lacking one, the extension."""
    ctype = (content_type or "").split(";")[0].strip().lower()
    if ctype.startswith("image/"):
        return "image"
    if ctype.startswith("audio/"):
        return "audio"
    ext = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    if not ctype and ext in {"png", "jpg", "jpeg", "gif", "webp"}:
        return "image"
    if not ctype and ext in {"ogg", "mp3", "wav", "m4a", "opus", "flac"}:
        return "audio"
    return "other"


def to_attachment(a: discord.Attachment) -> common.Attachment:
    return common.Attachment(
        url=a.url, content_type=a.content_type or "", filename=a.filename, size_bytes=a.size
    )


def triage(
    attachments: list[common.Attachment], limits: AttachmentLimits
) -> tuple[list[common.Attachment], list[str]]:
    """(attachments for inference, notes for those left out)."""
    usable: list[common.Attachment] = []
    notes: list[str] = []
    for a in attachments:
        kind = kind_of(a.content_type, a.filename)
        if kind == "other":
            notes.append(f"[{a.filename}: not read; only images and audio are supported]")
            continue
        limit = limits.max_image_bytes if kind == "image" else limits.max_audio_bytes
        if a.size_bytes > limit:
            notes.append(
                f"[{a.filename}: not read; {kind} files up to {limit // (1024 * 1024)} MB are "
                f"supported, this one is {a.size_bytes / (1024 * 1024):.1f} MB]"
            )
            continue
        usable.append(a)
    return usable, notes
