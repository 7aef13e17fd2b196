"""The discord.py client: sees messages that address a personality and answers as it."""

from __future__ import annotations

import discord
import grpc
import structlog

from tzurot.bot.addressing import candidate_names
from tzurot.bot.splitting import split_message
from tzurot.bot.webhooks import WebhookCache
from tzurot.runtime.errors import from_rpc_error
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw
from tzurot.v1 import gateway_pb2_grpc as gw_grpc

log = structlog.get_logger(__name__)


class TzurotBot(discord.Client):
    def __init__(
        self,
        gateway: gw_grpc.GatewayServiceAsyncStub,
        *,
        generate_timeout: float,
    ) -> None:
        intents = discord.Intents.default()
        intents.message_content = True
        super().__init__(intents=intents)
        self._gateway = gateway
        self._generate_timeout = generate_timeout
        self._webhooks = WebhookCache()

    async def on_ready(self) -> None:
        log.info("bot.ready", user=str(self.user), guilds=len(self.guilds))

    async def on_message(self, message: discord.Message) -> None:
        if message.author.bot or message.webhook_id is not None:
            return
        if not isinstance(message.channel, discord.TextChannel | discord.Thread):
            return
        actor = common.Actor(
            user_id=str(message.author.id), display_name=message.author.display_name
        )
        for name, rest in candidate_names(message.content):
            try:
                reply = await self._gateway.GetPersonality(
                    gw.GetPersonalityRequest(actor=actor, personality=name)
                )
            except grpc.aio.AioRpcError as exc:
                if exc.code() == grpc.StatusCode.NOT_FOUND:
                    continue
                raise
            await self._answer(message, actor, reply.personality, rest)
            return

    async def _answer(
        self,
        message: discord.Message,
        actor: common.Actor,
        personality: common.Personality,
        content: str,
    ) -> None:
        channel = message.channel
        thread = channel if isinstance(channel, discord.Thread) else None
        parent = channel.parent if isinstance(channel, discord.Thread) else channel
        assert isinstance(parent, discord.TextChannel)
        location = common.Location(
            guild_id=str(message.guild.id) if message.guild else "",
            channel_id=str(parent.id),
            thread_id=str(thread.id) if thread else "",
            nsfw_channel=parent.is_nsfw(),
        )
        request = gw.GenerateRequest(
            actor=actor,
            location=location,
            personality=personality.slug,
            content=content,
            idempotency_key=str(message.id),
            message_ids=[str(message.id)],
        )
        hook = await self._webhooks.for_channel(parent)
        job_id, text = "", ""
        try:
            async with channel.typing():
                async for event in self._gateway.Generate(request, timeout=self._generate_timeout):
                    if event.HasField("accepted"):
                        job_id = event.accepted.job_id
                    elif event.HasField("finished"):
                        text = event.finished.content
        except grpc.aio.AioRpcError as exc:
            err = from_rpc_error(exc)
            text = f"{personality.error_message or 'Something went wrong:'} {err.message}"
            job_id = ""
        posted = []
        for piece in split_message(text):
            sent = await hook.send(
                piece,
                username=personality.display_name[:80],
                avatar_url=personality.avatar_url or None,
                thread=thread or discord.utils.MISSING,
                wait=True,
            )
            posted.append(str(sent.id))
        if job_id:
            await self._gateway.ConfirmDelivery(
                gw.ConfirmDeliveryRequest(job_id=job_id, message_ids=posted)
            )
