"""Who a Discord message addresses: `@Name`/`@alias` mentions (each answers, in order), else
a reply to one of our webhook messages (its personality, while the gateway still finds it for
the author), else the personality activated in the channel (or the group the gateway plans
for it). A forward names and replies to nobody: only an activation answers it
(tzurot.bot.forwards)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import discord
import structlog

from tzurot.bot.activated import ActivatedChannels
from tzurot.bot.addressing import (
    Addressed,
    PostedAs,
    is_forward,
    may_mention,
    reply_addressee,
    strip_mentions,
)
from tzurot.bot.answers import AnswerBook
from tzurot.bot.config import BotSettings
from tzurot.bot.delivery import channel_key
from tzurot.bot.forwards import shows_nothing
from tzurot.bot.gateway_client import GatewayClient, location_of
from tzurot.bot.known import KnownPersonalities
from tzurot.bot.proxied import reply_embed_target
from tzurot.bot.references import turn_text
from tzurot.bot.webhooks import WebhookPool
from tzurot.v1 import common_pb2 as common

Targets = list[tuple[common.Personality, str]]
Readable = Callable[[discord.Message, int, int], Awaitable[discord.Message | None]]

log = structlog.get_logger(__name__)


class Addressees:
    def __init__(
        self,
        client: discord.Client,
        gateway: GatewayClient,
        webhooks: WebhookPool,
        settings: BotSettings,
        *,
        answers: AnswerBook,
        readable: Readable,
    ) -> None:
        self._client, self._gateway, self._webhooks = client, gateway, webhooks
        self._settings, self._answers, self._readable = settings, answers, readable
        # Per user: the list depends on who asks (their private personalities).
        self._known = KnownPersonalities(
            gateway.personalities, ttl=settings.personality_cache_seconds
        )
        # Where the gateway last answered a personality activated: for the away notice.
        self.activated = ActivatedChannels()

    async def addressed(self, message: discord.Message, actor: common.Actor) -> Targets:
        """Who the message addresses, with the text each gets: mentions, else a reply to one
        of our answers, else the channel's (first) activated personality. A forward showing
        nothing addresses nobody (`forwards.shows_nothing`)."""
        if shows_nothing(message):
            return []
        explicit = await self._explicit(message, actor)
        if explicit:
            return explicit
        active = await self._gateway.activation(location_of(message.channel, message.guild))
        self.activated.note(channel_key(message.channel), activated=active is not None)
        return [(active, turn_text(message))] if active is not None else []

    async def targets(self, message: discord.Message, actor: common.Actor) -> tuple[Targets, str]:
        """Who answers a new message, in order, and its group round: mentions and replies
        first; else the channel's activated personalities as the gateway picks them
        (PlanChannelReply, which also starts the round); else the activated one. A forward
        is answered only there, by the text `references.turn_text` (its snapshot's names are
        not its forwarder's: PlanChannelReply reads none); one showing nothing, by nobody,
        and the gateway is not asked."""
        if shows_nothing(message):
            return [], ""
        explicit = await self._explicit(message, actor)
        if explicit:
            return explicit, ""
        where = location_of(message.channel, message.guild)
        planned = await self._gateway.plan_reply(actor, where, message.content, str(message.id))
        if planned is not None:
            round_id, speakers = planned
            # A round only where a personality is activated (for this user; "" elsewhere).
            self.activated.note(channel_key(message.channel), activated=bool(round_id))
            return [(p, turn_text(message)) for p in speakers], round_id
        return await self.addressed(message, actor), ""

    async def _explicit(self, message: discord.Message, actor: common.Actor) -> Targets:
        content = message.content
        limit = self._settings.max_personalities_per_message
        # The gateway's own first test (no "@", no mention): a plain message costs no call,
        # and does not wait on the gateway to be found unaddressed by name.
        mentions = (
            await self._gateway.resolve_mentions(actor, content, limit) if "@" in content else []
        )
        spans = [(m.personality, m.matched_text, m.offset) for m in mentions]
        if spans:
            stripped = strip_mentions(content, [Addressed(p, t, o) for p, t, o in spans])
            return [(p, stripped) for p, _, _ in spans]
        replied = await self._replied_personality(message, actor)
        if replied is not None:
            return [(replied, content)]
        return []

    async def _replied_personality(
        self, message: discord.Message, actor: common.Actor
    ) -> common.Personality | None:
        """The personality the message replies to (one of our messages), as the gateway finds
        it for `actor` now: None when it is gone or not theirs to use (`reply_addressee`)."""
        posted = await self._replied_to(message, actor)
        if posted is None:
            return None
        found = await self.found_now(posted, actor)
        if found is None:
            log.info("bot.reply_to_unknown_personality", personality_id=posted.personality_id)
        return found

    async def found_now(self, posted: PostedAs, actor: common.Actor) -> common.Personality | None:
        """The personality one of our messages was posted as, as the gateway finds it for
        `actor` now (`reply_addressee`): whom a reply to it addresses, and for whom a 🔄 on it
        generates again. None when it is deleted, being deleted or not theirs to use, alike."""
        if not posted.name:
            return None
        return reply_addressee(posted, await self._gateway.personality(actor, posted.name))

    async def _replied_to(self, message: discord.Message, actor: common.Actor) -> PostedAs | None:
        """Whom the message replies to, when that is one of our webhook messages (a forward
        of one replies to nobody)."""
        ref = message.reference
        target: discord.Message | None = None
        if ref is not None and is_forward(ref):
            return None
        if ref is not None and ref.message_id is not None:
            target_id = ref.message_id
            target = ref.resolved if isinstance(ref.resolved, discord.Message) else None
        elif message.webhook_id is not None and (found := reply_embed_target(message)):
            target_id = found[1]  # a reply made through PluralKit: its reply embed
            target = await self._readable(message, found[0], target_id)
        else:
            return None
        known = self._answers.get(target_id)
        if known is not None:
            posted = known.personality
            return PostedAs(posted.id, posted.slug or posted.display_name)
        if target is None or target.webhook_id is None or not self.is_ours(target):
            return None
        # Posted before this process started: the job that posted it names its personality
        # (a webhook's name is cleaned for Discord and need not be unique); a greeting has no
        # job, only its name.
        shown_as = target.author.display_name
        job = await self._gateway.job_for_message(actor, target_id)
        if job is None:
            return PostedAs("", shown_as)
        slugs = {p.id: p.slug for p in await self._known.usable_by(actor)}
        return PostedAs(job.personality_id, slugs.get(job.personality_id) or shown_as)

    def may_address(self, message: discord.Message) -> bool:
        """Whether the message may have meant a personality, told without the gateway (for
        the gateway-away notice): an '@' that may start a personality's mention (`may_mention`:
        not a Discord ping of a user or role, @everyone/@here, nor an '@' in an e-mail address, a
        link or Discord's code: `tzurot.runtime.mention_starts`), or a reply
        (never a forward) to a message one of our webhooks posted as a personality, or to an
        answer this bot remembers (Discord's reply, or a PluralKit repost's reply embed). Not a
        reply to the bot's own notices or slash-command replies: such a reply addresses
        nobody. And any message not posted by a webhook in a channel the gateway last
        answered as having a personality activated (`activated`): that one answers whatever
        no one else is meant for there. A webhook's post there (a feed, another bot) is
        nobody's plain message; a PluralKit user's is told by their own message, which
        comes before the repost."""
        if may_mention(message.content):
            return True
        if message.webhook_id is None and channel_key(message.channel) in self.activated:
            return True
        ref = message.reference
        if ref is not None and is_forward(ref):
            return False
        if ref is not None and ref.message_id is not None:
            target = ref.resolved
            return self._answers.get(ref.message_id) is not None or (
                isinstance(target, discord.Message) and self._posted_as_personality(target)
            )
        found = reply_embed_target(message) if message.webhook_id is not None else None
        return found is not None and self._answers.get(found[1]) is not None

    def _posted_as_personality(self, message: discord.Message) -> bool:
        """Posted by one of our channel webhooks (as a personality): not the bot's own
        notices (no webhook) nor its slash-command replies (the interaction's webhook, which
        is the application's id)."""
        return (
            message.webhook_id is not None
            and message.webhook_id != self._client.application_id
            and self.is_ours(message)
        )

    def is_ours(self, message: discord.Message) -> bool:
        """Posted by this bot's application (its webhooks carry its application id) or one of
        the webhooks it uses: no API call, and never a webhook created to find out."""
        app_id = self._client.application_id
        return (app_id is not None and message.application_id == app_id) or self._webhooks.owns(
            message.webhook_id
        )
