"""`tzurot up --demo`: every provider points at a local fake LLM, so the mesh works offline.

The fake speaks the OpenAI HTTP protocol (see tzurot.testing.fake_provider), so inference runs
its real client code; it accepts any API key and any model, and answers by echoing.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tzurot.testing.fake_provider import FakeProvider

PROVIDERS = ("openrouter", "openai", "anthropic", "gemini", "ollama", "vllm", "lmstudio")
DEMO_SYSTEM_KEY = "sk-demo-system-key"


def demo_reply(body: dict[str, Any]) -> str:
    """Says how much context arrived, then echoes the new message."""
    messages = body.get("messages", [])
    said = [m for m in messages if m.get("role") in ("user", "assistant")]
    earlier = max(len(said) - 1, 0)
    users = [m for m in said if m.get("role") == "user"]
    last = users[-1].get("content", "") if users else ""
    return f"(demo reply; {earlier} earlier messages in my prompt) I heard: {last}"


@asynccontextmanager
async def demo_provider(
    load_after: asyncio.Event | None = None,
) -> AsyncIterator[dict[str, str]]:
    """Runs the fake provider; yields the environment that points inference at it.

    Its address is bound first and the environment yielded at once. The fake itself
    (aiohttp, ~0.4 s of CPU to import) loads in a thread once `load_after` is set (at once
    without it): `up` sets it when the mesh is ready, so the stand-in for a vendor does not
    compete with the services' start for the CPU. A request that comes before the fake
    serves waits in the socket's backlog."""
    listener = socket.create_server(("127.0.0.1", 0))
    host, port = listener.getsockname()[:2]
    base_url = f"http://{host}:{port}/v1"
    serving = asyncio.create_task(_serve(listener, load_after))
    serving.add_done_callback(_report_failure)
    print(f"Demo LLM provider (fake, echoes) at {base_url}")
    try:
        yield {
            "TZUROT_PROVIDERS": json.dumps({name: base_url for name in PROVIDERS}),
            "TZUROT_SYSTEM_KEYS": json.dumps({name: DEMO_SYSTEM_KEY for name in PROVIDERS}),
            "TZUROT_FREE_MODELS": json.dumps(["*"]),
            # Every seed personality answers without a key (on the fake's system key).
            "TZUROT_DEMO_ALL_FREE": "true",
            "TZUROT_GUEST_USER_PER_DAY": "1000",
        }
    finally:
        serving.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await serving
        listener.close()


async def _serve(listener: socket.socket, load_after: asyncio.Event | None) -> None:
    """Serves on `listener` until cancelled."""
    if load_after is not None:
        await load_after.wait()
    # A dev dependency, needed only here; imported in a thread.
    fakes = await asyncio.to_thread(importlib.import_module, "tzurot.testing.fake_provider")
    provider: FakeProvider = fakes.FakeProvider(
        reply=demo_reply, require_key=False, any_model=True, sock=listener
    )
    async with provider:
        await asyncio.Event().wait()


def _report_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        print(f"tzurot up: the demo provider stopped: {task.exception()}", file=sys.stderr)
