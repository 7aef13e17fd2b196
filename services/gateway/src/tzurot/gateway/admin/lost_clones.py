"""The sweep of lost clones: voices ElevenLabs made for a personality whose answer never reached
gateway (inference marks each clone with the personality's id, tzurot.inference.clone_marks), so
voice_clones never recorded them and they would hold a slot of the user's plan for good.

Gateway sweeps them itself, not inference: only gateway knows which voice ids are in use, and
it decides under the same lock on the voice id that storing a voice takes
(`VoiceStore.deleting_unrecorded`), so a voice some personality stores (also one set by hand, a
clone of another cloner, one stored while the sweep runs) is never deleted. Listing an account
may take at most `wait` seconds: a slow ElevenLabs makes the sweep give up (DEADLINE_EXCEEDED),
never the request it runs in. Before a clone (admin/voice.py) and in a personality's deletion
(admin/deletions.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection

import structlog

from tzurot.gateway.ports import Speech
from tzurot.gateway.voice_store import VoiceStore
from tzurot.runtime.errors import DeadlineExceeded, TzurotError
from tzurot.runtime.retry import RETRYABLE

log = structlog.get_logger(__name__)


async def delete_lost_clones(
    speech: Speech,
    voices: VoiceStore,
    user_id: str,
    personality_id: str,
    *,
    wait: float,
    leaving: Collection[str] = (),
) -> int:
    """Deletes, from `user_id`'s ElevenLabs account with her key, the clones marked for the
    personality that nothing records (voice_clones) and no personality other than `leaving`
    (those being deleted) stores; how many ElevenLabs still had. Raises what listing the
    account raised (DEADLINE_EXCEEDED past `wait`), and an unreachable ElevenLabs (RETRYABLE)
    while deleting; a voice ElevenLabs refuses to delete stays, logged."""
    try:
        async with asyncio.timeout(wait):
            marked = await speech.marked_clones(user_id, personality_id)
    except TimeoutError:
        raise DeadlineExceeded(f"ElevenLabs did not list the voices within {wait:g} s") from None
    deleted = 0
    for voice_id in marked:
        async with voices.deleting_unrecorded(voice_id, leaving=leaving) as go:
            if not go:
                log.info("voice.lost_clone_in_use", personality_id=personality_id)
                continue
            try:
                found = await speech.delete_voice(user_id, voice_id)
            except TzurotError as err:
                if err.code in RETRYABLE:
                    raise
                log.warning(
                    "voice.lost_clone_kept", personality_id=personality_id, reason=err.reason
                )
                continue
        deleted += int(found)
        log.info("voice.lost_clone_deleted", personality_id=personality_id, found=found)
    return deleted
