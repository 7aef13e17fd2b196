"""Every wallet key use a reply reports goes to keyvault with the reply's start as the
earliest time the key was read (KeyUse.taken_after): taken before inference is asked, so
no key inference reads is read before it, and keyvault marks a refusal only on a key
stored by then, never on one the user stored while the reply ran. So for a refusal said
as it happens (KeyRefused), one in the reply's report, one in a failed reply's error, and
a use that worked.

Real Postgres for `core`; inference and keyvault are in-memory fakes.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from tzurot.gateway.domain import (
    KeyRefused,
    Personality,
    PromptReport,
    ReplyEvent,
    ReplyFinished,
    ReplyRequest,
    SkillActivity,
)
from tzurot.gateway.key_uses import taken_after
from tzurot.gateway.service import Gateway
from tzurot.runtime.errors import Unavailable

from .conftest import USAGE, FakeInference, FakeKeyVault, command

pytestmark = pytest.mark.component


@dataclass
class TimedInference(FakeInference):
    """Notes when each reply was asked for."""

    asked_at: list[datetime] = field(default_factory=list)

    async def generate_reply(self, request: ReplyRequest) -> AsyncGenerator[ReplyEvent, None]:
        self.asked_at.append(datetime.now(UTC))
        async for event in super().generate_reply(request):
            yield event


@pytest.fixture
def inference() -> TimedInference:
    return TimedInference()


def finished(*refused: str) -> ReplyFinished:
    return ReplyFinished(
        content="Answered.",
        usage=USAGE,
        finish_reason="stop",
        report=PromptReport(
            key_source="user", user_key_providers=("elevenlabs",), refused_key_providers=refused
        ),
    )


async def _drain(stream: AsyncIterator[object]) -> None:
    async for _ in stream:
        pass


def _bounds(keyvault: FakeKeyVault) -> dict[tuple[str, bool], datetime | None]:
    return {(use.provider, use.rejected): taken_after(use) for use in keyvault.uses}


async def test_each_use_a_reply_reports_is_of_the_key_read_after_its_start(
    gateway: Gateway, inference: TimedInference, keyvault: FakeKeyVault, lilith: Personality
) -> None:
    inference.script = [KeyRefused("brave"), finished("brave", "openai")]
    before = datetime.now(UTC)
    await _drain(gateway.generate(command()))
    await gateway.key_uses.flush()
    [asked] = inference.asked_at
    bounds = _bounds(keyvault)
    assert set(bounds) == {
        ("brave", True),
        ("openai", True),
        ("elevenlabs", False),
        ("openrouter", False),
    }
    for bound in bounds.values():
        assert bound is not None
        assert before <= bound <= asked


async def test_a_failed_reply_s_refusals_are_of_the_key_read_after_its_start(
    gateway: Gateway, inference: TimedInference, keyvault: FakeKeyVault, lilith: Personality
) -> None:
    inference.script = [SkillActivity(skill="web_research", step=1)]
    inference.error = Unavailable(
        "openrouter is failing (HTTP 502)",
        reason="PROVIDER_UNAVAILABLE",
        metadata={"provider": "openrouter", "refused_key_providers": "brave"},
    )
    before = datetime.now(UTC)
    with pytest.raises(Unavailable):
        await _drain(gateway.generate(command()))
    [asked] = inference.asked_at
    [(provider, rejected, bound)] = [
        (u.provider, u.rejected, taken_after(u)) for u in keyvault.uses
    ]
    assert (provider, rejected) == ("brave", True)
    assert bound is not None
    assert before <= bound <= asked
