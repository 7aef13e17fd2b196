"""The voice clones of a user's ElevenLabs account: made, found again, deleted.

A clone whose answer is lost would stay in the user's account, unknown, holding a slot of
their plan; each clone is marked (tzurot.inference.clone_marks) so it is found again. A call
that got no answer (as opposed to a refusal) looks its own attempt up and answers with the voice
when ElevenLabs made it; every clone first deletes the earlier ones marked for its personality
that are not the personality's voice now (an answer lost on the way to gateway, a gateway
that died before storing it, a clone ElevenLabs finished after the lookup). That clean-up is
an older gateway's (CloneVoiceHeader.personality_id); a newer one asks for the mark alone
(`mark_personality_id`) and deletes the lost clones itself (ListMarkedClones, DeleteVoice),
each under its lock on the voice id, keeping every voice id a personality stores.

Every call is made with the user's own ElevenLabs key (a refusal of it names "user").
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Sequence

import structlog
from pydantic import SecretStr

from tzurot.inference.clone_marks import (
    CloneMark,
    marked_description,
    new_mark,
    read_mark,
    valid_personality_id,
)
from tzurot.inference.keys import refusal_names_key
from tzurot.inference.speech import ELEVENLABS, ElevenLabsClient, Sample
from tzurot.runtime.errors import InvalidArgument, TzurotError, Unavailable

log = structlog.get_logger(__name__)

MAX_CLONE_SAMPLES = 25
MAX_SAMPLE_BYTES = 10 * 1024 * 1024


class VoiceClones:
    """The clone use-cases, given ElevenLabs and how to find a user's key (`key_of`)."""

    def __init__(
        self, elevenlabs: ElevenLabsClient, key_of: Callable[[str], Awaitable[SecretStr]]
    ) -> None:
        self._elevenlabs = elevenlabs
        self._elevenlabs_key = key_of

    async def clone(
        self,
        user_id: str,
        name: str,
        description: str,
        samples: Sequence[Sample],
        *,
        personality_id: str = "",
        keep_voice_id: str = "",
        keep_voice_ids: Collection[str] = (),
        mark_personality_id: str = "",
    ) -> str:
        """An ElevenLabs Instant Voice Clone; its voice id, marked for the personality
        (`mark_personality_id` or `personality_id`). With `personality_id` (an older
        gateway's), the clones marked for that personality whose answer was lost (all but
        `keep_voice_id` and every one of `keep_voice_ids`: the voices gateway says are still
        in use) are deleted first; with `mark_personality_id` alone none is (gateway does
        that itself, under its voice locks)."""
        _check_clone(user_id, name, samples)
        for field, value in (
            ("personality_id", personality_id),
            ("mark_personality_id", mark_personality_id),
        ):
            if value and not valid_personality_id(value):
                raise InvalidArgument(f"header.{field}", "not a personality id")
        if personality_id and mark_personality_id and personality_id != mark_personality_id:
            raise InvalidArgument(
                "header.mark_personality_id", "names another personality than personality_id"
            )
        key = await self._elevenlabs_key(user_id)
        if personality_id:
            keep = {v.strip() for v in (keep_voice_id, *keep_voice_ids)} - {""}
            await self._delete_lost_clones(key, personality_id, frozenset(keep))
        mark = new_mark(personality_id or mark_personality_id)
        try:
            with refusal_names_key(ELEVENLABS, "user"):
                return await self._elevenlabs.clone(
                    key, name.strip()[:100], marked_description(description, mark), samples
                )
        except Unavailable:  # no answer, not a refusal: ElevenLabs may have made it
            found = await self._lost_clone(key, mark)
            if found is None:
                raise
            log.info("voice.clone_answer_lost_found", personality_id=mark.personality_id)
            return found

    async def _lost_clone(self, key: SecretStr, mark: CloneMark) -> str | None:
        """The clone this attempt made though its answer was lost; None when there is none
        (yet: ElevenLabs may still finish it; the next clone deletes it then)."""
        try:
            made = [
                voice.voice_id
                for voice in await self._elevenlabs.cloned_voices(key)
                if read_mark(voice.description) == mark
            ]
        except TzurotError:
            return None
        return made[0] if made else None

    async def _delete_lost_clones(
        self, key: SecretStr, personality_id: str, keep: frozenset[str]
    ) -> None:
        """Deletes the clones marked for the personality but those in `keep` (its voice now,
        and any other still in use). Best effort: what cannot be listed or deleted now stays
        for the next clone."""
        try:
            voices = await self._elevenlabs.cloned_voices(key)
        except TzurotError as err:
            log.warning(
                "voice.lost_clones_not_listed", personality_id=personality_id, reason=err.reason
            )
            return
        for voice in voices:
            mark = read_mark(voice.description)
            if mark is None or mark.personality_id != personality_id or voice.voice_id in keep:
                continue
            try:
                deleted = await self._elevenlabs.delete_voice(key, voice.voice_id)
            except TzurotError as err:
                log.warning(
                    "voice.lost_clone_kept", personality_id=personality_id, reason=err.reason
                )
                continue
            log.info(
                "voice.lost_clone_deleted",
                personality_id=personality_id,
                voice_id=voice.voice_id,
                found=deleted,
            )

    async def marked_clones(self, user_id: str, personality_id: str) -> list[str]:
        """The voice ids of the clones in the user's ElevenLabs account marked for the
        personality (the lost ones among them: a personality's deletion deletes them)."""
        if not user_id:
            raise InvalidArgument("user_id", "user_id is required")
        if not valid_personality_id(personality_id):
            raise InvalidArgument("personality_id", "not a personality id")
        key = await self._elevenlabs_key(user_id)
        with refusal_names_key(ELEVENLABS, "user"):
            voices = await self._elevenlabs.cloned_voices(key)
        return [
            voice.voice_id
            for voice in voices
            if (mark := read_mark(voice.description)) is not None
            and mark.personality_id == personality_id
        ]

    async def delete_voice(self, user_id: str, voice_id: str) -> bool:
        """Deletes an ElevenLabs voice of the user's account; False when it was gone."""
        if not user_id:
            raise InvalidArgument("user_id", "user_id is required")
        if not voice_id.strip():
            raise InvalidArgument("voice_id", "name the voice to delete")
        key = await self._elevenlabs_key(user_id)
        with refusal_names_key(ELEVENLABS, "user"):
            return await self._elevenlabs.delete_voice(key, voice_id.strip())


def _check_clone(user_id: str, name: str, samples: Sequence[Sample]) -> None:
    if not user_id:
        raise InvalidArgument("header.user_id", "user_id is required")
    if not name.strip():
        raise InvalidArgument("header.name", "the voice needs a name")
    if not samples:
        raise InvalidArgument("sample", "at least one sample is required")
    if len(samples) > MAX_CLONE_SAMPLES:
        raise InvalidArgument("sample", f"at most {MAX_CLONE_SAMPLES} samples")
    for sample in samples:
        if len(sample.data) > MAX_SAMPLE_BYTES:
            raise InvalidArgument("sample", f"{sample.filename} is larger than 10 MB")
