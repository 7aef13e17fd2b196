"""`InferenceProviders.known()`: the list at once, inference asked again in the background when
it is stale. A refresh that fails is kept `retry` seconds whatever it failed with (review 353
L3: only a TzurotError was, so anything else, a closed channel's UsageError or a bug, had every
later call ask again, one question and one traceback each)."""

from __future__ import annotations

import asyncio
from typing import Any

from structlog.testing import capture_logs

from tzurot.gateway.provider_list import KNOWN_PROVIDERS, InferenceProviders, ProviderList
from tzurot.runtime.errors import Unavailable


class Failing:
    def __init__(self, error: Exception) -> None:
        self.error = error
        self.asked = 0

    async def list_providers(self) -> ProviderList:
        self.asked += 1
        raise self.error


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def calls(providers: InferenceProviders, times: int) -> None:
    for _ in range(times):
        assert providers.known().names == KNOWN_PROVIDERS  # the built-in list, at once
        for _ in range(3):  # the background refresh runs to its end
            await asyncio.sleep(0)


async def test_a_refresh_failing_with_anything_is_kept_a_few_seconds() -> None:
    for error in (RuntimeError("a bug"), Unavailable("inference is restarting")):
        inference, clock = Failing(error), Clock()
        providers = InferenceProviders(inference, retry=30.0, clock=clock)
        with capture_logs() as logs:
            await calls(providers, 50)
        assert inference.asked == 1, error
        assert len(logs) == 1, logs
        clock.now += 30.0  # then asked again
        await calls(providers, 5)
        assert inference.asked == 2


async def test_a_refresh_failing_with_a_bug_logs_it_as_an_error() -> None:
    providers = InferenceProviders(Failing(RuntimeError("a bug")), clock=Clock())
    with capture_logs() as logs:
        await calls(providers, 1)
    (entry,) = logs
    logged: dict[str, Any] = dict(entry)
    assert logged["event"] == "wallet.providers_refresh_failed"
    assert logged["log_level"] == "error"
