"""Gateway intents as Discord applies them to what a session receives.

discord-api-docs events/gateway.mdx "Gateway Intents": "If you do not specify an intent when
identifying, you will not receive *any* of the Gateway events associated with that intent";
events not in its list "will always be sent" (READY, RESUMED, INTERACTION_CREATE). A message
event is a guild one (GUILD_MESSAGES, GUILD_MESSAGE_REACTIONS) or, without `guild_id`, a DM one
(DIRECT_MESSAGES, DIRECT_MESSAGE_REACTIONS).

"Message Content Intent": without MESSAGE_CONTENT (1 << 15) an app "will receive empty values in
fields that contain user-inputted content" (resources/message.mdx: `content`, `embeds`,
`attachments`, `components` empty, `poll` omitted), except in messages the app sends, in DMs
with it, in messages that mention it, and in the message a message command is used on (the
interaction's resolved message: interactions are left as they are). A `referenced_message` is
a message of its own and follows the same rule; so is a forward's snapshot (resources/message.mdx
"Message Snapshot Structure": a partial message object, its `content`, `embeds`, `attachments`
and `components` fields included), which has no author: only a DM or a mention of the app
shows it (the forward itself, of no content, mentions nobody).
"""

from __future__ import annotations

from tzurot.testing.fake_discord.wire import Json

GUILDS = 1 << 0
GUILD_MEMBERS = 1 << 1
GUILD_MESSAGES = 1 << 9
GUILD_MESSAGE_REACTIONS = 1 << 10
DIRECT_MESSAGES = 1 << 12
DIRECT_MESSAGE_REACTIONS = 1 << 13
MESSAGE_CONTENT = 1 << 15

_GUILD_EVENTS = {
    "GUILD_CREATE": GUILDS,
    "GUILD_UPDATE": GUILDS,
    "GUILD_DELETE": GUILDS,
    "CHANNEL_CREATE": GUILDS,
    "CHANNEL_UPDATE": GUILDS,
    "CHANNEL_DELETE": GUILDS,
    "THREAD_CREATE": GUILDS,
    "THREAD_UPDATE": GUILDS,
    "THREAD_DELETE": GUILDS,
    "THREAD_LIST_SYNC": GUILDS,
    "THREAD_MEMBER_UPDATE": GUILDS,
    "GUILD_MEMBER_ADD": GUILD_MEMBERS,
    "GUILD_MEMBER_UPDATE": GUILD_MEMBERS,
    "GUILD_MEMBER_REMOVE": GUILD_MEMBERS,
}
_MESSAGE_EVENTS = {  # event: (in a guild, in a DM)
    "MESSAGE_CREATE": (GUILD_MESSAGES, DIRECT_MESSAGES),
    "MESSAGE_UPDATE": (GUILD_MESSAGES, DIRECT_MESSAGES),
    "MESSAGE_DELETE": (GUILD_MESSAGES, DIRECT_MESSAGES),
    "MESSAGE_DELETE_BULK": (GUILD_MESSAGES, GUILD_MESSAGES),
    "MESSAGE_REACTION_ADD": (GUILD_MESSAGE_REACTIONS, DIRECT_MESSAGE_REACTIONS),
    "MESSAGE_REACTION_REMOVE": (GUILD_MESSAGE_REACTIONS, DIRECT_MESSAGE_REACTIONS),
    "MESSAGE_REACTION_REMOVE_ALL": (GUILD_MESSAGE_REACTIONS, DIRECT_MESSAGE_REACTIONS),
    "MESSAGE_REACTION_REMOVE_EMOJI": (GUILD_MESSAGE_REACTIONS, DIRECT_MESSAGE_REACTIONS),
}
_CONTENT_EVENTS = {"MESSAGE_CREATE", "MESSAGE_UPDATE"}


def needed_intent(event: str, data: Json) -> int | None:
    """The intent a session must have identified with to receive `event`, None for events
    that are always sent."""
    if event in _GUILD_EVENTS:
        return _GUILD_EVENTS[event]
    if event in _MESSAGE_EVENTS:
        in_guild, in_dm = _MESSAGE_EVENTS[event]
        return in_guild if data.get("guild_id") else in_dm
    return None


def as_received(event: str, data: Json, intents: int, app_user_id: str) -> Json | None:
    """`data` as a session that identified with `intents` receives it: None when it does not
    receive `event` at all; a message without its content when it lacks MESSAGE_CONTENT."""
    needed = needed_intent(event, data)
    if needed is not None and not intents & needed:
        return None
    if event in _CONTENT_EVENTS and not intents & MESSAGE_CONTENT:
        return without_content(data, app_user_id)
    return data


def shows_content(message: Json, app_user_id: str) -> bool:
    """The exceptions to MESSAGE_CONTENT: the app's own messages (its bot user's, and its
    interaction responses), DMs, and messages that mention it."""
    author = message.get("author") or {}
    own_response = message.get("interaction_metadata") is not None and str(
        message.get("webhook_id")
    ) == str(message.get("application_id"))
    return (
        str(author.get("id")) == app_user_id
        or own_response
        or not message.get("guild_id")
        or any(str(u.get("id")) == app_user_id for u in message.get("mentions") or [])
    )


def without_content(message: Json, app_user_id: str) -> Json:
    """The message as an app without MESSAGE_CONTENT sees it (a copy)."""
    seen = dict(message)
    if not shows_content(message, app_user_id):
        seen.update(content="", embeds=[], attachments=[], components=[])
        seen.pop("poll", None)
    referenced = message.get("referenced_message")
    if referenced:
        # A reply's target is shown by its own rule, in the reply's guild.
        seen["referenced_message"] = _shown_within(message, referenced, app_user_id)
    snapshots = message.get("message_snapshots")
    if snapshots:
        seen["message_snapshots"] = [
            {**snapshot, "message": _shown_within(message, snapshot["message"], app_user_id)}
            for snapshot in snapshots
        ]
    return seen


def _shown_within(message: Json, inner: Json, app_user_id: str) -> Json:
    """`inner` (a reply's target, a forward's snapshot) as `message`'s reader sees it: by its
    own rule, in `message`'s guild."""
    shown = without_content({"guild_id": message.get("guild_id"), **inner}, app_user_id)
    if "guild_id" not in inner:
        shown.pop("guild_id", None)
    return shown
