"""Forwards (a `message_reference` of type FORWARD), as Discord makes them for a user.

From discord-api-docs resources/message.mdx:

- "Message Reference Types": FORWARD (1) is coupled with `message_snapshot`, "a message at a
  point in time". It "can only be used for basic messages": "only messages with type
  `DEFAULT`, `REPLY`, `CHAT_INPUT_COMMAND`, or `CONTEXT_MENU_COMMAND`, and don't support
  messages with a poll, call, or activity" (`forward_problem`).
- "Forwards": the forward holds "an array of `message_snapshot` objects containing a copy of
  the original message", "of note: `author` will be excluded", "Currently we support only 1
  snapshot"; snapshots "are taken the moment a forward message is created, and are
  **immutable**; any mutations to the original message will not be propagated"; the reference
  needs `type`, `message_id` and `channel_id`, and "the requestor must have `VIEW_CHANNEL`
  permissions" (in the source's channel; posting in the target needs what any message needs).
- "Message Snapshot Structure": the copy holds `type`, `content`, `embeds`, `attachments`,
  `timestamp`, `edited_timestamp`, `flags`, `mentions`, `mention_roles`, `stickers`,
  `sticker_items` and `components`; "we currently limit the depth of nesting to 1", which the
  fake reads as: a forward is not forwarded again.
- "Message Flags": HAS_SNAPSHOT (`1 << 14`), "this message has a snapshot (via Message
  Forwarding)".
- "Create Message": "When forwarding a message, only `message_reference` is required": the
  forward has no content, embeds, attachments nor mentions of its own (a comment typed with it
  in Discord's client is a message of its own, sent apart: `say` it).

A snapshot's content follows the MESSAGE_CONTENT intent as a message of its own (intents.py).
What Discord answers a refused forward is not documented: the fake raises `PermissionError` for
what the forwarder may not see or post (as `say`), `ForwardRefused` for the rest.
"""

from __future__ import annotations

import copy

from tzurot.testing.fake_discord.records import Posted
from tzurot.testing.fake_discord.replies import FORWARD, REPLYABLE_TYPES
from tzurot.testing.fake_discord.wire import Json

HAS_SNAPSHOT = 1 << 14
FORWARDABLE_TYPES = REPLYABLE_TYPES
"""DEFAULT, REPLY, CHAT_INPUT_COMMAND and CONTEXT_MENU_COMMAND: the "basic messages"."""
SNAPSHOT_FIELDS = (
    "type",
    "content",
    "embeds",
    "attachments",
    "timestamp",
    "edited_timestamp",
    "flags",
    "mentions",
    "mention_roles",
    "stickers",
    "sticker_items",
    "components",
)
_NOT_FORWARDABLE = ("poll", "call", "activity")


class ForwardRefused(Exception):
    """A forward Discord does not make (what it answers is undocumented)."""


def forward_problem(source: Posted | None) -> str | None:
    """Why `source` cannot be forwarded, else None (who may forward it is the caller's)."""
    if source is None or source.deleted:
        return "10008 Unknown Message"
    if int(source.data.get("type") or 0) not in FORWARDABLE_TYPES:
        return "only basic messages (DEFAULT, REPLY and commands' messages) can be forwarded"
    if any(source.data.get(field) for field in _NOT_FORWARDABLE):
        return "a message with a poll, call or activity cannot be forwarded"
    if source.data.get("message_snapshots"):
        return "snapshots nest one deep: a forward cannot be forwarded"
    return None


def snapshot_of(source: Posted) -> Json:
    """A message snapshot of `source` as it is now: a copy of its documented fields (no
    author), so that a later edit of `source` does not reach it."""
    data = copy.deepcopy(source.data)
    return {"message": {key: data[key] for key in SNAPSHOT_FIELDS if key in data}}


def forward_fields(source: Posted, source_channel: Json) -> Json:
    """What a forward of `source` holds besides a new message's own fields: no content nor
    mentions of its own, the FORWARD reference, the snapshot and HAS_SNAPSHOT."""
    return {
        "type": 0,
        "content": "",
        "mentions": [],
        "mention_roles": [],
        "attachments": [],
        "embeds": [],
        "flags": HAS_SNAPSHOT,
        "message_reference": {
            "type": FORWARD,
            "message_id": str(source.id),
            "channel_id": str(source.channel_id),
            "guild_id": source_channel.get("guild_id"),
        },
        "message_snapshots": [snapshot_of(source)],
    }
