"""Inference's sweep of the clones marked for a personality keeps every voice gateway says is
still in use (CloneVoiceHeader.keep_voice_ids), not only one: its voice now, and an earlier
clone of it reused by hand for another personality. And the clones marked for a personality
are listed for its deletion (ListMarkedClones), none of another's nor an unmarked voice."""

import httpx2 as httpx
from pydantic import SecretStr

from tzurot.audio import encode_tone
from tzurot.inference.config import InferenceSettings
from tzurot.inference.keys import KeyResolver
from tzurot.inference.providers import ProviderRegistry
from tzurot.inference.speech import ElevenLabsClient, OpenAISpeechClient, Sample
from tzurot.inference.voice import VoiceService
from tzurot.testing.fake_elevenlabs import DEFAULT_ELEVENLABS_KEY, FakeElevenLabs

P1 = "0b6c5f0e-2a49-4d5c-9a8e-1f2e3d4c5b6a"
P2 = "7a1d2c3b-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
TONE = Sample("a.mp3", encode_tone(1.0))


class Vault:
    async def decrypt(self, user_id: str, provider: str) -> SecretStr | None:
        return SecretStr(DEFAULT_ELEVENLABS_KEY)


async def test_the_sweep_keeps_every_voice_in_use_and_deletes_the_lost_one() -> None:
    async with (
        FakeElevenLabs() as eleven,
        httpx.AsyncClient(
            timeout=InferenceSettings.model_fields["provider_timeout_seconds"].default
        ) as http,
    ):
        voice = VoiceService(
            providers=ProviderRegistry({}),
            keys=KeyResolver(Vault()),
            elevenlabs=ElevenLabsClient(http, eleven.base_url),
            speech=OpenAISpeechClient(http, max_retries=0),
        )
        reused = await voice.clone("u1", "Wren", "", [TONE], personality_id=P1)  # now Heron's
        # Wren's voice now, made while `reused` was.
        now = await voice.clone(
            "u1", "Wren", "", [TONE], personality_id=P1, keep_voice_ids=[reused]
        )
        in_use = (reused, now)
        # Made while both are in use, and never stored (its answer lost).
        lost = await voice.clone("u1", "Wren", "", [TONE], personality_id=P1, keep_voice_ids=in_use)
        new = await voice.clone("u1", "Wren", "", [TONE], personality_id=P1, keep_voice_ids=in_use)
    assert {v.voice_id for v in eleven.cloned_voices()} == {reused, now, new}
    assert lost not in eleven.voices
    assert [c.path for c in eleven.delete_calls()] == [f"/v1/voices/{lost}"]


async def test_keep_voice_id_alone_is_still_kept_as_an_older_gateway_sends_it() -> None:
    async with (
        FakeElevenLabs() as eleven,
        httpx.AsyncClient(
            timeout=InferenceSettings.model_fields["provider_timeout_seconds"].default
        ) as http,
    ):
        voice = VoiceService(
            providers=ProviderRegistry({}),
            keys=KeyResolver(Vault()),
            elevenlabs=ElevenLabsClient(http, eleven.base_url),
            speech=OpenAISpeechClient(http, max_retries=0),
        )
        kept = await voice.clone("u1", "Wren", "", [TONE], personality_id=P1)
        other = await voice.clone("u1", "Wren", "", [TONE], personality_id=P1, keep_voice_id=kept)
        new = await voice.clone(
            "u1", "Wren", "", [TONE], personality_id=P1, keep_voice_id=kept,
            keep_voice_ids=(other,),
        )  # fmt: skip
    assert {v.voice_id for v in eleven.cloned_voices()} == {kept, other, new}


async def test_marked_clones_lists_the_voices_marked_for_the_personality_only() -> None:
    """What a personality's deletion asks for: its clones, lost ones included, none other."""
    async with (
        FakeElevenLabs() as eleven,
        httpx.AsyncClient(
            timeout=InferenceSettings.model_fields["provider_timeout_seconds"].default
        ) as http,
    ):
        voice = VoiceService(
            providers=ProviderRegistry({}),
            keys=KeyResolver(Vault()),
            elevenlabs=ElevenLabsClient(http, eleven.base_url),
            speech=OpenAISpeechClient(http, max_retries=0),
        )
        mine = await voice.clone("u1", "Wren", "", [TONE], personality_id=P1)
        other = await voice.clone("u1", "Heron", "", [TONE], personality_id=P2)
        unmarked = await ElevenLabsClient(http, eleven.base_url).clone(
            SecretStr(DEFAULT_ELEVENLABS_KEY), "Mine", "my own voice", [TONE]
        )
        assert await voice.marked_clones("u1", P1) == [mine]
        assert await voice.marked_clones("u1", P2) == [other]
    assert unmarked in eleven.voices
