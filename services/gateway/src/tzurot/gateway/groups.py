"""Group channels: who answers a human message, personalities answering each other, and the
turns the gateway schedules (chain replies here, free will in freewill.py).

A *round* is one human message: `plan` picks its speakers (speakers.py) and records the round
on the conversation; the bot answers them one after the other (GenerateRequest.round_id).
When the round's last answer is delivered, `after_delivery` may queue a *chain* reply: another
personality answering the one who just spoke, by the same rules without a forced speaker,
after the channel's cooldown, up to the channel's chain cap. Every human message starts a new
round, so a chain reply still waiting is refused when its turn comes (CHAIN_INTERRUPTED).
The chain's turns are paid by the human whose message started the round.

A scheduled turn (a chain reply, free will) is checked again when it runs: a personality
deactivated since is refused (NOT_ACTIVATED), and so is a free-will turn free will no longer
wants (`free_will_refusal`: FREEWILL_OFF, QUIET_HOURS, STALE); such a turn is dropped here,
its event acknowledged with the reason, so it never comes back whatever the bot does with
the refusal. A scheduled turn is said in public to nobody: its payer only pays (see
service.py `_reply_request` and delivery_flow.py).
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import NoReturn

import structlog

from tzurot.gateway import settings as cascade
from tzurot.gateway.clock import Clock
from tzurot.gateway.domain import (
    Actor,
    GenerateCommand,
    GroupMember,
    Job,
    Location,
    Personality,
    User,
)
from tzurot.gateway.group_store import (
    ActiveMember,
    BotEventRow,
    ChannelState,
    GroupJob,
    GroupStore,
    location_values,
)
from tzurot.gateway.personalities import normalize_alias
from tzurot.gateway.speakers import Member, choose_speakers, seeded_rng
from tzurot.gateway.store import ChannelRound
from tzurot.gateway.store.jobs import TURN_KEY_PREFIX
from tzurot.runtime.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied

log = structlog.get_logger(__name__)

# The settings at a place (a thread's channel level falls back to its parent channel's).
SettingsOf = Callable[[Location], Awaitable[dict[str, cascade.ResolvedSetting]]]
# Why a queued free-will turn must not run now ('' when it may): FreeWill.turn_refusal.
FreeWillRefusal = Callable[[BotEventRow], Awaitable[str]]
# Acknowledges an event as dropped (event id, reason): the outbox's own acknowledgement.
DropEvent = Callable[[str, str], Awaitable[None]]


async def _no_refusal(event: BotEventRow) -> str:
    return ""


@dataclass(frozen=True)
class ScheduledTurn:
    """A turn the gateway queued, resolved into the command Generate runs for it."""

    event: BotEventRow
    command: GenerateCommand
    directive: str


def may_use(personality: Personality, user: User | None) -> bool:
    """Private personalities are usable by their owner and superusers only."""
    if personality.public or user is None:
        return personality.public
    return user.superuser or personality.owner_user_id == user.id


def _member(active: ActiveMember, mine: Mapping[str, str] | None = None) -> Member:
    """The member as the selection sees it; `mine` (the speaker's own aliases, normalized
    alias -> personality id) adds theirs and hides the global aliases they reuse."""
    p = active.activation.personality
    mine = mine or {}
    aliases = [a for a in p.aliases if normalize_alias(a) not in mine]
    aliases += [alias for alias, pid in mine.items() if pid == p.id]
    return Member(p.id, (p.display_name, p.slug, *aliases), active.talkativeness)


class Groups:
    def __init__(
        self,
        store: GroupStore,
        clock: Clock,
        channel_settings: SettingsOf,
        *,
        seed: str = "",
        wake: Callable[[], None] = lambda: None,
        drop_event: DropEvent | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._settings = channel_settings
        # Without a configured seed, each process draws its own (still one per message).
        self._seed = seed or secrets.token_hex(8)
        self._wake = wake
        self._drop_event = drop_event or self._ack_dropped
        # Set by the wiring to FreeWill.turn_refusal (free will is built after the gateway).
        self.free_will_refusal: FreeWillRefusal = _no_refusal

    # ---- a human message ----

    async def plan(
        self, user: User, where: Location, content: str, message_id: str
    ) -> tuple[str, list[Personality]]:
        """The speakers of a new round, in order; ("", []) when nobody is activated here."""
        if not where.channel_id.strip():
            raise InvalidArgument("location.channel_id", "location.channel_id is required")
        if not message_id.strip():
            raise InvalidArgument("message_id", "message_id is required")
        conversation = where.conversation_id
        active = [
            m
            for m in await self._store.members(where.channel_id)
            if may_use(m.activation.personality, user)
        ]
        if not active:
            await self._store.note_human(where, self._clock.now(), interrupt=True)
            return "", []
        state = await self._store.state(conversation)
        settings = await self._settings(where)
        by_id = {m.activation.personality.id: m.activation.personality for m in active}
        mine = await self._store.personal_aliases(user.id)
        picked = choose_speakers(
            [_member(m, mine) for m in active],
            content,
            rng=seeded_rng(self._seed, conversation, message_id),
            max_speakers=int(settings[cascade.GROUP_MAX_SPEAKERS].value),
            last_speaker_id=state.last_speaker_id if state else "",
            from_human=True,
        )
        round_id = f"m:{message_id}"
        speakers = [by_id[m.personality_id] for m in picked]
        await self._store.start_round(
            where, round_id, user.id, [p.id for p in speakers], self._clock.now()
        )
        log.info("group.round", conversation=conversation, speakers=[p.slug for p in speakers])
        return round_id, speakers

    async def note_message(self, command: GenerateCommand) -> None:
        """Any human message: the channel is not quiet; outside a planned round, it also
        interrupts whatever chain was running. A speaker of a planned round is not noted:
        plan() noted its message, and a late speaker of an older round (the bot answers
        messages concurrently) must not replace the newer round."""
        if command.turn_id or command.round_id:
            return
        await self._store.note_human(command.location, self._clock.now(), interrupt=True)

    async def members(self, where: Location) -> tuple[GroupMember, ...]:
        """Everyone activated here when that is a group (two or more); else ()."""
        active = await self._store.members(where.channel_id)
        if len(active) < 2:
            return ()
        return tuple(
            GroupMember(m.activation.personality.id, m.activation.personality.display_name)
            for m in active
        )

    async def record_job(
        self,
        job: Job,
        command: GenerateCommand,
        personality: Personality,
        turn: ScheduledTurn | None,
        *,
        state: ChannelRound | None = None,
    ) -> None:
        """A job of a planned round (or a scheduled turn) is recorded as its group job.
        `state`: the conversation's round as the turn read it (else read here)."""
        conversation = command.location.conversation_id
        if turn is not None:
            if turn.event.round_id:
                await self._store.record_group_job(
                    GroupJob(job.id, conversation, turn.event.round_id, turn.event.depth, True)
                )
            return
        if not command.round_id:
            return
        if state is None:
            read = await self._store.state(conversation)
            state = None if read is None else ChannelRound(read.round_id, read.round_speakers)
        if state is None or state.round_id != command.round_id:
            return
        if personality.id not in state.speakers:
            return
        last = state.speakers[-1] == personality.id
        await self._store.record_group_job(
            GroupJob(job.id, conversation, command.round_id, 0, last)
        )

    # ---- after an answer was posted ----

    async def after_delivery(
        self,
        job: Job,
        message_ids: tuple[str, ...],
        group_job: GroupJob | None,
        *,
        again: bool = False,
    ) -> None:
        """Remembers the last speaker; after a round's last answer, maybe queues a chain reply.

        `group_job`: the job's group round, read with the delivery (None: not in one).

        `again`: the job was delivered before, and this may be the follow-up its delivery
        never finished (its gateway killed between the two: `after_delivery_again`). The chain
        reply is picked as the first time (the same seeded pick) and queued once: its dedup key
        `chain:<conversation>:<round>:<depth>` makes a second queuing a no-op, and a repeat
        runs only while the first's event is surely kept (`after_delivery_again`). The last
        speaker is set again only when nothing can have been said after this answer in the
        conversation: still its round, its round's last answer, and no chain reply queued
        after it before this call (one queued by this call is the first). Otherwise setting it
        would put this older answer's speaker over the one that followed (a later speaker of
        the round, a chain reply), so it is left alone: what followed set it, or will once it
        is delivered.
        """
        if group_job is None:
            return
        conversation = group_job.conversation_id
        if not again:
            await self._store.set_last_speaker(conversation, job.personality_id)
        state = await self._store.state(conversation)
        if state is None or state.round_id != group_job.round_id or not group_job.last_in_round:
            return  # interrupted by a human, or more speakers of this round to come
        queued = await self._queue_chain(job, message_ids, group_job, state)
        if again and queued is not False:
            await self._store.set_last_speaker(conversation, job.personality_id)

    async def after_delivery_again(self, job: Job, within: timedelta) -> None:
        """`after_delivery` of a job delivered before (a confirmation repeated), if it is in a
        group round and was delivered less than `within` ago: see `after_delivery`'s `again`.
        """
        group_job = await self._store.delivered_group_job(job.id, within)
        if group_job is not None:
            await self.after_delivery(job, job.delivered_message_ids, group_job, again=True)

    async def _queue_chain(
        self,
        job: Job,
        message_ids: tuple[str, ...],
        group_job: GroupJob,
        state: ChannelState,
    ) -> bool | None:
        """Queues the chain reply to the round's last answer, if one is wanted: True when it
        was queued now, False when it was queued before (its dedup key), None when none is
        wanted (no payer, the chain's cap, nobody picked)."""
        conversation = group_job.conversation_id
        if state.round_starter_user_id is None:
            return None
        settings = await self._settings(state.location)
        if group_job.depth >= int(settings[cascade.GROUP_CHAIN_CAP].value):
            log.info("group.chain_capped", conversation=conversation, depth=group_job.depth)
            return None
        active = await self._store.members(state.location.channel_id)
        speaker_of = {m.activation.personality.id: m.activation.personality for m in active}
        others = [m for m in active if m.activation.personality.id != job.personality_id]
        picked = choose_speakers(
            [_member(m) for m in others],
            job.content,
            rng=seeded_rng(self._seed, conversation, group_job.round_id, group_job.depth + 1),
            max_speakers=1,
            last_speaker_id=job.personality_id,
            minimum=0,
        )
        if not picked:
            return None
        speaker = speaker_of[picked[0].personality_id]
        previous = speaker_of.get(job.personality_id)
        cooldown = int(settings[cascade.GROUP_CHAIN_COOLDOWN_SECONDS].value)
        depth = group_job.depth + 1
        added = await self._store.add_event(
            {
                **location_values(state.location),
                "kind": "turn",
                "dedup_key": f"chain:{conversation}:{group_job.round_id}:{depth}",
                "personality_id": speaker.id,
                "payer_user_id": state.round_starter_user_id,
                "reason": "chain",
                "round_id": group_job.round_id,
                "depth": depth,
                "reply_to_message_id": message_ids[0] if message_ids else "",
                "directive": chain_directive(
                    previous.display_name if previous else "another personality",
                    speaker.display_name,
                ),
                "available_at": self._clock.now() + timedelta(seconds=cooldown),
            }
        )
        if not added:
            return False
        log.info("group.chain_reply", conversation=conversation, depth=depth, speaker=speaker.slug)
        self._wake()
        return True

    # ---- scheduled turns ----

    async def resolve_turn(
        self, turn_id: str, personality_of: Callable[[str], Awaitable[Personality]]
    ) -> ScheduledTurn:
        """The command a scheduled turn runs as: its payer, its place, its personality; a
        turn no longer wanted is dropped (see the module)."""
        try:
            event = await self._store.event(turn_id)
        except Exception:  # a malformed uuid
            event = None
        if event is None or event.kind != "turn" or event.personality_id is None:
            raise NotFound(f"no scheduled turn {turn_id!r}", reason="TURN_NOT_FOUND")
        if event.round_id:
            state = await self._store.state(event.location.conversation_id)
            if state is None or state.round_id != event.round_id:
                raise FailedPrecondition(
                    "someone spoke since; this reply is no longer wanted",
                    reason="CHAIN_INTERRUPTED",
                )
        active = await self._store.members(event.location.channel_id)
        if all(m.activation.personality.id != event.personality_id for m in active):
            await self._drop(event, "NOT_ACTIVATED", "it is not activated in this channel now")
        if not event.round_id:  # free will
            refused = await self.free_will_refusal(event)
            if refused:
                await self._drop(event, refused, "free will no longer wants this turn")
        payer = (
            None
            if event.payer_user_id is None
            else await self._store.user_by_id(event.payer_user_id)
        )
        if payer is None or payer.deleting:  # their data deletion is under way
            raise PermissionDenied("nobody pays for this turn any more", reason="NO_PAYER")
        personality = await personality_of(event.personality_id)
        command = GenerateCommand(
            actor=Actor(payer.platform_user_id, payer.display_name),
            location=event.location,
            personality=personality.slug,
            content="",
            idempotency_key=f"{TURN_KEY_PREFIX}{event.id}",
            turn_id=event.id,
        )
        return ScheduledTurn(event, command, event.directive)

    async def _drop(self, event: BotEventRow, reason: str, why: str) -> NoReturn:
        """Acknowledges the turn as dropped (it never comes back), then refuses it."""
        await self._drop_event(event.id, reason)
        log.info("group.turn_dropped", turn_id=event.id, reason=reason)
        raise FailedPrecondition(f"this turn is dropped: {why}", reason=reason)

    async def _ack_dropped(self, event_id: str, reason: str) -> None:
        await self._store.ack_event(event_id, (), reason, self._clock.now())


def chain_directive(previous: str, speaker: str) -> str:
    return (
        f"{previous} just spoke (the last message above). As {speaker}, reply to what was "
        "said, in character and briefly, as one voice in this group conversation."
    )
