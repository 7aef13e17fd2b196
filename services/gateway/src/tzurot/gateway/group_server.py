"""The RPCs of group channels, free will, the bot event stream and notifications: thin
handlers over groups.py, group_admin.py, freewill.py, events.py and notifications.py."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

from tzurot.gateway import admin_convert as ac
from tzurot.gateway import convert
from tzurot.gateway import greetings as greeting
from tzurot.gateway.admin import Admin, Principal
from tzurot.gateway.admin.base import managed_channel, require_manage_guild
from tzurot.gateway.admin_convert import activation as activation_proto
from tzurot.gateway.admin_server import GatewayAdminServicer
from tzurot.gateway.domain import Personality
from tzurot.gateway.freewill import FreeWill, FreeWillStatus
from tzurot.gateway.greetings import Greetings
from tzurot.gateway.group_admin import GroupAdmin, checked_talkativeness
from tzurot.gateway.group_store import ActiveMember, BotEventRow
from tzurot.gateway.notifications import Notifications
from tzurot.gateway.server import Context
from tzurot.gateway.service import Gateway
from tzurot.gateway.store.previews import UNFINISHED_KIND
from tzurot.gateway.unfinished import names_personality
from tzurot.gateway.wallet import Wallet
from tzurot.runtime.errors import InvalidArgument, NotFound
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

TALKATIVENESS_PATH = "talkativeness"


@dataclass(frozen=True)
class GroupFeatures:
    admin: GroupAdmin
    freewill: FreeWill
    notifications: Notifications
    greetings: Greetings


def _uuid(field: str, value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise InvalidArgument(field, f"{value!r} is not an id") from None


class GatewayGroupServicer(GatewayAdminServicer):
    """GatewayService with everything (admin servicer) plus issue 19's RPCs."""

    def __init__(
        self, gateway: Gateway, wallet: Wallet, admin: Admin, features: GroupFeatures
    ) -> None:
        super().__init__(gateway, wallet, admin)
        self._features = features

    async def _personality(self, name: str, who: Principal) -> Personality:
        if not name.strip():
            raise InvalidArgument("personality", "name the personality")
        if who.user is None:  # the operator sees every personality
            found = await self._gateway.find_personality_for(name, None, operator=True)
            if found is None:
                raise NotFound(f"no personality named {name!r}", reason="PERSONALITY_NOT_FOUND")
            return found
        return await self._gateway.personality_for(name, who.user)

    # ---- group channels ----

    async def PlanChannelReply(
        self, request: gw.PlanChannelReplyRequest, context: Context
    ) -> gw.PlanChannelReplyResponse:
        # As ResolveMentions: their message reaches Generate's refusal (admin/deletions.py).
        user = (await self._who(request, refuse_if_deleting=False)).require_user()
        round_id, speakers = await self._gateway.groups.plan(
            user, convert.location(request.location), request.content, request.message_id
        )
        return gw.PlanChannelReplyResponse(
            round_id=round_id, speakers=[convert.personality(p) for p in speakers]
        )

    async def ListChannelActivations(
        self, request: gw.ListChannelActivationsRequest, context: Context
    ) -> gw.ListChannelActivationsResponse:
        members = await self._features.admin.members(convert.location(request.location), None)
        return gw.ListChannelActivationsResponse(activations=[_activation(m) for m in members])

    async def GetPersonality(
        self, request: gw.GetPersonalityRequest, context: Context
    ) -> gw.GetPersonalityResponse:
        """The admin's answer, with the talkativeness the group store keeps."""
        reply = await super().GetPersonality(request, context)
        reply.personality.talkativeness = await self._gateway.group_store.talkativeness(
            reply.personality.id
        )
        return reply

    async def UpdatePersonality(
        self, request: gw.UpdatePersonalityRequest, context: Context
    ) -> gw.UpdatePersonalityResponse:
        """`talkativeness` (the group store's) is checked first, then written by the admin's
        update with every other field, in its transaction: all of the update, or none of it.
        The personality is found once, as the admin finds it (by id when the request has
        one)."""
        paths = list(request.update_paths)
        if TALKATIVENESS_PATH not in paths:
            return await super().UpdatePersonality(request, context)
        value = checked_talkativeness(request.personality.talkativeness)
        updated = await self._admin.update_personality(
            await self._who(request),
            ac.personality_in(request.personality),
            [p for p in paths if p != TALKATIVENESS_PATH],
            talkativeness=value,
        )
        reply = gw.UpdatePersonalityResponse(personality=convert.personality(updated))
        reply.personality.talkativeness = value
        return reply

    # ---- free will ----

    async def SetFreeWill(
        self, request: gw.SetFreeWillRequest, context: Context
    ) -> gw.SetFreeWillResponse:
        who = await self._who(request)
        user = who.require_user()
        where = convert.location(request.location)
        managed_channel(who, where, request.manage_channels)  # it speaks there for everyone
        personality = await self._personality(request.personality, who)
        status = await self._features.freewill.set(
            user,
            where,
            personality,
            enabled=request.enabled,
            timezone=request.timezone,
            quiet_hours=request.quiet_hours,
            daily_budget=request.daily_budget,
        )
        return gw.SetFreeWillResponse(status=_status(status))

    async def GetFreeWill(
        self, request: gw.GetFreeWillRequest, context: Context
    ) -> gw.GetFreeWillResponse:
        statuses = await self._features.freewill.statuses(convert.location(request.location))
        return gw.GetFreeWillResponse(statuses=[_status(s) for s in statuses])

    # ---- the bot's event stream ----

    async def SubscribeBotEvents(
        self, request: gw.SubscribeBotEventsRequest, context: Context
    ) -> AsyncIterator[gw.SubscribeBotEventsResponse]:
        subscription = self._gateway.events.subscribe(request.shard_id, request.shard_count)
        # The RPC's end (the bot went away, its deadline) releases the claims at once, even
        # while this generator waits to write and is never resumed to run its `finally`.
        context.add_done_callback(lambda _: subscription.end())  # type: ignore[arg-type]  # grpc-stubs declare the callback a private class, not a Protocol; grpc calls any callable
        async with contextlib.aclosing(subscription.events()) as events:
            async for event in events:
                converted = await self._event(event)
                if converted is not None:  # else dropped: nothing for the bot to do
                    yield gw.SubscribeBotEventsResponse(event=converted)

    async def _event(self, event: BotEventRow) -> gw.BotEvent | None:
        where = common.Location(
            guild_id=event.location.guild_id,
            channel_id=event.location.channel_id,
            thread_id=event.location.thread_id,
            nsfw_channel=event.location.nsfw_channel,
        )
        if event.kind == "notice":
            return gw.BotEvent(
                event_id=event.id,
                location=where,
                notice=gw.Notice(kind=event.notice_kind, text=event.text),
            )
        personality = None
        if event.personality_id is not None:
            found = await self._gateway.personality_by_id(event.personality_id)
            personality = None if found is None else convert.personality(found)
        if event.kind == UNFINISHED_KIND:
            unfinished = await self._gateway.unfinished_answer(event)
            if unfinished is None:
                return None
            if not names_personality(unfinished):
                personality = None
            return gw.BotEvent(
                event_id=event.id,
                location=where,
                unfinished=convert.unfinished_answer(unfinished, personality),
            )
        if event.kind == greeting.KIND:
            return gw.BotEvent(
                event_id=event.id,
                location=where,
                greeting=gw.Greeting(
                    personality=personality, text=event.text, index=greeting.index_of(event)
                ),
            )
        return gw.BotEvent(
            event_id=event.id,
            location=where,
            turn=gw.ScheduledTurn(
                turn_id=event.id,
                personality=personality,
                reason=event.reason,
                reply_to_message_id=event.reply_to_message_id,
            ),
        )

    async def AckBotEvent(
        self, request: gw.AckBotEventRequest, context: Context
    ) -> gw.AckBotEventResponse:
        event_id = _uuid("event_id", request.event_id)
        if request.retry_later:  # a passing failure: sent again after a lease, not held
            await self._gateway.events.defer(event_id, request.dropped_reason)
            return gw.AckBotEventResponse()
        await self._gateway.acknowledge_event(
            event_id, list(request.message_ids), request.dropped_reason
        )
        return gw.AckBotEventResponse()

    async def ActivateChannel(
        self, request: gw.ActivateChannelRequest, context: Context
    ) -> gw.ActivateChannelResponse:
        """Activation, then the character's greeting when a conversation starts here."""
        reply = await super().ActivateChannel(request, context)
        where = convert.location(request.location)
        activation = reply.activation
        members = await self._features.admin.members(where, None)
        found = await self._gateway.personality_by_id(activation.personality.id)
        if found is not None:
            queued = await self._features.greetings.activated(
                where,
                found,
                user_id=(await self._who(request)).user_id,
                user_name=request.actor.display_name,
                others_active=any(m.activation.personality.id != found.id for m in members),
                activation_key=activation.activated_at.ToJsonString(),
            )
            if queued is not None:
                self._gateway.events.wake()
        return reply

    # ---- notifications ----

    async def SubscribeNotifications(
        self, request: gw.SubscribeNotificationsRequest, context: Context
    ) -> gw.SubscribeNotificationsResponse:
        who = await self._who(request)
        user = who.require_user()
        require_manage_guild(who, request.manage_guild)
        version = await self._features.notifications.subscribe(
            user, convert.location(request.location)
        )
        return gw.SubscribeNotificationsResponse(version=version)

    async def UnsubscribeNotifications(
        self, request: gw.UnsubscribeNotificationsRequest, context: Context
    ) -> gw.UnsubscribeNotificationsResponse:
        who = await self._who(request)
        who.require_user()
        require_manage_guild(who, request.manage_guild)
        await self._features.notifications.unsubscribe(convert.location(request.location))
        return gw.UnsubscribeNotificationsResponse()

    async def GetChangelog(
        self, request: gw.GetChangelogRequest, context: Context
    ) -> gw.GetChangelogResponse:
        rendered = self._features.notifications.notes(request.version)
        return gw.GetChangelogResponse(
            version=rendered.release.version,
            date=rendered.release.date,
            notes=rendered.release.notes,
            discord_text=rendered.discord_text,
            url=rendered.url,
        )

    async def Announce(self, request: gw.AnnounceRequest, context: Context) -> gw.AnnounceResponse:
        who = await self._who(request)
        count = await self._features.notifications.announce(who.superuser, request.text)
        self._gateway.events.wake()
        return gw.AnnounceResponse(channels=count)


def _activation(member: ActiveMember) -> gw.ChannelActivation:
    proto = activation_proto(member.activation)
    proto.personality.talkativeness = member.talkativeness
    return proto


def _status(s: FreeWillStatus) -> gw.FreeWillStatus:
    return gw.FreeWillStatus(
        location=common.Location(
            guild_id=s.location.guild_id,
            channel_id=s.location.channel_id,
            thread_id=s.location.thread_id,
        ),
        personality=convert.personality(s.personality),
        enabled=s.enabled,
        payer_user_id=s.payer_user_id,
        disabled_reason=s.disabled_reason,
        timezone=s.timezone,
        quiet_hours=s.quiet_hours,
        daily_budget=s.daily_budget,
        used_today=s.used_today,
    )
