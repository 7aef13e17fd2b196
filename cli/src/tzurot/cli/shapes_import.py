"""`tzurot import shapes <folder>`: a shapes.inc backup of one personality, through the
gateway's ImportShapes and ImportShapesMemories (operators only).

The folder's JSON files are recognised by their shape (file names differ between backup
tools): the configuration (an object with `username` and shapes.inc fields), the memory
summaries (a list of objects with `result`), the chat history (a list of objects with
`role` and `content`). Each can also be given by path. The avatar is downloaded here and
sent along; when it cannot be fetched the gateway keeps its URL. Memories go in batches,
with a progress bar; then the chat history (ImportShapesHistory), in time order, in batches
cut only where a user message follows an answer (so an exchange is never split, whatever
the batch size); a re-run imports nothing twice.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from tzurot.cli import avatar_download
from tzurot.v1 import gateway_pb2 as gw
from tzurot.v1 import gateway_pb2_grpc as gw_grpc

Kind = Literal["config", "memories", "history"]
BATCH = 50
HISTORY_BATCH = 500
MAX_AVATAR_BYTES = 8 * 1024 * 1024
_CONFIG_MARKERS = ("jailbreak", "engine_model", "user_prompt", "personality_traits", "stm_window")


class BackupError(Exception):
    """The folder is not a usable backup; the message says why, in one line."""


def kind_of(document: Any) -> Kind | None:
    """Which shapes.inc document this is, or None."""
    if isinstance(document, dict):
        if "username" in document and any(k in document for k in _CONFIG_MARKERS):
            return "config"
        return None
    if isinstance(document, list):
        items = [item for item in document[:20] if isinstance(item, dict)]
        if items and all("result" in i and ("senders" in i or "metadata" in i) for i in items):
            return "memories"
        if items and all("role" in i and "content" in i for i in items):
            return "history"
    return None


@dataclass
class Backup:
    config: bytes
    memories: list[Any] = field(default_factory=list)
    history: list[Any] = field(default_factory=list)
    sources: dict[str, Path] = field(default_factory=dict)


def _load(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BackupError(f"{path} is not readable JSON: {exc}") from None
    except RecursionError:
        raise BackupError(f"{path} is nested too deeply to be a backup") from None
    except ValueError:  # an integer over Python's limit of digits
        raise BackupError(f"{path} holds a number too large to read") from None


def read_backup(
    folder: Path | None,
    *,
    config: Path | None = None,
    memories: Path | None = None,
    history: Path | None = None,
) -> Backup:
    found: dict[str, Path] = {}
    if folder is not None:
        if not folder.is_dir():
            raise BackupError(f"{folder} is not a folder")
        for path in sorted(folder.glob("*.json")):
            kind: str | None = kind_of(_load(path))
            if kind is None:
                continue  # notes, other tools' files: not part of the backup
            if kind in found:
                raise BackupError(
                    f"both {found[kind].name} and {path.name} look like the {kind}; "
                    f"name one with --{kind}"
                )
            found[kind] = path
    for kind, given in (("config", config), ("memories", memories), ("history", history)):
        if given is not None:
            found[kind] = given
    if "config" not in found:
        raise BackupError("no configuration found (a JSON object with username and jailbreak …)")
    backup = Backup(config=found["config"].read_bytes(), sources=found)
    for kind in ("memories", "history"):
        if kind in found:
            document = _load(found[kind])
            if not isinstance(document, list):
                raise BackupError(f"{found[kind]} should hold a JSON list of {kind}")
            setattr(backup, kind, document)
    return backup


def read_user_map(path: Path | None) -> dict[str, str]:
    """shapes.inc user UUID -> Discord user id, from a JSON or YAML mapping."""
    if path is None:
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise BackupError(f"{path} is not a readable mapping: {exc}") from None
    if not isinstance(data, dict):
        raise BackupError(f"{path} must map shapes.inc user ids to Discord user ids")
    return {str(k): str(v) for k, v in data.items() if v is not None}


def download_avatar(
    url: str, *, timeout: float = 15.0, allow: frozenset[str] = frozenset()
) -> tuple[bytes, str]:
    """The image at `url`, or (b"", "") when it cannot be fetched (the URL is kept then):
    under inference's rules for user-chosen URLs (avatar_download.py: public addresses only,
    redirects checked again, one deadline for the whole download)."""
    try:
        data, kind = avatar_download.download(
            url, timeout=timeout, max_bytes=MAX_AVATAR_BYTES, allow=allow
        )
    except avatar_download.Refused:
        return b"", ""
    if not kind.startswith("image/"):
        return b"", ""
    return data, kind


@dataclass
class ImportSummary:
    slug: str = ""
    created: bool = False
    warnings: list[str] = field(default_factory=list)
    settings: list[str] = field(default_factory=list)
    avatar: str = ""
    imported: int = 0
    skipped: int = 0
    mapped: int = 0
    shared: int = 0
    split: int = 0
    """Summaries longer than a memory may hold, each stored as several memories."""
    split_parts: int = 0
    history_messages: int = 0
    history_exchanges: int = 0
    history_skipped: int = 0
    history_channel: str = ""


def history_batches(history: Sequence[Any], size: int) -> list[list[Any]]:
    """The messages in time order, in batches of about `size`, cut only before a user message
    that follows an assistant message (a batch never splits an exchange)."""
    ordered = [
        item
        for _, item in sorted(
            enumerate(history),
            key=lambda pair: (_stamp(pair[1]), pair[0]),
        )
    ]
    batches: list[list[Any]] = []
    current: list[Any] = []
    for item in ordered:
        role = item.get("role") if isinstance(item, dict) else None
        previous = current[-1].get("role") if current and isinstance(current[-1], dict) else None
        if len(current) >= size and role == "user" and previous == "assistant":
            batches.append(current)
            current = []
        current.append(item)
    if current:
        batches.append(current)
    return batches


def _stamp(item: Any) -> float:
    value = item.get("timestamp") if isinstance(item, dict) else None
    try:
        return float(value) if value is not None else 0.0
    except (TypeError, ValueError):
        return 0.0


async def import_shapes(  # the command's options
    stub: gw_grpc.GatewayServiceAsyncStub,
    backup: Backup,
    *,
    user_map: Mapping[str, str],
    aliases: Sequence[str] = (),
    owner: str = "",
    dry_run: bool = False,
    batch: int = BATCH,
    history_channel: str = "",
    history_batch: int = HISTORY_BATCH,
    fetch: Callable[[str], tuple[bytes, str]] = download_avatar,
    progress: Callable[[int, int], None] = lambda done, total: None,
    history_progress: Callable[[int, int], None] = lambda done, total: None,
) -> ImportSummary:
    summary = ImportSummary(history_messages=len(backup.history))
    try:
        config = json.loads(backup.config.decode("utf-8-sig"))
    except (ValueError, RecursionError):  # the gateway names what is wrong with it
        config = {}
    avatar, avatar_type = (b"", "")
    url = str(config.get("avatar") or "") if isinstance(config, dict) else ""
    if url and not dry_run:
        avatar, avatar_type = await asyncio.to_thread(fetch, url)
    summary.avatar = "downloaded" if avatar else ("kept as URL" if url else "none")
    done = await stub.ImportShapes(
        gw.ImportShapesRequest(
            config=backup.config,
            aliases=list(aliases),
            avatar=avatar,
            avatar_content_type=avatar_type,
            owner_user_id=owner,
            dry_run=dry_run,
        )
    )
    slug = done.personality.slug or str(config.get("username", "")).strip().lower()
    summary.slug, summary.created = slug, done.created
    summary.warnings, summary.settings = list(done.warnings), list(done.settings)
    total = len(backup.memories)
    progress(0, total)
    for start in range(0, total, batch):
        chunk = backup.memories[start : start + batch]
        result = await stub.ImportShapesMemories(
            gw.ImportShapesMemoriesRequest(
                personality=slug,
                memories=json.dumps(chunk).encode("utf-8"),
                user_map=dict(user_map),
                dry_run=dry_run,
            )
        )
        summary.imported += result.imported
        summary.skipped += result.skipped
        summary.mapped += result.mapped
        summary.shared += result.shared
        summary.split += result.split
        summary.split_parts += result.split_parts
        progress(min(start + batch, total), total)
    done_messages, total_messages = 0, len(backup.history)
    history_progress(0, total_messages)
    for chunk in history_batches(backup.history, history_batch):
        stored = await stub.ImportShapesHistory(
            gw.ImportShapesHistoryRequest(
                personality=slug,
                history=json.dumps(chunk).encode("utf-8"),
                user_map=dict(user_map),
                channel_id=history_channel,
                dry_run=dry_run,
            )
        )
        summary.history_exchanges += stored.exchanges
        summary.history_skipped += stored.skipped
        summary.history_channel = stored.channel_id
        done_messages += len(chunk)
        history_progress(done_messages, total_messages)
    return summary
