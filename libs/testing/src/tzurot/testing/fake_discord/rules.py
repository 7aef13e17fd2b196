"""Discord's limits and validation rules, as the fake enforces them.

Written from discord-api-docs: interactions "receiving-and-responding" (3 s initial response,
15 min token), webhook names ("Create Webhook" and "Usernames and Nicknames"), "Allowed
Mentions Object" (mentions.py), permissions (overwrites in
Discord's order; a private thread only for its members and those with Manage Threads:
topics/threads "Public & Private Threads"), "Create Message" (`nonce` up to 25 characters;
with `enforce_nonce`, a second message by the same author with the same nonce within a few
minutes returns the first and creates nothing), locked and archived threads
(`closed_thread_error`). Rate limits are buckets.py's and rate_limits.py's.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from tzurot.testing.fake_discord.wire import Json

DISCORD_EPOCH_MS = 1_420_070_400_000
API_PREFIX = "/api/v10"
MAX_WEBHOOKS_PER_CHANNEL = 15
MAX_WEBHOOKS_PER_GUILD = 1000
ALL_PERMISSIONS = str((1 << 50) - 1)
# resources/channel.mdx "Channel Types" (DM and GROUP_DM: the private ones, command_access.py).
TEXT, DM, VOICE, GROUP_DM, CATEGORY, NEWS = 0, 1, 2, 3, 4, 5
NEWS_THREAD, THREAD, PRIVATE_THREAD, STAGE, FORUM, MEDIA = 10, 11, 12, 13, 15, 16
THREAD_TYPES = {NEWS_THREAD, THREAD, PRIVATE_THREAD}
# resources/channel.mdx "Channel Types": GUILD_FORUM and GUILD_MEDIA are channels "that can
# only contain threads"; a category only holds channels. A message posted into one directly
# is refused with 50008 "Cannot send messages in a non-text channel" (topics/opcodes-and-
# status-codes.mdx; the status is 400, as Discord answers a post into a forum).
THREAD_ONLY_TYPES = {FORUM, MEDIA}
NO_MESSAGE_TYPES = {CATEGORY, *THREAD_ONLY_TYPES}
# Channels whose webhooks can post (a forum's or a media channel's only into its threads:
# resources/webhook.mdx "Execute Webhook").
WEBHOOK_CHANNEL_TYPES = {TEXT, VOICE, NEWS, STAGE, FORUM, MEDIA}
CONTENT_LIMIT = 2000
USERNAME_LIMIT = 80
AVATAR_URL_LIMIT = 2048
INTERACTION_DEADLINE_SECONDS = 3.0
INTERACTION_TOKEN_SECONDS = 15 * 60
DEFAULT_ATTACHMENT_SIZE_LIMIT = 10 * 1024 * 1024
EPHEMERAL = 1 << 6
SUPPRESS_EMBEDS = 1 << 2
MAX_EMBEDS = 10
# A URL Discord previews: not one wrapped in <...>, which Discord leaves without a preview,
# and not a link to a Discord message (shown as a link to the channel, with no embed).
_PREVIEWED_URL = re.compile(r"(?<!<)\bhttps?://[^\s<>]+")
_MESSAGE_LINK = re.compile(r"^https?://(?:(?:ptb|canary)\.)?discord(?:app)?\.com/channels/")


def link_previews(content: str, flags: int) -> list[Json]:
    """The link embeds Discord adds to a message for the URLs in its content, unless the
    message has the SUPPRESS_EMBEDS flag (Discord unfurls them just after the post; the fake
    adds them at once)."""
    if flags & SUPPRESS_EMBEDS:
        return []
    found = _PREVIEWED_URL.findall(content)
    urls = list(dict.fromkeys(u for u in found if not _MESSAGE_LINK.match(u)))[:MAX_EMBEDS]
    return [{"type": "link", "url": url} for url in urls]


NONCE_LIMIT = 25
NONCE_WINDOW_SECONDS = 120.0  # Discord: "the past few minutes"; the fake keeps the short end


class Permission:
    """The permission bits the bot and the fake care about."""

    ADMINISTRATOR = 1 << 3
    ADD_REACTIONS = 1 << 6
    VIEW_CHANNEL = 1 << 10
    SEND_MESSAGES = 1 << 11
    MANAGE_MESSAGES = 1 << 13
    CONNECT = 1 << 20
    EMBED_LINKS = 1 << 14
    ATTACH_FILES = 1 << 15
    READ_MESSAGE_HISTORY = 1 << 16
    MENTION_EVERYONE = 1 << 17
    USE_EXTERNAL_EMOJIS = 1 << 18
    MANAGE_WEBHOOKS = 1 << 29
    USE_APPLICATION_COMMANDS = 1 << 31
    MANAGE_THREADS = 1 << 34
    SEND_MESSAGES_IN_THREADS = 1 << 38
    SEND_VOICE_MESSAGES = 1 << 46


BOT_ROLE_PERMISSIONS = (
    Permission.VIEW_CHANNEL
    | Permission.SEND_MESSAGES
    | Permission.SEND_MESSAGES_IN_THREADS
    | Permission.MANAGE_WEBHOOKS
    | Permission.READ_MESSAGE_HISTORY
    | Permission.EMBED_LINKS
    | Permission.ATTACH_FILES
    | Permission.ADD_REACTIONS
    | Permission.SEND_VOICE_MESSAGES
)

# Characters Discord drops from names before it checks them (zero-width and non-rendering).
_NON_RENDERING = re.compile(
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e"
    "\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0]"
)


def error(code: int, message: str, **errors: Any) -> Json:
    body: Json = {"code": code, "message": message}
    if errors:
        body["errors"] = errors
    return body


def _form_error(name: str, code: str, message: str) -> Json:
    return error(
        50035, "Invalid Form Body", **{name: {"_errors": [{"code": code, "message": message}]}}
    )


CONTENT_TOO_LONG = _form_error(
    "content", "BASE_TYPE_MAX_LENGTH", f"Must be {CONTENT_LIMIT} or fewer in length."
)
"""A message's `content` over 2000 characters: 50035 with the `errors` tree naming the key that
failed, as reference.mdx "Error Messages" (L38-100) shows Discord's answers."""


def username_error(name: str, *, field_name: str = "username") -> Json | None:
    """Discord's answer body if `name` is refused as a webhook's name, else None.

    resources/webhook.mdx "Create Webhook": a webhook name is valid if it "does not contain
    the substrings `clyde` or `discord` (case-insensitive)" and "follows the nickname
    guidelines in the Usernames and Nicknames documentation, with an exception that webhook
    names can be up to 80 characters". resources/user.mdx "Usernames and Nicknames": some
    zero-width and non-rendering characters are limited, names are "sanitized and trimmed of
    leading, trailing, and excessive internal whitespace", nicknames are 1-32 characters (so
    1-80 here). What that page enforces "additionally ... for usernames" (no `@`, `#`, `:`,
    three backticks or `discord`; not `everyone` or `here`) is not for nicknames, so not for
    webhook names.

    Execute Webhook's `username` ("override the default username of the webhook") has no
    rules of its own in the docs: it is the webhook's name for one message, so the same rules
    apply (Discord answers a `username` with "discord" in it so: USERNAME_INVALID_CONTAINS,
    as quoted in Discord-MC-Chat issue 286 and raycast/extensions issue 27576)."""
    shown = " ".join(_NON_RENDERING.sub("", name).split())
    lowered = shown.casefold()
    if not 1 <= len(shown) <= USERNAME_LIMIT or len(name) > USERNAME_LIMIT:
        return _form_error(
            field_name, "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 80 in length."
        )
    for word in ("clyde", "discord"):
        if word in lowered:
            return _form_error(
                field_name, "USERNAME_INVALID_CONTAINS", f'Username cannot contain "{word}"'
            )
    return None


def valid_username(name: str) -> bool:
    """Discord's rules for webhook names (and a webhook message's `username`)."""
    return username_error(name) is None


def avatar_url_error(url: object) -> Json | None:
    """Discord refuses an `avatar_url` that is not a well formed http(s) URL."""
    if url is None:
        return None
    text = str(url)
    parts = urlsplit(text)
    if (
        parts.scheme not in {"http", "https"}
        or not parts.hostname
        or len(text) > AVATAR_URL_LIMIT
        or any(c.isspace() for c in text)
    ):
        return _form_error("avatar_url", "URL_TYPE_INVALID_URL", "Not a well formed URL.")
    return None


# ---- permissions ----


def permissions_in(guild: Json, channel: Json, member_id: int, member_roles: Iterable[int], *,
                   parent: Json | None = None, granted: int = 0) -> int:  # fmt: skip
    """Discord's computation: base from @everyone and the member's roles (`granted`: more
    bits, as from a role the fake does not name), then the channel's overwrites (@everyone,
    roles, member). Threads take their parent's overwrites."""
    if str(guild.get("owner_id")) == str(member_id):
        return (1 << 50) - 1
    roles = {int(r["id"]): r for r in guild["roles"]}
    everyone_id = int(guild["id"])
    base = int(roles[everyone_id]["permissions"]) | granted
    mine = {int(r) for r in member_roles}
    for role_id in mine:
        if role_id in roles:
            base |= int(roles[role_id]["permissions"])
    if base & Permission.ADMINISTRATOR:
        return (1 << 50) - 1
    source = parent if channel.get("type") in THREAD_TYPES and parent is not None else channel
    overwrites = {int(o["id"]): o for o in source.get("permission_overwrites") or []}
    perms = base
    if everyone_id in overwrites:
        perms = (perms & ~int(overwrites[everyone_id]["deny"])) | int(
            overwrites[everyone_id]["allow"]
        )
    allow = deny = 0
    for role_id in mine:
        if role_id in overwrites:
            allow |= int(overwrites[role_id]["allow"])
            deny |= int(overwrites[role_id]["deny"])
    perms = (perms & ~deny) | allow
    if member_id in overwrites:
        perms = (perms & ~int(overwrites[member_id]["deny"])) | int(overwrites[member_id]["allow"])
    if not perms & Permission.VIEW_CHANNEL:
        return 0
    return perms


# ---- locked and archived threads ----

THREAD_ARCHIVED, THREAD_LOCKED = 50083, 160005


def closed_thread_error(
    channel: Json, *, editing: bool, manage_threads: bool = False, webhook: bool = False
) -> Json | None:
    """Discord's answer body when a message may not be posted (`editing`: edited) in
    `channel` because it is a locked or archived thread, else None. `manage_threads`: the
    sender has Manage Threads; `webhook`: the sender is a webhook (it has no permissions).

    discord-api-docs topics/threads.mdx, "Locked Threads": users, bot users included,
    without Manage Threads "won't be able to create or update messages in locked threads";
    "Active & Archived Threads": "Users cannot edit messages ... in archived threads",
    "Sending a message will automatically unarchive the thread, unless the thread has been
    locked by a moderator", and only Manage Threads unarchives a locked thread. Codes:
    topics/opcodes-and-status-codes.mdx, 50083 (an operation on an archived thread, "such as
    editing a message") and 160005 (Thread is locked).

    - An edit in an archived thread: 50083, for anyone (webhooks too).
    - A post in a thread both archived and locked, without Manage Threads (a webhook has
      none): 50083, as Discord answers there (discord-api-docs issues #6884 and #7707: "Thread
      is archived", 50083, for a thread a moderator locked).
    - A post or an edit in a locked thread that is active, without Manage Threads: 160005.
      Not for a webhook: the docs name users and bot users only, and whether Discord refuses
      a webhook's message there is not documented (nor found in discord-api-docs' issues), so
      the fake refuses only what the docs state and lets it through.
    - A post in an archived thread that is not locked is taken and unarchives the thread
      (the caller does that; Execute Webhook's `thread_id`: "The thread will automatically be
      unarchived").

    The HTTP status is not documented: 403, as Discord answered 50083 in those issues; 160005
    gets 403 as well (an assumption)."""
    if channel.get("type") not in THREAD_TYPES:
        return None
    meta = channel.get("thread_metadata") or {}
    archived, locked = bool(meta.get("archived")), bool(meta.get("locked"))
    if archived and (editing or (locked and not manage_threads)):
        return error(THREAD_ARCHIVED, "Thread is archived")
    if locked and not manage_threads and not webhook:
        return error(THREAD_LOCKED, "Thread is locked")
    return None


def nonce_error(nonce: object) -> Json | None:
    """Create Message's `nonce`: an integer or a string of at most 25 characters."""
    if nonce is None or (isinstance(nonce, int) and not isinstance(nonce, bool)):
        return None
    if isinstance(nonce, str) and len(nonce) <= NONCE_LIMIT:
        return None
    return _form_error("nonce", "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
