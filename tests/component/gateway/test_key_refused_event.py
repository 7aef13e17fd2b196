"""A wallet key inference says was refused as it happens (KeyRefused) is marked inactive at
once, while the reply still runs, so `/wallet list` says so even if the reply never ends;
the reply's report (ReplyFinished's or the failed reply's error) naming it again marks it no
second time, and a key its report names that was not said before is marked as it was.

Real Postgres for `core`; inference and keyvault are in-memory fakes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from tzurot.gateway.domain import (
    JobAccepted,
    KeyRefused,
    Personality,
    PromptReport,
    ReplyFinished,
    SkillActivity,
)
from tzurot.gateway.service import Gateway
from tzurot.gateway.store import GatewayStore
from tzurot.runtime.errors import Unavailable
from tzurot.testing.waits import until

from .conftest import ALICE, USAGE, FakeInference, FakeKeyVault, command

pytestmark = pytest.mark.component


def finished(*refused: str) -> ReplyFinished:
    return ReplyFinished(
        content="Answered.",
        usage=USAGE,
        finish_reason="stop",
        report=PromptReport(key_source="user", refused_key_providers=refused),
    )


async def rejections(keyvault: FakeKeyVault) -> list[str]:
    return [use.provider for use in keyvault.uses if use.rejected]


async def test_a_refusal_said_is_marked_while_the_reply_still_runs_and_once(
    gateway: Gateway,
    store: GatewayStore,
    inference: FakeInference,
    keyvault: FakeKeyVault,
    lilith: Personality,
) -> None:
    inference.gate = asyncio.Event()  # the reply stalls after its first event
    inference.script = [
        KeyRefused("brave"),
        SkillActivity(skill="web_research", step=1),
        KeyRefused("brave"),  # said again (an inference that did): no second mark
        finished("brave", "openai"),
    ]
    stream = gateway.generate(command())
    assert isinstance(await anext(stream), JobAccepted)
    rest = asyncio.ensure_future(_drain(stream))
    await _marked(keyvault)
    alice = await store.upsert_user(ALICE)
    assert [(u.user_id, u.provider, u.rejected) for u in keyvault.uses] == [
        (alice.id, "brave", True)
    ]
    assert not rest.done()  # marked while the reply runs on
    inference.gate.set()
    await rest
    # The report's brave is not marked again; its openai, never said, is.
    assert await rejections(keyvault) == ["brave", "openai"]


async def test_a_failed_reply_s_error_naming_it_again_marks_it_no_second_time(
    gateway: Gateway, inference: FakeInference, keyvault: FakeKeyVault, lilith: Personality
) -> None:
    inference.script = [KeyRefused("brave"), SkillActivity(skill="web_research", step=1)]
    inference.error = Unavailable(
        "openrouter is failing (HTTP 502)",
        reason="PROVIDER_UNAVAILABLE",
        metadata={"provider": "openrouter", "refused_key_providers": "brave,openai"},
    )
    stream = gateway.generate(command())
    await anext(stream)
    with pytest.raises(Unavailable):
        await _drain(stream)
    assert await rejections(keyvault) == ["brave", "openai"]


async def test_a_reply_cut_after_the_refusal_leaves_the_key_marked(
    gateway: Gateway, inference: FakeInference, keyvault: FakeKeyVault, lilith: Personality
) -> None:
    """Inference killed after the refusal: the stream breaks, naming nothing."""
    inference.script = [KeyRefused("openai"), SkillActivity(skill="generate_image", step=1)]
    inference.error = Unavailable("the inference is restarting", reason="SERVICE_RESTARTING")
    stream = gateway.generate(command())
    await anext(stream)
    with pytest.raises(Unavailable):
        await _drain(stream)
    assert await rejections(keyvault) == ["openai"]


async def _marked(keyvault: FakeKeyVault) -> None:
    """Returns once keyvault was sent a rejection (the fake records it as it comes)."""
    await until(lambda: rejections(keyvault), "keyvault was sent a rejection", within=30)


async def _drain(stream: AsyncIterator[object]) -> None:
    async for _ in stream:
        pass
