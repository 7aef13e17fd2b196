"""The SDK clients on the process's one connection pool: one `AsyncOpenAI` per base URL and
kind, without a key (each request carries its caller's: `auth_headers`) and without the SDK's
own retries (retries.py decides who asks again)."""

from __future__ import annotations

from collections import OrderedDict

import httpx2
import openai
from pydantic import SecretStr

from tzurot.inference.providers import Provider

SDK_RETRIES = 0
"""The openai SDK's own retries, for every client: see retries.py for who asks again."""
KEY_CHECK_TIMEOUT_SECONDS = 15.0
MAX_CLIENTS = 32
"""SDK clients kept (one per base URL and kind); the least recently used goes first."""
NO_SHARED_KEY = "per-request"
"""The shared clients' own key, never sent: every request sets its caller's key."""


def auth_headers(api_key: SecretStr) -> dict[str, str]:
    """The request's own Authorization header (overrides the shared client's)."""
    return {"Authorization": f"Bearer {api_key.get_secret_value()}"}


class SdkClients:
    """One `AsyncOpenAI` per base URL and kind (a call, or a key check: within 15 s), on the
    shared pool, without a key and without the SDK's retries; at most `limit`, least
    recently used first out."""

    def __init__(
        self,
        http: httpx2.AsyncClient,
        *,
        timeout: float,
        limit: int = MAX_CLIENTS,
    ) -> None:
        self._http = http
        self._timeout = timeout
        self._limit = limit
        self._clients: OrderedDict[tuple[str, bool], openai.AsyncOpenAI] = OrderedDict()

    def __len__(self) -> int:
        return len(self._clients)

    def get(self, base_url: str, *, quick: bool = False) -> openai.AsyncOpenAI:
        slot = (base_url, quick)
        client = self._clients.get(slot)
        if client is not None:
            self._clients.move_to_end(slot)
            return client
        client = openai.AsyncOpenAI(
            base_url=base_url,
            api_key=NO_SHARED_KEY,
            max_retries=SDK_RETRIES,  # on the client: `.create()` can only change it by a copy
            timeout=min(self._timeout, KEY_CHECK_TIMEOUT_SECONDS) if quick else self._timeout,
            http_client=self._http,
        )
        self._clients[slot] = client
        if len(self._clients) > self._limit:  # the pool is shared: nothing to close
            self._clients.popitem(last=False)
        return client


class ProviderClients:
    """A provider's SDK client, for the calls of a class that holds `SdkClients`."""

    _clients: SdkClients

    def _client(self, provider: Provider, *, quick: bool = False) -> openai.AsyncOpenAI:
        return self._clients.get(provider.base_url, quick=quick)
