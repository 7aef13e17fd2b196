"""Replies (a Create Message with a `message_reference`), as Discord takes them.

From discord-api-docs resources/message.mdx:

- "Create Message", Limitations: "When creating a message as a reply to another message, the
  current user must have the `READ_MESSAGE_HISTORY` permission" (channels.py checks it) and
  "The referenced message must exist and cannot be a system message."
- "Message Reference Structure": `fail_if_not_exists` is "when sending, whether to error if
  the referenced message doesn't exist instead of sending as a normal (non-reply) message,
  default true". So a reference to a message that does not exist (deleted, or not in the
  channel: "The channel_id and guild_id will be the same as the reply") is refused unless
  `fail_if_not_exists` is false, and then the message is sent without a reference.
  A reference to a system message is refused either way (the flag is about existence).
- "Replies": the reply is of type REPLY (19), its `message_reference` names the message,
  channel and guild, and `referenced_message` holds the message replied to.
- Which messages are not system messages: DEFAULT, REPLY, CHAT_INPUT_COMMAND and
  CONTEXT_MENU_COMMAND, the "basic messages" the same page names for forwards.

The answers are not in the docs; they are Discord's as quoted in public bug reports: 400 50035
Invalid Form Body with `message_reference` errors MESSAGE_REFERENCE_UNKNOWN_MESSAGE "Unknown
message" (TripSit/TripBot issue 997, 2025; earlier REPLIES_UNKNOWN_MESSAGE,
discord-net/Discord.Net issue 2282) and REPLIES_CANNOT_REPLY_TO_SYSTEM_MESSAGE "Cannot reply
to a system message" (discordjs/discord.js issue 6487, NousResearch/hermes-agent PR 1293).
A forward (reference type 1) is made by a user only (`Users.forward`, forwards.py). The bot makes
none: Create Message reads a FORWARD reference as no reply, and so refuses a bot's forward, of no
content of its own, as an empty message (Discord would make it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tzurot.testing.fake_discord.records import Posted
from tzurot.testing.fake_discord.rules import error
from tzurot.testing.fake_discord.wire import Json

DEFAULT, REPLY, CHAT_INPUT_COMMAND, CONTEXT_MENU_COMMAND = 0, 19, 20, 23
REPLYABLE_TYPES = frozenset({DEFAULT, REPLY, CHAT_INPUT_COMMAND, CONTEXT_MENU_COMMAND})
FORWARD = 1


def _reference_error(code: str, message: str) -> Json:
    return error(
        50035,
        "Invalid Form Body",
        message_reference={"_errors": [{"code": code, "message": message}]},
    )


UNKNOWN_REFERENCE = _reference_error("MESSAGE_REFERENCE_UNKNOWN_MESSAGE", "Unknown message")
SYSTEM_MESSAGE_REFERENCE = _reference_error(
    "REPLIES_CANNOT_REPLY_TO_SYSTEM_MESSAGE", "Cannot reply to a system message"
)


@dataclass(frozen=True)
class Reply:
    """What a send's `message_reference` comes to: the message replied to (None: sent as a
    normal message), or Discord's 400 body."""

    target: Posted | None = None
    problem: Json | None = None


def reply_to(reference: object, channel: Json, find: Callable[[int], Posted | None]) -> Reply:
    """The message a send in `channel` replies to, by Discord's rules (`find`: a stored
    message by id)."""
    if not isinstance(reference, dict) or not reference.get("message_id"):
        return Reply()
    if int(reference.get("type") or DEFAULT) == FORWARD:
        return Reply()
    target = find(int(reference["message_id"]))
    if target is None or target.deleted or target.channel_id != int(channel["id"]):
        if reference.get("fail_if_not_exists", True) is False:
            return Reply()  # "sending as a normal (non-reply) message"
        return Reply(problem=UNKNOWN_REFERENCE)
    if int(target.data.get("type") or DEFAULT) not in REPLYABLE_TYPES:
        return Reply(problem=SYSTEM_MESSAGE_REFERENCE)
    return Reply(target=target)


def reply_fields(target: Posted, channel: Json) -> Json:
    """The fields Discord sets on a reply to `target`: `referenced_message` is the target as
    it was (a copy, without its own `referenced_message`: Discord does not nest them)."""
    referenced = {key: value for key, value in target.data.items() if key != "referenced_message"}
    return {
        "type": REPLY,
        "message_reference": {
            "type": DEFAULT,
            "message_id": str(target.id),
            "channel_id": channel["id"],
            "guild_id": channel.get("guild_id"),
        },
        "referenced_message": referenced,
    }


def as_served(posted: Posted, find: Callable[[int], Posted | None]) -> Json:
    """`posted` as Discord serves it later: a reply whose target was deleted since has
    `referenced_message` null (Message Object: "If the field exists but is null, the
    referenced message was deleted")."""
    referenced = posted.data.get("referenced_message")
    if not referenced:
        return posted.data
    target = find(int(referenced["id"]))
    if target is None or target.deleted:
        return {**posted.data, "referenced_message": None}
    return posted.data
