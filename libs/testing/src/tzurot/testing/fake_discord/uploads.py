"""Discord's upload limits, as the fake enforces them on messages the bot or its webhooks send
or edit (discord-api-docs: reference.mdx "Uploading Files", resources/message.mdx "Create
Message").

- The limit applies to each file ("The file upload size limit applies to each file in a
  request"): 10 MiB by default, more in a boosted server. By premium tier: 10, 10, 50, 100
  MiB (the docs name no numbers; these are discord.py's `Guild.filesize_limit` since
  Discord's default went to 10 MiB in January 2025, tier 1 keeping the default). A test may
  set any guild's limit (`DiscordState.filesize_limits`).
- Create Message only: "The maximum request size when sending a message is **25 MiB**",
  files and JSON together. No other route the fake serves documents a total per request
  (Execute Webhook, Edit Webhook Message, Edit Message name only the per-file limit), so
  there a request may hold up to 10 files each within the guild's limit.
- Too large, either way: 413 with code 40005 "Request entity too large".
- A message has at most 10 attachments: more is an invalid form body (50035).
- An attachment's `description` (alt text) is at most 1024 characters (resources/message.mdx
  "Attachment Request Structure", L682): more is 50035 at `attachments.n.description`.
"""

from __future__ import annotations

from collections.abc import Sequence

from tzurot.testing.fake_discord.rules import error
from tzurot.testing.fake_discord.wire import Json

MIB = 1024 * 1024
FILESIZE_LIMITS = {0: 10 * MIB, 1: 10 * MIB, 2: 50 * MIB, 3: 100 * MIB}
"""Bytes per file, by the guild's premium (boost) tier."""
MAX_REQUEST_BYTES = 25 * MIB
"""A Create Message request, files and JSON together."""
MAX_ATTACHMENTS = 10
DESCRIPTION_LIMIT = 1024
MAX_BODY_BYTES = MAX_ATTACHMENTS * max(FILESIZE_LIMITS.values()) + MIB
"""The largest body the fake reads: a message's 10 files at the top tier's limit, and JSON."""
TOO_LARGE = error(40005, "Request entity too large")
TOO_MANY_ATTACHMENTS = error(
    50035,
    "Invalid Form Body",
    attachments={
        "_errors": [{"code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 10 or fewer in length."}]
    },
)


def too_large(
    request_bytes: int, files: Sequence[bytes], filesize_limit: int, *, capped: bool
) -> bool:
    """Whether Discord answers 413: a file over the limit, or (`capped`: a Create Message)
    the request over 25 MiB."""
    over_cap = capped and request_bytes > MAX_REQUEST_BYTES
    return over_cap or any(len(f) > filesize_limit for f in files)


def attachments_error(attachments: Sequence[Json]) -> Json | None:
    """A message's attachments after a send or an edit: at most 10."""
    return TOO_MANY_ATTACHMENTS if len(attachments) > MAX_ATTACHMENTS else None


def description_problems(body: Json) -> list[tuple[tuple[str | int, ...], str, str]]:
    """The `attachments` entries of a send or an edit whose `description` is too long: each
    as (path, Discord's code, message)."""
    found: list[tuple[tuple[str | int, ...], str, str]] = []
    attachments = body.get("attachments")
    for n, meta in enumerate(attachments if isinstance(attachments, list) else []):
        described = meta.get("description") if isinstance(meta, dict) else None
        if isinstance(described, str) and len(described) > DESCRIPTION_LIMIT:
            too_long = f"Must be {DESCRIPTION_LIMIT} or fewer in length."
            found.append((("attachments", n, "description"), "BASE_TYPE_MAX_LENGTH", too_long))
    return found


def description_error(body: Json) -> Json | None:
    """Discord's 400 body (50035) for an attachment `description` over 1024, else None."""
    tree: Json = {}
    for path, code, message in description_problems(body):
        node = tree
        for key in path:
            node = node.setdefault(str(key), {})
        node.setdefault("_errors", []).append({"code": code, "message": message})
    return error(50035, "Invalid Form Body", **tree) if tree else None
