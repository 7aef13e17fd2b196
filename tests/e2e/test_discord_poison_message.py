"""A message that kills the service answering it (a poison message) is run three times at
most, whoever asks for it again, and the user is told in Discord that it is not retried.

Inference "dies" on the message each time: the gateway's inference port passes the request
to the real inference (the provider is asked, and paid), then, once the answer began, ends
as a dying inference's call ends for the gateway (UNAVAILABLE without our status:
SERVICE_RESTARTING). The bot asks again after each such cut (here up to four times, more
than the gateway's cap), as it does after a restart in the mesh.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any

import pytest

from tzurot.gateway.domain import ReplyChunk, ReplyEvent, ReplyRequest
from tzurot.gateway.ports import Inference
from tzurot.runtime.errors import Unavailable, restarting_message
from tzurot.testing.discord_e2e import World, running_bot
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

pytestmark = pytest.mark.e2e

POISON = "poison pill"


class DyingOn:
    """Inference as the gateway sees it, dying mid-answer on every request naming `word`."""

    def __init__(self, real: Inference, word: str) -> None:
        self._real, self._word = real, word
        self.runs = 0

    async def generate_reply(self, request: ReplyRequest) -> AsyncGenerator[ReplyEvent, None]:
        dies = self._word in request.content
        self.runs += dies
        async with aclosing(self._real.generate_reply(request)) as events:
            async for event in events:
                yield event
                if dies and isinstance(event, ReplyChunk):
                    raise Unavailable(
                        restarting_message("inference"),
                        reason="SERVICE_RESTARTING",
                        metadata={"service": "inference"},
                    )

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


@pytest.mark.parametrize("bot_retries", [None, 4], ids=["bot-default-retries", "bot-retries-4"])
async def test_a_message_that_kills_inference_is_run_three_times_then_refused_for_good(
    world: World, monkeypatch: pytest.MonkeyPatch, bot_retries: int | None
) -> None:
    """With the bot's default retries (2: three asks, as many as the cap) the third run's
    own failure reads final; with more, the cap ends it, not the bot."""
    app = world.mesh.gateway_app
    assert app is not None
    dying = DyingOn(app.gateway._inference, POISON)
    monkeypatch.setattr(app.gateway, "_inference", dying)
    await world.set_key(world.alice)
    asked_before = len(world.provider.chat_requests())
    world.provider.reply = "This answer never gets far."

    retries: dict[str, Any] = (
        {} if bot_retries is None else {"generate_restart_retries": bot_retries}
    )
    async with running_bot(world, **retries):
        said = await world.discord.say(world.general, world.alice, f"@Lilith {POISON}")
        (shown,) = await world.discord.wait_until(
            lambda: [
                m
                for m in world.discord.webhook_messages(world.general)
                if "not retried" in m.content
            ],
            within=60,
        )
    job = (
        await world.cli.GetJobStatus(gw.GetJobStatusRequest(idempotency_key=f"{said.id}:lilith"))
    ).job

    assert dying.runs == 3  # not once per ask of the bot's (five, with 4 retries)
    paid = [
        r
        for r in world.provider.chat_requests()[asked_before:]
        if POISON in str(r.body["messages"][-1]["content"])
    ]
    assert len(paid) == 3
    assert shown.content.endswith(
        "-# this message made the answering service fail 3 times; it is not retried"
    )
    assert "This answer" not in shown.content  # the half answer became the notice
    assert world.discord.webhook_messages(world.general) == [shown]
    assert job.status == common.JOB_STATUS_FAILED
    assert job.attempts == 3
    assert (job.error.code, job.error.reason) == ("FAILED_PRECONDITION", "JOB_RUN_LIMIT")
