"""The wallet's Brave Search keys (inference wallet_keys.py) against the fake Brave over HTTP.

Brave has no free call that proves a key: a new key is checked for its form only and sent
nowhere; a stored key is proven with one search (count=1). A key Brave refuses is
INVALID_API_KEY named as the user's (gateway marks it inactive); Brave's error text is never
quoted.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, cast

import httpx2 as httpx
import pytest
from pydantic import SecretStr

from tzurot.inference.keys import KeyResolver
from tzurot.inference.providers import ProviderRegistry
from tzurot.inference.server import InferenceServicer
from tzurot.inference.skills.search import BRAVE_CHECK_QUERY, BraveSearch
from tzurot.inference.wallet_keys import BraveKeys, ServiceKeyCheck, wallet_providers
from tzurot.runtime.errors import (
    FailedPrecondition,
    InvalidArgument,
    ResourceExhausted,
    TzurotError,
    Unavailable,
)
from tzurot.testing.fake_web import FakeBrave
from tzurot.v1 import inference_pb2 as inf

BRAVE_KEY = "BSAplantedBraveKey0q7f3e9c1"
REFUSED_KEY = "BSArefusedBraveKey5Hj2Qw9Zx"
USER = "3f1f9a8e-8c1e-4d5b-9a57-0f3c2b1a9d10"


class Vault:
    """KeyResolver's keyvault: the user's stored keys by provider."""

    def __init__(self, keys: dict[str, str]) -> None:
        self.keys = keys
        self.asked: list[tuple[str, str]] = []

    async def decrypt(self, user_id: str, provider: str) -> SecretStr | None:
        self.asked.append((user_id, provider))
        key = self.keys.get(provider) if user_id == USER else None
        return SecretStr(key) if key is not None else None


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5.0) as client:
        yield client


def brave_keys(http: httpx.AsyncClient, url: str, stored: str | None = BRAVE_KEY) -> BraveKeys:
    vault = Vault({"brave": stored} if stored is not None else {})
    return BraveKeys(BraveSearch(http, url), KeyResolver(vault), offered=True)


def leaked(err: TzurotError, *texts: str) -> bool:
    said = f"{err!r} {err} {err.metadata}"
    return any(text in said for text in texts)


async def test_a_new_key_is_checked_for_its_form_only(http: httpx.AsyncClient) -> None:
    async with FakeBrave({BRAVE_KEY}) as brave:
        checked = await brave_keys(http, brave.base_url).check_key(SecretStr(REFUSED_KEY))
        assert checked == ServiceKeyCheck(unchecked=True)
        assert brave.requests == []  # nothing spent, nothing sent
        with pytest.raises(InvalidArgument) as caught:
            await brave_keys(http, brave.base_url).check_key(SecretStr("BSA key\nwith a break"))
        assert caught.value.field == "api_key"
        assert brave.requests == []


async def test_a_stored_key_is_proven_with_one_search(http: httpx.AsyncClient) -> None:
    async with FakeBrave({BRAVE_KEY}) as brave:
        checked = await brave_keys(http, brave.base_url).check_stored_key(USER)
        assert checked == ServiceKeyCheck(billed_requests=1)
        [request] = brave.requests
        assert request.startswith("/res/v1/web/search?")
        assert "count=1" in request
        assert brave.queries == [BRAVE_CHECK_QUERY]
        assert brave.billed == 1


async def test_a_stored_key_brave_refuses_is_the_users_invalid_key(
    http: httpx.AsyncClient,
) -> None:
    """422 SUBSCRIPTION_TOKEN_INVALID, as Brave answers an unknown token."""
    async with FakeBrave({BRAVE_KEY}) as brave:
        with pytest.raises(FailedPrecondition) as caught:
            await brave_keys(http, brave.base_url, stored=REFUSED_KEY).check_stored_key(USER)
    err = caught.value
    assert err.reason == "INVALID_API_KEY"
    assert err.metadata == {"provider": "brave", "key_source": "user"}
    assert err.message == (
        "brave rejected the API key (HTTP 422); update it with /wallet set brave"
    )
    assert not leaked(err, REFUSED_KEY[:10], "subscription token is invalid")


@pytest.mark.parametrize("status", [401, 403])
async def test_a_401_or_403_is_a_refused_key_too(http: httpx.AsyncClient, status: int) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json={"error": {"detail": f"bad {REFUSED_KEY}"}})

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as mocked:
        with pytest.raises(FailedPrecondition) as caught:
            await brave_keys(mocked, "http://brave.test/res/v1").check_stored_key(USER)
    assert caught.value.reason == "INVALID_API_KEY"
    assert f"HTTP {status}" in caught.value.message
    assert not leaked(caught.value, REFUSED_KEY[:10])


async def test_a_spent_quota_and_a_rate_limit_are_told_apart(http: httpx.AsyncClient) -> None:
    async with FakeBrave({BRAVE_KEY}, per_month=0) as brave:
        with pytest.raises(ResourceExhausted) as used_up:
            await brave_keys(http, brave.base_url).check_stored_key(USER)
    assert used_up.value.reason == "PROVIDER_QUOTA_EXCEEDED"
    assert used_up.value.message.startswith("Brave Search's monthly quota for this key is used up")
    async with FakeBrave({BRAVE_KEY}, per_second=0) as brave:
        with pytest.raises(ResourceExhausted) as too_fast:
            await brave_keys(http, brave.base_url).check_stored_key(USER)
    assert too_fast.value.reason == "PROVIDER_RATE_LIMITED"


async def test_an_unreachable_brave_or_an_odd_answer_is_unavailable(
    http: httpx.AsyncClient,
) -> None:
    async with FakeBrave({BRAVE_KEY}) as brave:
        url = brave.base_url
    with pytest.raises(Unavailable) as caught:
        await brave_keys(http, url).check_stored_key(USER)
    assert caught.value.message == "Brave Search could not be reached"

    def odd(request: httpx.Request) -> httpx.Response:
        return httpx.Response(422, json={"error": {"code": "weird text " + BRAVE_KEY}})

    async with httpx.AsyncClient(transport=httpx.MockTransport(odd)) as mocked:
        with pytest.raises(Unavailable) as caught:
            await brave_keys(mocked, "http://brave.test/res/v1").check_stored_key(USER)
    assert caught.value.message == "Brave Search could not check the key (HTTP 422)"
    assert not leaked(caught.value, BRAVE_KEY[:10], "weird")


async def test_no_stored_key_is_no_api_key(http: httpx.AsyncClient) -> None:
    async with FakeBrave({BRAVE_KEY}) as brave:
        with pytest.raises(FailedPrecondition) as caught:
            await brave_keys(http, brave.base_url, stored=None).check_stored_key(USER)
        assert caught.value.reason == "NO_API_KEY"
        assert brave.requests == []


def test_the_wallets_providers_are_the_registrys_and_the_services_configured() -> None:
    names = ProviderRegistry({"groq": "http://groq.test/v1"}).names
    assert wallet_providers(names, voice=False, brave=False) == names
    listed = wallet_providers(names, voice=True, brave=True)
    assert listed == sorted({*names, "elevenlabs", "brave"})
    assert "groq" in listed


class Inference:
    def provider_names(self) -> list[str]:
        return ["openrouter", "groq"]

    def speech_provider_names(self) -> list[str]:
        return []

    def keyless_provider_names(self) -> list[str]:
        return []


async def test_the_servicer_lists_brave_only_when_web_research_uses_it(
    http: httpx.AsyncClient,
) -> None:
    search = BraveSearch(http, "http://brave.test/res/v1")
    keys = KeyResolver(Vault({}))
    request = inf.ListProvidersRequest()
    for offered, listed in (
        (True, ["brave", "groq", "openrouter"]),
        (False, ["groq", "openrouter"]),
    ):
        servicer = InferenceServicer(
            cast(Any, Inference()), brave=BraveKeys(search, keys, offered=offered)
        )
        answer = await servicer.ListProviders(request, cast(Any, None))
        assert list(answer.providers) == listed
