"""The fake's wire helpers: Discord's JSON answers and reading discord.py's request bodies."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

Json = dict[str, Any]


def iso(ts: float | None = None) -> str:
    return datetime.fromtimestamp(ts if ts is not None else time.time(), UTC).isoformat()


def json_response(
    body: Any, *, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """A JSON answer with Discord's exact content type (discord.py compares it verbatim)."""
    return web.Response(
        body=json.dumps(body).encode(),
        status=status,
        headers={**(headers or {}), "Content-Type": "application/json"},
    )


def not_found(code: int, message: str) -> web.Response:
    return json_response({"code": code, "message": message}, status=404)


@dataclass(frozen=True)
class Upload:
    """One file of a multipart request: its form field (`files[n]`), name, bytes and type."""

    field: str
    filename: str
    data: bytes
    content_type: str


_UPLOADS = web.RequestKey("tzurot_uploads", tuple)
"""The request's files and the list they go to once they are kept (`record_uploads`)."""


def record_uploads(request: web.Request) -> None:
    """Adds the files `read_body_files` read from `request` to their list, once: called where
    a handler keeps them (the message stored or edited, the interaction's response taken),
    before anything is dispatched. A refused request (a 429 that discord.py sends again
    included) and a send deduplicated by its nonce (no message made) never get here."""
    found = request.pop(_UPLOADS, None)
    if found is not None:
        uploads, files = found
        uploads.extend(files)


async def read_body_files(request: web.Request, uploads: list[bytes]) -> tuple[Json, list[Upload]]:
    """The JSON body and the files, also when discord.py sends multipart (`payload_json` +
    files; the files are appended to `uploads` where the handler keeps them, `record_uploads`:
    a refused upload, a 429 that discord.py sends again included, was never uploaded)."""
    if request.content_type.startswith("multipart/"):
        form = await request.post()
        raw: object = form.get("payload_json")
        if isinstance(raw, web.FileField):
            raw = raw.file.read()
        if isinstance(raw, bytes | bytearray):
            raw = raw.decode()
        files: list[Upload] = []
        for name, value in form.items():
            if isinstance(value, web.FileField) and name != "payload_json":
                files.append(Upload(name, value.filename, value.file.read(), value.content_type))
        request[_UPLOADS] = (uploads, [f.data for f in files])
        return (json.loads(str(raw)) if raw is not None else {}), files
    if not request.can_read_body:
        return {}, []
    body: Json = await request.json()
    return body, []


async def read_body(request: web.Request, uploads: list[bytes]) -> tuple[Json, list[bytes]]:
    """The JSON body and the files' bytes (see `read_body_files`)."""
    body, files = await read_body_files(request, uploads)
    return body, [f.data for f in files]


async def read_json_body(request: web.Request, uploads: list[bytes]) -> Json:
    """The JSON body (see `read_body`)."""
    body, _ = await read_body(request, uploads)
    return body
