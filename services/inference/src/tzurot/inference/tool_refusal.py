"""A provider's refusal of a request because it offered tools: an answer (the model has no
tool use, the loop goes on without skills), told apart from every other error by its known
wordings only."""

from __future__ import annotations

import re

import openai

from tzurot.inference.dialects import ProviderCall


class ToolsUnsupported(Exception):  # an answer, not a failure
    """The provider refused a request because it carried tools (the model cannot use them).

    `routed`: the request carried the user's own routing parameters (OpenRouter's
    `provider`, `models`, `route`), which may be what left no endpoint with tool use."""

    def __init__(self, provider: str, model: str, *, routed: bool = False) -> None:
        super().__init__(provider, model)
        self.routed = routed


_TOOL_REFUSAL = re.compile(
    r"no endpoints found that support tool use"  # OpenRouter, 404
    r"|does not support (?:tools|tool use|tool calling|function calling)"  # Ollama; DeepSeek
    r"|(?:tool|function) calling is not (?:supported|enabled)"  # Mistral, Groq
    r"|tool choice requires --enable-auto-tool-choice"  # vLLM without a tool parser
    r"|tools param requires --jinja",  # llama.cpp's server
    re.IGNORECASE,
)
_NEVER_A_TOOL_REFUSAL = frozenset({"context_length_exceeded"})
"""Codes whose message may name functions or tools without meaning the model lacks them
(OpenAI: "…1000 in the functions. Please reduce the length of the messages or functions")."""
USER_ROUTING = ("provider", "models", "route")
"""Request fields that are the user's own routing (OpenRouter): they can exclude every
endpoint with tool use, so a refusal under them says nothing about the model."""


def refuses_tools(exc: openai.OpenAIError, call: ProviderCall) -> bool:
    """A 400/404 in a known wording (or OpenAI's `unsupported_parameter` on `tools`), for a
    request that offered tools: the model has no tool use.

    Only known refusals count: any message that merely names a tool or a function (a context
    overflow, a malformed call in the history) is an ordinary error. The provider's text is
    only looked at, never repeated.
    """
    if not ("tools" in call.body and isinstance(exc, openai.APIStatusError)):
        return False
    if exc.status_code not in (400, 404) or exc.code in _NEVER_A_TOOL_REFUSAL:
        return False
    if exc.code == "unsupported_parameter" and exc.param == "tools":  # OpenAI
        return True
    return bool(_TOOL_REFUSAL.search(str(exc.message)))
