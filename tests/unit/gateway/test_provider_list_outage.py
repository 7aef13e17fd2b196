"""The gateway's cached list of inference's providers (provider_list.py `InferenceProviders`)
while inference cannot answer, on a fake clock.

Review 315: once the cached list was a minute old, a failed ListProviders threw it away for
the built-in one (a keyless user was a guest again: F2), and a failure was not kept, so each
caller behind the lock asked again in turn: eight at once waited one failing question each,
one after another (F3). Now its last answer stands while inference cannot give one, a failure
is kept `PROVIDERS_RETRY_SECONDS` (one warning), callers meanwhile take the last answer
rather than wait for the question, and with none yet they share the one question's outcome.
While nobody can say, a built-in keyed provider takes a key (F5)."""

from __future__ import annotations

import asyncio
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from typing import Any

import pytest
from structlog.testing import capture_logs

from tzurot.gateway.provider_list import (
    KNOWN_PROVIDERS,
    PROVIDERS_RETRY_SECONDS,
    PROVIDERS_TTL_SECONDS,
    InferenceProviders,
    Listed,
    ProviderList,
)
from tzurot.runtime.errors import Unavailable

LOCAL = "my-llm"
LISTED = ProviderList(
    KNOWN_PROVIDERS | {LOCAL}, speech=None, keyless=frozenset({LOCAL, "kokoro", "ollama"})
)


@dataclass
class Inference:
    """ListProviders: `LISTED`, or UNAVAILABLE while `down`; held at `gate` when set."""

    down: bool = False
    asked: int = 0
    gate: asyncio.Event | None = None
    started: asyncio.Event = field(default_factory=asyncio.Event)

    async def list_providers(self) -> ProviderList:
        self.asked += 1
        self.started.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.down:
            raise Unavailable("inference is restarting")
        return LISTED


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def warnings(logs: list[MutableMapping[str, Any]]) -> list[MutableMapping[str, Any]]:
    return [e for e in logs if e["event"] == "wallet.providers_unavailable"]


async def test_its_last_answer_stands_while_inference_cannot_give_one() -> None:
    inference, clock = Inference(), Clock()
    providers = InferenceProviders(inference, clock=clock)
    answered = await providers.listed()
    inference.down = True
    clock.now += PROVIDERS_TTL_SECONDS

    with capture_logs() as logs:
        during = [await providers.listed() for _ in range(5)]

    assert during == [answered] * 5
    assert during[0].answered
    assert during[0].takes_no_key(LOCAL)
    assert inference.asked == 2  # one question for the five
    (warned,) = warnings(logs)
    assert warned["using"] == "the last list"


async def test_a_failure_is_kept_a_few_seconds_then_asked_again() -> None:
    inference, clock = Inference(down=True), Clock()
    providers = InferenceProviders(inference, clock=clock)

    with capture_logs() as logs:
        assert await providers.listed() == Listed(ProviderList(KNOWN_PROVIDERS), answered=False)
        clock.now += PROVIDERS_RETRY_SECONDS - 0.1
        assert not (await providers.listed()).answered
        assert inference.asked == 1
        inference.down = False
        clock.now += 0.1
        assert (await providers.listed()).answered

    assert inference.asked == 2
    (warned,) = warnings(logs)
    assert (warned["using"], warned["retry_in_seconds"]) == (
        "built-in providers",
        PROVIDERS_RETRY_SECONDS,
    )


async def test_callers_at_once_share_one_failing_question() -> None:
    """None kept yet: they wait for the question, and take its outcome, not ask in turn."""
    inference = Inference(down=True, gate=asyncio.Event())
    providers = InferenceProviders(inference, clock=Clock())
    waiting = [asyncio.create_task(providers.listed()) for _ in range(8)]
    await inference.started.wait()
    assert inference.gate is not None
    inference.gate.set()

    with capture_logs() as logs:
        listed = await asyncio.gather(*waiting)

    assert listed == [Listed(ProviderList(KNOWN_PROVIDERS), answered=False)] * 8
    assert inference.asked == 1
    assert len(warnings(logs)) == 1


async def test_callers_take_the_last_answer_while_one_asks_again() -> None:
    """A hung inference holds only the caller that asks (its deadline); the others go on
    with the last answer."""
    inference, clock = Inference(), Clock()
    providers = InferenceProviders(inference, clock=clock)
    answered = await providers.listed()
    clock.now += PROVIDERS_TTL_SECONDS
    inference.gate = asyncio.Event()
    inference.started.clear()
    asking = asyncio.create_task(providers.listed())
    await inference.started.wait()

    others = await asyncio.wait_for(
        asyncio.gather(*(providers.listed() for _ in range(8))), timeout=1
    )

    assert others == [answered] * 8
    assert inference.asked == 2
    inference.gate.set()
    assert await asking == answered


@pytest.mark.parametrize(
    ("provider", "keyless"),
    [
        ("openrouter", False),  # built in, paid with a key
        ("anthropic", False),
        ("kokoro", True),  # a built-in local speech server
        (LOCAL, None),  # the operator's own: it may take none
        ("ollama", None),  # a local server, unless the operator gave it a key
    ],
)
async def test_while_nobody_can_say_only_a_built_in_provider_is_known(
    provider: str, keyless: bool | None
) -> None:
    providers = InferenceProviders(Inference(down=True), clock=Clock())
    assert (await providers.listed()).keyless_of(provider) is keyless


@pytest.mark.parametrize(
    ("provider", "keyless"), [("openrouter", False), (LOCAL, True), ("ollama", True)]
)
async def test_inferences_answer_says_which_take_no_key(provider: str, keyless: bool) -> None:
    providers = InferenceProviders(Inference(), clock=Clock())
    assert (await providers.listed()).keyless_of(provider) is keyless
