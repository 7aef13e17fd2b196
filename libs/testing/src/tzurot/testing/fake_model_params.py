"""The fake provider's per-model parameter rules for chat completions, as the vendors refuse.

OpenAI's reasoning models (o1, o3, o4-mini, the gpt-5 family but `gpt-5-chat`), asked by their
own names (OpenAI's and Azure's endpoints; OpenRouter's `openai/o3` takes `max_tokens` and
translates it, so a slug with a `/` is left alone), refuse with a 400 `invalid_request_error`:
- `max_tokens`: "Unsupported parameter: 'max_tokens' is not supported with this model. Use
  'max_completion_tokens' instead." (code `unsupported_parameter`);
- a `temperature` other than 1: "Unsupported value: 'temperature' does not support 0.7 with
  this model. Only the default (1) value is supported." (code `unsupported_value`);
- a `top_p` other than 1: "Unsupported parameter: 'top_p' is not supported with this model.";
- `stop` on gpt-5, gpt-5-mini and gpt-5-nano: "Unsupported parameter: 'stop' is not supported
  with this model."

Gemini 2.5 (its OpenAI-compatible endpoint, `extra_body.google.thinking_config`) refuses a
`thinking_budget` outside the model's range with its list-shaped 400 (`INVALID_ARGUMENT`):
2.5 Pro 128-32768 and cannot turn thinking off (0: "Budget 0 is invalid. This model only works
in thinking mode."); 2.5 Flash 0-24576; 2.5 Flash-Lite 512-24576, or 0 to turn it off; -1
(dynamic) on all. Out of range: "The thinking budget N is invalid. Please choose a value
between LO and HI."

`check_model_parameters` raises the refusal as an aiohttp response, so the chat handler calls
it in one line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from aiohttp import web

DYNAMIC_BUDGET = -1


@dataclass(frozen=True)
class ThinkingRange:
    """A Gemini 2.5 model's thinking budgets: `low`..`high`, 0 when it can turn thinking off."""

    low: int
    high: int
    can_disable: bool

    def accepts(self, budget: int) -> bool:
        if budget == DYNAMIC_BUDGET or (budget == 0 and self.can_disable):
            return True
        return self.low <= budget <= self.high


GEMINI_THINKING_RANGES: dict[str, ThinkingRange] = {
    # Longest prefix first: "gemini-2.5-flash-lite" before "gemini-2.5-flash".
    "gemini-2.5-flash-lite": ThinkingRange(512, 24576, can_disable=True),
    "gemini-2.5-flash": ThinkingRange(1, 24576, can_disable=True),
    "gemini-2.5-pro": ThinkingRange(128, 32768, can_disable=False),
}


def thinking_range(model: str) -> ThinkingRange | None:
    """The range of a Gemini 2.5 model by its name (preview names included); else None."""
    bare = model.lower()
    return next(
        (r for prefix, r in GEMINI_THINKING_RANGES.items() if bare.startswith(prefix)), None
    )


def is_openai_reasoning(model: str) -> bool:
    """o1, o3, o4 and gpt-5 (not gpt-5-chat), by OpenAI's own model names."""
    name = model.lower()
    if "/" in name:
        return False
    return name.startswith(("o1", "o3", "o4")) or (
        name.startswith("gpt-5") and not name.startswith("gpt-5-chat")
    )


def _refuses_stop(model: str) -> bool:
    return model.lower().startswith(("gpt-5-2", "gpt-5-mini", "gpt-5-nano")) or (
        model.lower() == "gpt-5"
    )


def openai_reasoning_refusal(body: dict[str, Any], model: str) -> dict[str, Any] | None:
    """OpenAI's error object for a parameter this reasoning model refuses; None when fine."""
    if not is_openai_reasoning(model):
        return None
    if "max_tokens" in body:
        return _openai_error(
            "Unsupported parameter: 'max_tokens' is not supported with this model. Use "
            "'max_completion_tokens' instead.",
            "unsupported_parameter",
            "max_tokens",
        )
    temperature = body.get("temperature")
    if temperature is not None and temperature != 1:
        return _openai_error(
            f"Unsupported value: 'temperature' does not support {temperature} with this "
            "model. Only the default (1) value is supported.",
            "unsupported_value",
            "temperature",
        )
    top_p = body.get("top_p")
    if top_p is not None and top_p != 1:
        return _unsupported("top_p")
    if body.get("stop") is not None and _refuses_stop(model):
        return _unsupported("stop")
    return None


def _unsupported(param: str) -> dict[str, Any]:
    message = f"Unsupported parameter: '{param}' is not supported with this model."
    return _openai_error(message, "unsupported_parameter", param)


def _openai_error(message: str, code: str, param: str) -> dict[str, Any]:
    return {
        "error": {
            "message": message,
            "type": "invalid_request_error",
            "param": param,
            "code": code,
        }
    }


def gemini_thinking_refusal(body: dict[str, Any], model: str) -> list[dict[str, Any]] | None:
    """Gemini's list-shaped error for a thinking budget the model does not take; else None."""
    allowed = thinking_range(model)
    extra = body.get("extra_body")
    google = extra.get("google") if isinstance(extra, dict) else None
    config = google.get("thinking_config") if isinstance(google, dict) else None
    budget = config.get("thinking_budget") if isinstance(config, dict) else None
    if allowed is None or budget is None:
        return None
    if not isinstance(budget, int) or isinstance(budget, bool):
        message = f"Invalid value at 'generation_config.thinking_config.thinking_budget' ({budget})"
    elif allowed.accepts(budget):
        return None
    elif budget == 0:
        message = "Budget 0 is invalid. This model only works in thinking mode."
    else:
        message = (
            f"The thinking budget {budget} is invalid. Please choose a value between "
            f"{allowed.low} and {allowed.high}."
        )
    return [{"error": {"code": 400, "message": message, "status": "INVALID_ARGUMENT"}}]


def check_model_parameters(body: dict[str, Any], model: str) -> None:
    """Raises the vendor's 400 (an aiohttp response) for a parameter this model refuses."""
    refusal: object = openai_reasoning_refusal(body, model) or gemini_thinking_refusal(body, model)
    if refusal is not None:
        raise web.HTTPBadRequest(text=json.dumps(refusal), content_type="application/json")
