"""What the fake provider answers with: scripted replies (text, reasoning, finish reason, tool
calls), the default echo of the last user message, token estimates, message content as text,
an answer cut into SSE word chunks, and deterministic embeddings (equal texts embed equally)."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tzurot.testing.fake_tools import ToolCallSpec

ReplyFn = Callable[[dict[str, Any]], "str | ScriptedReply"]


@dataclass(frozen=True)
class ScriptedReply:
    """One scripted answer: its text, a reasoning field streamed before it, the finish reason."""

    text: str
    reasoning: str = ""
    reasoning_field: str = "reasoning"
    finish_reason: str = "stop"
    tool_calls: tuple[ToolCallSpec, ...] = ()
    """Calls the model makes instead of answering (finish_reason becomes "tool_calls")."""


def echo_reply(body: dict[str, Any]) -> str:
    """The default answer: repeats the last user message."""
    for message in reversed(body.get("messages", [])):
        if message.get("role") == "user":
            return f"You said: {text_of(message.get('content'))}"
    return "You said nothing."


def estimate_tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / 4))


def text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts
        return " ".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


def words(text: str) -> list[str]:
    """Splits keeping the spaces, so the chunks join back to the exact text."""
    chunks: list[str] = []
    for word in text.split(" "):
        chunks.append(word if not chunks else " " + word)
    return [c for c in chunks if c]


def embed(text: str, dims: int) -> list[float]:
    """A deterministic unit vector from the text's words: equal texts embed equally."""
    vector = [0.0] * dims
    for word in text.lower().split():
        digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
        index = int.from_bytes(digest[:4], "big") % dims
        vector[index] += 1.0 if digest[4] & 1 else -1.0
    norm = math.sqrt(sum(v * v for v in vector)) or 1.0
    return [v / norm for v in vector]
