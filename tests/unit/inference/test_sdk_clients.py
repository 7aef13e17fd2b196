"""SdkClients: one openai client per base URL and kind, bounded, holding no user's key, and
never retrying on its own (retries.py decides)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx2
import pytest

from tzurot.inference.sdk_clients import KEY_CHECK_TIMEOUT_SECONDS, NO_SHARED_KEY, SdkClients


@pytest.fixture
async def http() -> AsyncIterator[httpx2.AsyncClient]:
    async with httpx2.AsyncClient() as client:
        yield client


async def test_one_client_per_base_url_and_kind(http: httpx2.AsyncClient) -> None:
    clients = SdkClients(http, timeout=30.0)
    first = clients.get("http://127.0.0.1:9/v1")
    assert clients.get("http://127.0.0.1:9/v1") is first
    other = clients.get("http://127.0.0.1:9/v2")  # an overridden provider's new URL
    check = clients.get("http://127.0.0.1:9/v1", quick=True)
    assert len({id(first), id(other), id(check)}) == 3
    assert (first.max_retries, check.max_retries) == (0, 0)  # set once, never per call
    assert (first.timeout, check.timeout) == (30.0, KEY_CHECK_TIMEOUT_SECONDS)
    assert len(clients) == 3


async def test_clients_hold_no_users_key(http: httpx2.AsyncClient) -> None:
    client = SdkClients(http, timeout=5.0).get("http://127.0.0.1:9/v1")
    assert client.api_key == NO_SHARED_KEY


async def test_bounded_least_recently_used_first_out(http: httpx2.AsyncClient) -> None:
    clients = SdkClients(http, timeout=5.0, limit=3)
    kept = clients.get("http://127.0.0.1:9/a")
    for name in "bcd":
        clients.get("http://127.0.0.1:9/a")  # used again: not the oldest
        clients.get(f"http://127.0.0.1:9/{name}")
    assert len(clients) == 3
    assert clients.get("http://127.0.0.1:9/a") is kept
    assert len(clients) == 3
