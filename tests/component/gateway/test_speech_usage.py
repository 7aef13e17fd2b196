"""Usage of speech against real Postgres: `/usage` (GetUsage) sums what speech is billed by,
the characters synthesised, and counts the requests paid for but not delivered whole (a speech
whose audio broke off after the provider billed it: usage_log.failed), next to the tokens of
answers; over gRPC too (admin_convert.usage_total)."""

from __future__ import annotations

import pytest

from tzurot.gateway import admin_convert
from tzurot.gateway.admin import Admin, Principal
from tzurot.gateway.domain import JobAccepted, Personality
from tzurot.gateway.service import Gateway
from tzurot.gateway.store import GatewayStore
from tzurot.gateway.voice_store import VoiceStore

from .conftest import ALICE, USAGE, command

pytestmark = pytest.mark.component

MODEL = "eleven_multilingual_v2"


async def test_speech_totals_carry_characters_and_paid_undelivered_requests(
    gateway: Gateway, admin: Admin, store: GatewayStore, lilith: Personality
) -> None:
    accepted, *_ = [e async for e in gateway.generate(command())]
    assert isinstance(accepted, JobAccepted)
    job_id = accepted.job_id
    user = await gateway.user(ALICE)
    voices = VoiceStore(store.engine)
    await voices.record_speech(user.id, job_id, "elevenlabs", MODEL, 4321)
    await voices.record_speech(user.id, job_id, "elevenlabs", MODEL, 999, failed=True)
    completed = await voices.record_speech(user.id, job_id, "elevenlabs", MODEL, 80, failed=True)
    await voices.speech_completed(completed)  # its audio reached its end after all

    totals, _ = await admin.usage(Principal(user), "day", all_users=False)
    by_type = {t.request_type: t for t in totals}
    speech = by_type["speech"]
    assert (speech.provider, speech.model, speech.requests) == ("elevenlabs", MODEL, 3)
    assert (speech.characters, speech.failed_requests) == (4321 + 999 + 80, 1)
    assert (speech.input_tokens, speech.output_tokens) == (0, 0)
    chat = by_type["chat"]  # the answer: tokens, no characters, nothing failed
    assert (chat.requests, chat.input_tokens, chat.output_tokens) == (
        1,
        USAGE.input_tokens,
        USAGE.output_tokens,
    )
    assert (chat.characters, chat.failed_requests) == (0, 0)

    sent = admin_convert.usage_total(speech, with_user=False)
    assert (sent.request_type, sent.requests, sent.characters, sent.failed_requests) == (
        "speech",
        3,
        5400,
        1,
    )
