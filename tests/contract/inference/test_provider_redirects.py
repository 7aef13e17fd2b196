"""A provider's answer that redirects elsewhere is not followed (review 158 L5): the request,
with the user's key and extra headers, never reaches the other host, and a key check is not
proven by another host's model list."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from pydantic import SecretStr

from tzurot.inference.llm import LlmClient
from tzurot.inference.providers import Provider
from tzurot.runtime.errors import TzurotError

pytestmark = pytest.mark.contract


@pytest.fixture
async def hosts() -> AsyncIterator[tuple[str, list[str]]]:
    """A provider that redirects every call to a second host, which records what reaches it."""
    reached: list[str] = []

    async def elsewhere(request: web.Request) -> web.Response:
        reached.append(request.path)
        return web.json_response({"object": "list", "data": [{"id": "m", "object": "model"}]})

    other = web.Application()
    other.router.add_route("*", "/{tail:.*}", elsewhere)
    other_runner = web.AppRunner(other)
    await other_runner.setup()
    other_site = web.TCPSite(other_runner, "127.0.0.1", 0)
    await other_site.start()
    other_port = other_runner.addresses[0][1]

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPTemporaryRedirect(f"http://127.0.0.1:{other_port}{request.path}")

    provider = web.Application()
    provider.router.add_route("*", "/{tail:.*}", redirect)
    runner = web.AppRunner(provider)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/v1", reached
    finally:
        await runner.cleanup()
        await other_runner.cleanup()


async def test_a_key_check_does_not_follow_a_redirect(hosts: tuple[str, list[str]]) -> None:
    base_url, reached = hosts
    llm = LlmClient(timeout_seconds=5.0)
    try:
        with pytest.raises(TzurotError):
            await llm.count_models(Provider("fakeai", base_url), SecretStr("sk-user-key-0123"))
    finally:
        await llm.aclose()
    assert reached == []
