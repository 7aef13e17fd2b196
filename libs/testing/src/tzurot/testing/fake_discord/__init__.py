"""A fake Discord at the protocol level: the REST routes the bot uses and a gateway websocket.

The real discord.py client is pointed at it through its own seams: `discord.http.Route.BASE`
(every REST call, webhooks and interaction callbacks included) and the gateway URL the REST
`/gateway/bot` answer gives. Frames are plain JSON text (discord.py decompresses only binary
frames). A test plays the users (`say`, `forward`, `slash`, `submit_modal`, `react`) and
reads what the bot did from the records (`messages`, `interactions`, `synced_commands`,
`typing`).

Events are routed to the shard that owns the guild (`(guild_id >> 22) % shard_count`), as
Discord does, so several bot processes can be tested against one fake.

Modules: `state` (the world and the records), `gateway` (the websocket; a late heartbeat
closes the connection), `users` (a test playing Discord's users), `rest` (the REST routes,
authentication and the global rate limit), `rules` (Discord's limits and validation),
`mentions` (`allowed_mentions` and pings), `buckets` and `rate_limits` (the global limit, per
route buckets, Discord's 429s), `embeds` (embed limits), `replies` (a message's
`message_reference`), `forwards` (a user's forward: its snapshot, what cannot be
forwarded), `modals` (a modal and its text inputs), `application_commands` and
`command_rules` (registering commands, refused as Discord does), `slash_options` (the slash
commands a user can send: only what the registered command takes, else InvalidSlashCommand),
`command_access` (who may run a command, and where: `default_member_permissions`, the
server's command permissions, `contexts` and DMs, `nsfw`; else CommandUnavailable),
`uploads` (upload limits: per file by boost tier, per Create Message request, attachments per
message, alt text),
`webhook_admin` and `webhooks` (managing webhooks, and posting through them), `pluralkit`
(PluralKit's API), `server` (`FakeDiscord`, the app serving it all).
"""

from tzurot.testing.fake_discord.command_access import CommandUnavailable
from tzurot.testing.fake_discord.forwards import ForwardRefused
from tzurot.testing.fake_discord.pluralkit import FakePluralKit
from tzurot.testing.fake_discord.records import FakeInteraction, Posted
from tzurot.testing.fake_discord.rules import (
    ALL_PERMISSIONS,
    API_PREFIX,
    DISCORD_EPOCH_MS,
    FORUM,
    MAX_WEBHOOKS_PER_CHANNEL,
    MEDIA,
    TEXT,
    THREAD,
)
from tzurot.testing.fake_discord.server import FakeDiscord
from tzurot.testing.fake_discord.slash_options import InvalidSlashCommand
from tzurot.testing.fake_discord.wire import Json

__all__ = [
    "ALL_PERMISSIONS",
    "API_PREFIX",
    "DISCORD_EPOCH_MS",
    "FORUM",
    "MAX_WEBHOOKS_PER_CHANNEL",
    "MEDIA",
    "TEXT",
    "THREAD",
    "CommandUnavailable",
    "FakeDiscord",
    "FakeInteraction",
    "FakePluralKit",
    "ForwardRefused",
    "InvalidSlashCommand",
    "Json",
    "Posted",
]
