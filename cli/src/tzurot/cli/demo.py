"""`tzurot up --demo`: every provider points at a local fake LLM, so the mesh works offline.

The fake speaks the OpenAI HTTP protocol (see tzurot.testing.fake_provider), so inference runs
its real client code; it accepts any API key and any model, and answers by echoing.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

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
async def demo_provider() -> AsyncIterator[dict[str, str]]:
    """Runs the fake provider; yields the environment that points inference at it."""
    from tzurot.testing.fake_provider import FakeProvider  # a dev dependency, needed only here

    async with FakeProvider(reply=demo_reply, require_key=False, any_model=True) as fake:
        print(f"Demo LLM provider (fake, echoes) at {fake.base_url}")
        yield {
            "TZUROT_PROVIDERS": json.dumps({name: fake.base_url for name in PROVIDERS}),
            "TZUROT_SYSTEM_KEYS": json.dumps({name: DEMO_SYSTEM_KEY for name in PROVIDERS}),
            "TZUROT_FREE_MODELS": json.dumps(["*"]),
            # Every seed personality answers without a key (on the fake's system key).
            "TZUROT_DEMO_ALL_FREE": "true",
            "TZUROT_GUEST_USER_PER_DAY": "1000",
        }
