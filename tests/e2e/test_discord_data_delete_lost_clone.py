"""`/settings data delete` deletes the clone of her private personality whose answer was lost,
through Discord: the fake Discord, the real bot, the whole mesh on one real Postgres, the fake
ElevenLabs.

A clone ElevenLabs made but whose voice id never reached gateway is not in voice_clones. Before,
her data deletion deleted only the recorded clones, then her key: the lost one stayed in her
ElevenLabs account for good, holding a slot of her plan that nothing of Tzurot's could reach
any more. Now the deletion lists her account for the clones marked for each private personality
it deletes (ListMarkedClones) and deletes those nothing records, before her key goes.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa

from tzurot.audio import encode_tone
from tzurot.db.engine import create_engine
from tzurot.testing.discord_e2e import VoiceWorld, member_actor, running_bot, slash_text
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw
from tzurot.v1 import inference_pb2 as inf
from tzurot.v1 import inference_pb2_grpc as inf_grpc

pytestmark = pytest.mark.e2e


async def keys_of(database: str, user_id: str) -> int:
    engine = create_engine(database)
    try:
        async with engine.connect() as conn:
            count = await conn.scalar(
                sa.text("SELECT count(*) FROM vault.api_keys WHERE user_id = :u"), {"u": user_id}
            )
    finally:
        await engine.dispose()
    return int(count or 0)


async def test_her_data_deletion_deletes_the_clone_whose_answer_was_lost(
    voice_scene: VoiceWorld,
) -> None:
    world, db = voice_scene.world, voice_scene.database
    alice = member_actor(world.alice)
    key = f"sk_elevenlabs_{uuid.uuid4().hex}"
    voice_scene.eleven.add_key(key)
    await world.set_key(world.alice)
    await world.cli.SetWalletKey(
        gw.SetWalletKeyRequest(actor=alice, provider="elevenlabs", api_key=key)
    )
    made = await world.cli.CreatePersonality(
        gw.CreatePersonalityRequest(
            actor=alice,
            personality=common.Personality(
                slug="plover", display_name="Plover", system_prompt="Hi.", public=False
            ),
        )
    )
    plover = made.personality.id
    async with running_bot(world):
        sample = world.discord.upload(world.general, "me.mp3", encode_tone(1.0), "audio/mpeg")
        added = await slash_text(
            world, world.alice, "personality", "voice-sample", "upload",
            personality="plover", file=sample,
        )  # fmt: skip
        assert "Added" in added
        bot = await world.mesh.gateway_stub("bot")
        user_id = (await bot.GetUser(gw.GetUserRequest(actor=alice))).user.id
        inference = inf_grpc.InferenceServiceStub(
            await world.mesh.channel("gateway", target="inference")
        )

        async def parts() -> AsyncIterator[inf.CloneVoiceRequest]:
            """A clone for Plover that inference answered and gateway never stored."""
            header = inf.CloneVoiceHeader(
                user_id=user_id, name="Plover", description="Tzurot personality plover",
                mark_personality_id=plover,
            )  # fmt: skip
            yield inf.CloneVoiceRequest(header=header)
            yield inf.CloneVoiceRequest(
                sample=inf.CloneVoiceSample(filename="a.mp3", data=encode_tone(1.0))
            )

        lost = (await inference.CloneVoice(parts())).voice_id
        assert [v.voice_id for v in voice_scene.eleven.cloned_voices(key)] == [lost]
        assert await keys_of(db, user_id) == 2

        erased = await slash_text(
            world, world.alice, "settings", "data", "delete", confirm="DELETE"
        )
        assert "Erased" in erased

    assert voice_scene.eleven.cloned_voices(key) == []
    assert [c.path for c in voice_scene.eleven.delete_calls()[-1:]] == [f"/v1/voices/{lost}"]
    assert await keys_of(db, user_id) == 0
    assert not world.discord.refusals
