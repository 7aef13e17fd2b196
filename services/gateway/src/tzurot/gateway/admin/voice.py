"""Voice use-cases: a personality's voice, a user's choice and limit, speaking a delivered
answer, and cloning a voice from uploaded samples (rules in tzurot.gateway.voice).

Speech is recorded in usage_log the moment the provider accepts the text (inference's
SpeechBilled), as failed until the audio is whole: what breaks off after that was paid for.
One clone at a time per personality; a newer clone by the same user deletes her earlier ones
for it from her ElevenLabs account (a plan holds few voices; voice_clones remembers them,
also one replaced or removed by hand), never a voice id a personality still stores; before
it, the clones marked for the personality whose answer was lost go too (lost_clones.py: never a
voice id a personality stores, decided under the voice id's lock; inference only marks them).
A speech spoken in a stand-in voice for the user who cloned the personality's voice says so
(`own_clone_missing`): her clone is gone from her ElevenLabs account, and she can clone it again.
A speech or a clone paid by the user's key marks it used; one the provider refused the key
for marks it inactive at once (`KeyUses.refused`), as an answer does.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import replace
from datetime import datetime

import structlog

from tzurot.audio import AudioError, AudioTooLong, probe
from tzurot.gateway.admin.base import AdminBase, Principal
from tzurot.gateway.admin.lost_clones import delete_lost_clones
from tzurot.gateway.clone_locks import CLONE_IN_PROGRESS, CloneLocks, CloneStart
from tzurot.gateway.document_work import HeldSlot, document_slot
from tzurot.gateway.domain import ConfigSource, Job, JobStatus, Personality, User
from tzurot.gateway.gateway_core import user_data_deleting
from tzurot.gateway.ids import is_uuid
from tzurot.gateway.ports import Speech
from tzurot.gateway.settings import VOICE_MAX_CHARACTERS, VOICE_MODE, channel_ids, validate
from tzurot.gateway.voice import (
    ELEVENLABS,
    MAX_SAMPLE_BYTES,
    MAX_SAMPLE_SECONDS,
    MAX_SAMPLES,
    SAMPLE_FORMATS,
    SpeechBilled,
    SpeechDone,
    Voice,
    VoiceSample,
    character_limit,
    check_speech_provider,
    cut_for_speech,
    spoken_limit,
    user_chose,
    validate_voice,
)
from tzurot.gateway.voice_store import VoiceStore
from tzurot.runtime.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    TzurotError,
    quoted,
)

log = structlog.get_logger(__name__)

_ENABLE, _DISABLE, _RESET = "enable", "disable", "reset"


class VoiceAdmin(AdminBase):
    @property
    def _voices(self) -> VoiceStore:
        return VoiceStore(self._store.engine)

    def _speech_port(self) -> Speech:
        if self._speech is None:
            raise FailedPrecondition("voice is not wired here", reason="VOICE_UNAVAILABLE")
        return self._speech

    # ---- a personality's voice ----

    async def set_personality_voice(
        self, who: Principal, name: str, voice: Voice | None
    ) -> Voice | None:
        """Sets (or, with None, removes) the voice; owner or superuser. Its provider is one
        inference says speaks (its ListProviders, cached; an older inference's names but the
        chat providers); while inference cannot answer, only ElevenLabs or OpenAI
        (`check_speech_provider`)."""
        target = await self._owned(name, who)
        if voice is None:
            await self._voices.delete_voice(target.id)
            return None
        validate_voice(voice)
        listed = await self._providers.listed()
        check_speech_provider(
            voice.provider, listed.names, answered=listed.answered, speech=listed.speech
        )
        await self._voices.put_voice(target.id, voice)
        return await self._voices.voice(target.id)

    async def personality_voice(self, who: Principal, name: str) -> Voice | None:
        return await self._voices.voice((await self._personality(name, who)).id)

    # ---- the user's choice ----

    async def set_voice_preference(
        self, who: Principal, choice: str, character_limit_value: int
    ) -> tuple[str, int]:
        """Writes the user's level: choice enable/disable/reset ("" leaves it), the limit
        (0 leaves it, -1 resets it). Returns (choice in force, limit in force)."""
        user = who.require_user()
        ids = {"user_id": user.id}
        if choice == _ENABLE:
            await self._db.set_setting(ConfigSource.USER, ids, VOICE_MODE, "always")
        elif choice == _DISABLE:
            await self._db.set_setting(ConfigSource.USER, ids, VOICE_MODE, "off")
        elif choice == _RESET:
            await self._db.reset_setting(ConfigSource.USER, ids, VOICE_MODE)
        if character_limit_value == -1:
            await self._db.reset_setting(ConfigSource.USER, ids, VOICE_MAX_CHARACTERS)
        elif character_limit_value:
            value = validate(VOICE_MAX_CHARACTERS, character_limit_value)
            await self._db.set_setting(ConfigSource.USER, ids, VOICE_MAX_CHARACTERS, value)
        settings = await self._gateway.resolved_settings(user, None, None)
        return user_chose(settings), character_limit(settings, self._voice_max_characters)

    # ---- speaking a delivered answer ----

    async def speak_answer(
        self, who: Principal, *, job_id: str = "", message_id: str = ""
    ) -> AsyncGenerator[bytes | SpeechDone, None]:
        """The voice message of a delivered answer: its bytes in chunks, then SpeechDone.

        By job id only its own user (or a superuser) may; by message id (the Speak menu)
        anyone who sees the message, paying with their own key.
        """
        user = who.require_user()
        job, voice, text = await self._to_speak(user, job_id, message_id)
        async for event in self._synthesize(user.id, job.id, voice, text):
            yield event

    async def _to_speak(self, user: User, job_id: str, message_id: str) -> tuple[Job, Voice, str]:
        """The delivered answer, its personality's voice and the text it speaks."""
        if job_id:
            job = await self._store.get_job(job_id) if is_uuid(job_id) else None
            if job is not None and job.user_id != user.id and not user.superuser:
                raise PermissionDenied("only the user it answered may have it spoken")
        elif message_id:
            job = await self._store.get_job_by_delivered_message(message_id)
        else:
            raise InvalidArgument("answer", "name the answer: job_id or message_id")
        if job is None:
            raise NotFound("no answer of a personality there", reason="ANSWER_NOT_FOUND")
        if job.status is not JobStatus.DELIVERED:
            raise FailedPrecondition(
                "the answer has not been delivered yet", reason="ANSWER_NOT_DELIVERED"
            )
        personality = await self._store.get_personality(job.personality_id)
        voice = await self._voices.voice(job.personality_id)
        if voice is None or personality is None:
            raise FailedPrecondition("this personality has no voice", reason="NO_VOICE")
        # In a thread, its parent channel's "off" holds unless the thread sets its own.
        channel = await self._db.setting_levels(**channel_ids(job.location))
        if channel.get(ConfigSource.CHANNEL, {}).get(VOICE_MODE) == "off":
            raise FailedPrecondition("voice is turned off in this channel", reason="VOICE_OFF")
        settings = await self._gateway.resolved_settings(user, personality, job.location)
        # Never more than the voice's provider takes in one request: more is always refused.
        limit = spoken_limit(voice, settings, self._voice_max_characters)
        text = cut_for_speech(job.content, limit)
        if not text:
            raise FailedPrecondition("the answer has nothing to say", reason="NOTHING_TO_SAY")
        return job, voice, text

    async def _synthesize(
        self, user_id: str, job_id: str, voice: Voice, text: str
    ) -> AsyncGenerator[bytes | SpeechDone, None]:
        """Relays the speech, recording it in usage_log as soon as the provider bills it
        (failed until its SpeechDone: a stream that breaks off, or is cancelled, after the
        charge stays recorded as paid and not delivered)."""
        usage_id: int | None = None
        done = False
        taken = self._gateway.key_uses.now()  # before inference reads her key
        try:
            async for event in self._refusals_noted(
                user_id, self._speech_port().synthesize_speech(user_id, voice, text), taken
            ):
                if isinstance(event, SpeechBilled):
                    usage_id = await self._voices.record_speech(
                        user_id, job_id, voice.provider, event.model, event.characters,
                        failed=True,
                    )  # fmt: skip
                    # Paid by the user's own key (ElevenLabs, OpenAI); keyvault skips a
                    # provider with no stored key (a keyless local speech server).
                    self._gateway.key_uses.used(user_id, voice.provider, taken_after=taken)
                    continue
                if isinstance(event, SpeechDone):
                    if usage_id is None:  # an inference that sends no SpeechBilled (older)
                        await self._voices.record_speech(
                            user_id, job_id, voice.provider, voice.model, event.characters
                        )
                        self._gateway.key_uses.used(user_id, voice.provider, taken_after=taken)
                    else:
                        await self._voices.speech_completed(usage_id)
                    done = True
                    log.info(
                        "voice.spoken",
                        job_id=job_id,
                        provider=voice.provider,
                        characters=event.characters,
                        duration_secs=event.duration_secs,
                    )
                    yield await self._own_clone_noted(user_id, voice, event)
                    continue
                yield event
        finally:
            if usage_id is not None and not done:
                log.warning("voice.paid_not_spoken", job_id=job_id, provider=voice.provider)

    async def _own_clone_noted(self, user_id: str, voice: Voice, done: SpeechDone) -> SpeechDone:
        """`done`, saying so when the stand-in spoke for the user who cloned the voice: her
        own clone is gone from her ElevenLabs account (deleted there), which she can clone
        again, unlike another listener, whose key may never use it."""
        if not done.stand_in_voice or voice.provider != ELEVENLABS:
            return done
        if not await self._voices.is_cloner(user_id, voice.voice_id):
            return done
        log.info("voice.own_clone_missing", user_id=user_id)
        return replace(done, own_clone_missing=True)

    async def _refusals_noted(
        self,
        user_id: str,
        events: AsyncIterator[bytes | SpeechBilled | SpeechDone],
        taken: datetime,
    ) -> AsyncGenerator[bytes | SpeechBilled | SpeechDone, None]:
        """The speech's events; a refusal of the user's stored key (one stored by `taken`)
        marks it inactive before it is raised (so `/wallet list` says so by the time the user
        reads the error)."""
        try:
            async for event in events:
                yield event
        except TzurotError as err:
            await self._gateway.key_uses.refused(user_id, err, taken_after=taken)
            raise

    # ---- samples and cloning ----

    async def upload_voice_sample(
        self, who: Principal, name: str, filename: str, data: bytes
    ) -> VoiceSample:
        target = await self._owned(name, who)
        filename = (filename.strip() or "sample")[-200:]
        if len(data) > MAX_SAMPLE_BYTES:
            raise InvalidArgument("data", f"{quoted(filename)} is larger than 10 MB")
        try:  # decoding stops past the limit: a few MB of 6 kbps Opus holds hours
            info = await asyncio.to_thread(probe, data, max_seconds=MAX_SAMPLE_SECONDS)
        except AudioTooLong as exc:
            info = exc.info  # its duration is past the limit: refused below, as before
        except AudioError as exc:
            raise InvalidArgument(
                "data", f"{quoted(filename)} is not an MP3, WAV or OGG recording ({exc})"
            ) from None
        if info.container not in SAMPLE_FORMATS:
            raise InvalidArgument(
                "data",
                f"{quoted(filename)} is {info.container} audio; samples must be MP3, WAV or OGG",
            )
        if info.duration_secs > MAX_SAMPLE_SECONDS:
            raise InvalidArgument("data", f"{quoted(filename)} is longer than 10 minutes")
        added = await self._voices.add_sample(
            target.id,
            who.user_id,
            filename=filename,
            fmt=info.container,
            duration_secs=round(info.duration_secs, 2),
            data=data,
            max_samples=MAX_SAMPLES,
        )
        if added is None:
            raise FailedPrecondition(
                f"{quoted(target.slug)} already has {MAX_SAMPLES} samples; remove one first",
                reason="TOO_MANY_SAMPLES",
            )
        return added

    async def voice_samples(self, who: Principal, name: str) -> list[VoiceSample]:
        return await self._voices.samples((await self._owned(name, who)).id)

    async def remove_voice_sample(self, who: Principal, name: str, sample_id: str) -> None:
        target = await self._owned(name, who)
        if not is_uuid(sample_id) or not await self._voices.remove_sample(target.id, sample_id):
            raise NotFound(f"no sample {quoted(sample_id)}", reason="SAMPLE_NOT_FOUND")

    async def clone_voice(self, who: Principal, name: str) -> tuple[Voice, int]:
        """An ElevenLabs Instant Voice Clone from every sample, with the actor's key; the
        voice becomes the personality's (its tuning and frequency kept). One at a time per
        personality (CLONE_IN_PROGRESS otherwise: a double click clones once), never while
        the personality or the actor's data is being deleted (clone_locks.py: the deletion
        would miss the voice, left in their ElevenLabs account); the user's earlier clones
        of it are deleted from their ElevenLabs account, unless a personality still uses
        one."""
        user = who.require_user()
        target = await self._owned(name, who)
        here = self._clones_here
        if target.id in here:  # a double click while the first waits for the slot: told now
            raise _clone_in_progress(target)
        here.add(target.id)
        try:
            # Up to 250 MiB of samples held until the clone answers: one such at a time in
            # the process, with the documents (document_work.py says why). The slot first,
            # the locks' pool connection only then: clones queued for the slot hold none
            # (15 a pod; a queue holding them would stall every reply).
            async with (
                document_slot() as slot,
                CloneLocks(self._store.engine).cloning(target.id, user.id) as start,
            ):
                if start is CloneStart.BUSY:
                    raise _clone_in_progress(target)
                if start is CloneStart.PERSONALITY_DELETED:
                    raise NotFound(
                        f"no personality named {quoted(name)}", reason="PERSONALITY_NOT_FOUND"
                    )
                if start is CloneStart.CLONER_DELETING:
                    raise user_data_deleting()
                return await self._clone_locked(user.id, target, slot)
        finally:
            here.discard(target.id)

    @functools.cached_property
    def _clones_here(self) -> set[str]:
        """The personalities with a clone waiting for the slot or under way in this process
        (another replica's is told apart by the lock, once this one has the slot)."""
        return set()

    async def _clone_locked(
        self, user_id: str, target: Personality, slot: HeldSlot
    ) -> tuple[Voice, int]:
        """The clone, under its locks; `slot` is given back once the samples are sent."""
        samples = await self._voices.sample_data(target.id)
        if not samples:
            raise FailedPrecondition(
                f"{quoted(target.slug)} has no voice samples; upload some first",
                reason="NO_SAMPLES",
            )
        await self._sweep_lost_clones(user_id, target.id)
        taken = self._gateway.key_uses.now()  # before inference reads her key
        try:
            voice_id = await self._speech_port().clone_voice(
                user_id, target.display_name, _description(target), samples,
                personality_id=target.id,
            )  # fmt: skip
        except TzurotError as err:  # her key refused: `/wallet list` shows it inactive
            await self._gateway.key_uses.refused(user_id, err, taken_after=taken)
            raise
        sent = len(samples)
        del samples
        slot.release()  # the rest (storing the voice, deleting replaced clones) holds no samples
        # Made with the user's own ElevenLabs key (inference takes no other for a clone):
        # `/wallet list` shows it used, like a speech it paid for.
        self._gateway.key_uses.used(user_id, ELEVENLABS, taken_after=taken)
        current = await self._voices.voice(target.id)
        voice = Voice(provider=ELEVENLABS, voice_id=voice_id)
        if current is not None and current.provider == ELEVENLABS:
            voice = Voice(
                provider=ELEVENLABS,
                voice_id=voice_id,
                model=current.model,
                stability=current.stability,
                similarity_boost=current.similarity_boost,
                style=current.style,
                speed=current.speed,
                frequency=current.frequency,
                probability=current.probability,
            )
        elif current is not None:
            voice = Voice(
                provider=ELEVENLABS,
                voice_id=voice_id,
                frequency=current.frequency,
                probability=current.probability,
            )
        await self._voices.put_voice(target.id, voice, cloned_by=user_id)
        log.info("voice.cloned", personality_id=target.id, samples=sent)
        await self._delete_replaced_clones(user_id, target.id, voice_id)
        return voice, sent

    async def _sweep_lost_clones(self, user_id: str, personality_id: str) -> None:
        """Before a clone: the user's clones marked for the personality whose answer was lost
        go from her ElevenLabs account (lost_clones.py: never a voice id a personality stores
        or voice_clones records, decided under its lock). Best effort: what cannot be listed
        or deleted now (no key, ElevenLabs slow or away, an older inference) stays for the
        next clone or the personality's deletion, and the clone goes on."""
        try:
            await delete_lost_clones(
                self._speech_port(), self._voices, user_id, personality_id,
                wait=self._marked_clones_wait,
            )  # fmt: skip
        except TzurotError as err:
            log.info(
                "voice.lost_clones_not_swept", personality_id=personality_id, reason=err.reason
            )

    async def _delete_replaced_clones(self, user_id: str, personality_id: str, new: str) -> None:
        """The user's earlier clones for the personality (recorded in voice_clones: the one
        this clone replaced, and any replaced or removed by hand since), deleted from her
        ElevenLabs account with her key; one whose voice id a personality still stores (set
        by hand, e.g. for a second personality) is kept, and so is a clone someone else made
        (their account: it goes with the personality's deletion or theirs). A failure leaves
        the clone there and recorded (logged); the new voice stays."""
        voices = self._voices
        for clone in await voices.clones_for(personality_id, cloner_id=user_id):
            if clone.voice_id == new:
                continue
            async with voices.deleting_clone(clone) as decision:
                if not decision.go:
                    log.info("voice.replaced_clone_in_use", personality_id=personality_id)
                    continue
                taken = self._gateway.key_uses.now()  # before inference reads her key
                try:
                    found = await self._speech_port().delete_voice(user_id, clone.voice_id)
                except TzurotError as err:
                    await self._gateway.key_uses.refused(user_id, err, taken_after=taken)
                    log.warning(
                        "voice.replaced_clone_kept",
                        personality_id=personality_id,
                        reason=err.reason,
                    )
                    continue
                decision.gone = True
            log.info("voice.replaced_clone_deleted", personality_id=personality_id, found=found)


def _clone_in_progress(target: Personality) -> FailedPrecondition:
    return FailedPrecondition(
        f"{quoted(target.slug)}'s voice is being cloned already; wait for it",
        reason=CLONE_IN_PROGRESS,
    )


def _description(personality: Personality) -> str:
    return f"Tzurot personality {personality.slug}"[:500]
