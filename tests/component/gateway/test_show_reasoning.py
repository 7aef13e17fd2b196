"""The show_reasoning setting: the answer's reasoning goes to the client (shown as a spoiler)
for a user who set it, and only then; it is not kept for Inspect nor put in history."""

from __future__ import annotations

from typing import Any

import pytest

from tzurot.gateway.admin import Admin, Principal, SettingTarget
from tzurot.gateway.domain import ConfigSource, GenerationFinished, JobAccepted
from tzurot.gateway.service import Gateway
from tzurot.runtime.errors import InvalidArgument

from .conftest import ALICE, FakeInference, FakeMemory, answer, command
from .test_service import BOB, collect

pytestmark = pytest.mark.component


async def finished_of(gateway: Gateway, **fields: Any) -> tuple[str, GenerationFinished]:
    accepted, *_, finished = await collect(gateway.generate(command(**fields)))
    assert isinstance(accepted, JobAccepted)
    assert isinstance(finished, GenerationFinished)
    return accepted.job_id, finished


@pytest.mark.parametrize(
    "target",
    [SettingTarget(ConfigSource.USER), SettingTarget(ConfigSource.USER_PERSONALITY, "lilith")],
)
@pytest.mark.usefixtures("lilith")
async def test_reasoning_is_sent_to_a_user_who_set_show_reasoning_only(
    gateway: Gateway,
    admin: Admin,
    inference: FakeInference,
    memory: FakeMemory,
    target: SettingTarget,
) -> None:
    alice = Principal(await gateway.user(ALICE))
    await admin.set_setting(alice, target, "show_reasoning", True)
    inference.script = answer("Yes.", reasoning="Because.")

    job_id, shown = await finished_of(gateway, key="a")
    _, hidden = await finished_of(gateway, key="b", actor=BOB)

    assert (shown.content, shown.reasoning) == ("Yes.", "Because.")
    assert hidden.reasoning == ""
    job = await gateway.job_status(job_id=job_id)
    context = await gateway.job_context(job, ALICE)
    assert context is not None
    assert context.reasoning == ""  # shown, not kept for Inspect (that is keep_reasoning)
    await gateway.confirm_delivery(job_id, ["answer-1"])
    [exchange] = memory.exchanges
    assert [turn.content for turn in exchange.turns] == ["Hello Lilith", "Yes."]


@pytest.mark.parametrize(
    "target",
    [
        SettingTarget(ConfigSource.PERSONALITY, "lilith"),
        SettingTarget(ConfigSource.GLOBAL),
    ],
)
@pytest.mark.parametrize("key", ["show_reasoning", "keep_reasoning"])
@pytest.mark.usefixtures("lilith")
async def test_no_owner_nor_superuser_may_show_or_keep_everyones_reasoning(
    admin: Admin, target: SettingTarget, key: str
) -> None:
    """The reasoning may restate a user's memories and the personality's prompt: only each
    user turns on showing it, or keeping it for Inspect, for themselves."""
    with pytest.raises(InvalidArgument, match="set by each user for themselves"):
        await admin.set_setting(Principal(None), target, key, True)  # the operator
