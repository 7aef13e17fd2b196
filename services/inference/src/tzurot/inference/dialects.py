"""What one provider call looks like for a provider and a model family. Pure functions.

Two axes decide the request:
- the **provider's dialect** (by the host of its base URL when it is a known vendor's, else by
  provider name, so an operator's provider pointing at api.openai.com speaks OpenAI's): which
  parameters its endpoint understands,
  and how it spells reasoning (`openrouter`: everything plus routing and a `reasoning` object;
  `openai`: `reasoning_effort`, `max_completion_tokens`; `anthropic`: `thinking.budget_tokens`;
  `gemini`: `google.thinking_config`; anything else: the plain OpenAI parameters plus the
  sampling extras local servers such as vLLM, Ollama and LM Studio accept);
- the **model family** (from the model id): OpenAI reasoning models (o1/o3/o4, gpt-5) take no
  system role and no sampling parameters; Claude with thinking needs temperature 1 and a
  thinking budget below max tokens; Gemini thinks by budget (2.5, within each model's range:
  `GEMINI_BUDGETS`) or by level (3).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from tzurot.inference.params import SAMPLING_NAMES, AdvancedParameters, ThinkingLevel
from tzurot.inference.prompt import ChatMessage
from tzurot.runtime.errors import InvalidArgument

Family = Literal["openai_reasoning", "claude", "gemini", "other"]
Dialect = Literal["openrouter", "openai", "anthropic", "gemini", "generic"]

THINKING_BUDGETS: dict[ThinkingLevel, int] = {
    "off": 0,
    "minimal": 1024,
    "low": 2048,
    "medium": 8192,
    "high": 16384,
    "max": 32768,
}


@dataclass(frozen=True)
class GeminiBudgets:
    """The thinking budgets a Gemini 2.5 model accepts (Google's "thinking" docs): `least` to
    `most`, or 0 (thinking off) where it can be turned off. (-1, dynamic, is never sent: a
    level or budget is.)"""

    least: int
    most: int
    can_turn_off: bool

    def fit(self, budget: int, *, on: bool) -> int:
        """The budget the model accepts nearest to `budget`: "off" is 0, or the least where
        thinking cannot be turned off (2.5 Pro); "max" and any budget above is the most."""
        if not on:
            return 0 if self.can_turn_off else self.least
        return min(max(budget, self.least), self.most)


GEMINI_BUDGETS: dict[str, GeminiBudgets] = {
    # Longest prefix first: flash-lite before flash.
    "gemini-2.5-flash-lite": GeminiBudgets(512, 24576, can_turn_off=True),
    "gemini-2.5-flash": GeminiBudgets(1, 24576, can_turn_off=True),
    "gemini-2.5-pro": GeminiBudgets(128, 32768, can_turn_off=False),
}
CLAUDE_MIN_BUDGET = 1024
CLAUDE_ANSWER_TOKENS = 4096
"""max_tokens for Claude with thinking when the config sets none: the budget plus this."""
_EFFORTS: dict[ThinkingLevel, str] = {
    "minimal": "low",
    "low": "low",
    "medium": "medium",
    "high": "high",
    "max": "high",
}
_LEVEL_OF_EFFORT: dict[str, ThinkingLevel] = {
    "minimal": "minimal",
    "low": "low",
    "medium": "medium",
    "high": "high",
}
_SAMPLING_REJECTED_BY_REASONING = frozenset(SAMPLING_NAMES) - {"seed"}
_SAMPLING_BY_DIALECT: dict[Dialect, frozenset[str]] = {
    "openrouter": frozenset(SAMPLING_NAMES),
    "openai": frozenset({"temperature", "top_p", "frequency_penalty", "presence_penalty", "seed"}),
    "anthropic": frozenset({"temperature", "top_p"}),
    "gemini": frozenset({"temperature", "top_p", "frequency_penalty", "presence_penalty", "seed"}),
    "generic": frozenset(
        {
            "temperature",
            "top_p",
            "top_k",
            "min_p",
            "frequency_penalty",
            "presence_penalty",
            "repetition_penalty",
            "seed",
        }
    ),
}


_DIALECT_OF_HOST: tuple[tuple[str, Dialect], ...] = (
    ("openrouter.ai", "openrouter"),
    ("api.openai.com", "openai"),
    (".openai.azure.com", "openai"),  # Azure OpenAI takes OpenAI's parameters
    ("api.anthropic.com", "anthropic"),
    ("generativelanguage.googleapis.com", "gemini"),
)


def dialect_of(provider: str, base_url: str = "") -> Dialect:
    """The vendor answering at `base_url`'s host when it is a known one (an operator's
    provider named anything); else the built-in provider's name; else "generic"."""
    host = (urlsplit(base_url).hostname or "").lower()
    for suffix, dialect in _DIALECT_OF_HOST:
        if host == suffix.lstrip(".") or (suffix.startswith(".") and host.endswith(suffix)):
            return dialect
    if provider in ("openrouter", "openai", "anthropic", "gemini"):
        return provider  # type: ignore[return-value]  # narrowed by the membership test
    return "generic"


def family_of(model: str) -> Family:
    bare = model.rsplit("/", 1)[-1].lower()
    if bare.startswith(("o1", "o3", "o4")) or (bare.startswith("gpt-5") and "chat" not in bare):
        return "openai_reasoning"
    if "claude" in bare:
        return "claude"
    if "gemini" in bare:
        return "gemini"
    return "other"


@dataclass(frozen=True)
class Thinking:
    """How much the model should think: a level, an explicit budget, and whether to hide it."""

    level: ThinkingLevel | None = None
    budget: int | None = None
    exclude: bool = False

    @property
    def on(self) -> bool:
        if self.budget is not None:
            return self.budget > 0
        return self.level is not None and self.level != "off"

    def budget_tokens(self) -> int:
        if self.budget is not None:
            return self.budget
        return THINKING_BUDGETS[self.level or "off"]

    def effort(self) -> str:
        if self.level is not None and self.level != "off":
            return _EFFORTS[self.level]
        budget = self.budget_tokens()
        return "low" if budget <= 2048 else "medium" if budget <= 8192 else "high"


def thinking_of(params: AdvancedParameters) -> Thinking:
    """One thinking setting from `thinking_level` (wins) or OpenRouter's `reasoning` object."""
    reasoning = params.reasoning
    exclude = reasoning.exclude if reasoning else False
    if params.thinking_level is not None:
        return Thinking(level=params.thinking_level, exclude=exclude)
    if reasoning is None:
        return Thinking()
    if reasoning.enabled is False:
        return Thinking(level="off", exclude=exclude)
    if reasoning.max_tokens is not None:
        return Thinking(budget=reasoning.max_tokens, exclude=exclude)
    if reasoning.effort is not None:
        return Thinking(level=_LEVEL_OF_EFFORT[reasoning.effort], exclude=exclude)
    return Thinking(level="medium" if reasoning.enabled else None, exclude=exclude)


@dataclass(frozen=True)
class ProviderCall:
    """Everything sent besides model, stream and stream_options."""

    messages: list[ChatMessage]
    body: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)


def build_call(
    provider: str,
    model: str,
    params: AdvancedParameters,
    messages: Sequence[ChatMessage],
    *,
    temperature_boost: float = 0.0,
    frequency_boost: float = 0.0,
    base_url: str = "",
) -> ProviderCall:
    """The request for `model` on `provider` (at `base_url`, which may decide the dialect);
    the boosts are the repeat-retry's nudges."""
    dialect, family, thinking = (
        dialect_of(provider, base_url),
        family_of(model),
        thinking_of(params),
    )
    sampling = {
        name: value
        for name, value in params.sampling().items()
        if name in _SAMPLING_BY_DIALECT[dialect]
    }
    if family != "openai_reasoning":
        _boost(sampling, dialect, temperature_boost, frequency_boost)
    body: dict[str, Any] = {}
    if family == "openai_reasoning":
        sampling = {k: v for k, v in sampling.items() if k not in _SAMPLING_REJECTED_BY_REASONING}
    body.update(sampling)
    _output(body, params, dialect, family)
    _reasoning(body, dialect, family, thinking, params, model)
    if dialect == "openrouter":
        body.update(params.routing())
    return ProviderCall(
        messages=shape_messages(messages, model),
        body=body,
        headers=dict(params.extra_headers or {}),
    )


def helper_call(
    messages: Sequence[ChatMessage], model: str, *, temperature: float | None = None
) -> ProviderCall:
    """A helper model's request (fact extraction, a transcript's clean-up): the roles `model`
    accepts and `temperature`, which OpenAI's reasoning models refuse unless it is 1 (400
    `unsupported_value`): left out for them."""
    body: dict[str, Any] = {}
    if temperature is not None and family_of(model) != "openai_reasoning":
        body["temperature"] = temperature
    return ProviderCall(messages=shape_messages(messages, model), body=body)


def _boost(
    sampling: dict[str, Any], dialect: Dialect, temperature: float, frequency: float
) -> None:
    if temperature:
        sampling["temperature"] = min(2.0, round(sampling.get("temperature", 0.7) + temperature, 3))
    if frequency and "frequency_penalty" in _SAMPLING_BY_DIALECT[dialect]:
        current = sampling.get("frequency_penalty", 0.0)
        sampling["frequency_penalty"] = min(2.0, round(current + frequency, 3))


def _output(
    body: dict[str, Any], params: AdvancedParameters, dialect: Dialect, family: Family
) -> None:
    if params.max_tokens is not None:
        native_reasoning = family == "openai_reasoning" and dialect != "openrouter"
        body["max_completion_tokens" if native_reasoning else "max_tokens"] = params.max_tokens
    if params.stop is not None and family != "openai_reasoning":
        body["stop"] = params.stop
    if params.response_format is not None:
        body["response_format"] = params.response_format.model_dump(exclude_none=True)


def _reasoning(  # noqa: PLR0917  # private; every argument is needed
    body: dict[str, Any],
    dialect: Dialect,
    family: Family,
    thinking: Thinking,
    params: AdvancedParameters,
    model: str,
) -> None:
    if thinking.level is None and thinking.budget is None:
        return
    if family == "claude":
        _claude_thinking(body, dialect, thinking, params)
    elif dialect == "openrouter":
        if not thinking.on:
            body["reasoning"] = {"enabled": False}
        elif family == "gemini" or thinking.budget is not None:
            body["reasoning"] = {"max_tokens": thinking.budget_tokens()}
        else:
            body["reasoning"] = {"effort": thinking.effort()}
        if thinking.exclude:
            body["reasoning"]["exclude"] = True
    elif family == "openai_reasoning":
        # These models always reason; "off" is the least they offer.
        body["reasoning_effort"] = thinking.effort() if thinking.on else "low"
    elif family == "gemini" and dialect == "gemini":
        body["extra_body"] = {"google": {"thinking_config": _gemini_config(thinking, model)}}


def _gemini_config(thinking: Thinking, model: str) -> dict[str, Any]:
    """Gemini 3 takes a level (low/high); 2.5 a budget within the model's range (a budget out
    of it is a 400: `GeminiBudgets.fit`)."""
    config: dict[str, Any] = {"include_thoughts": thinking.on and not thinking.exclude}
    if "gemini-3" in model.lower():
        high = thinking.on and thinking.budget_tokens() > THINKING_BUDGETS["low"]
        config["thinking_level"] = "high" if high else "low"
        return config
    budget = thinking.budget_tokens()
    budgets = gemini_budgets(model)
    config["thinking_budget"] = budget if budgets is None else budgets.fit(budget, on=thinking.on)
    return config


def gemini_budgets(model: str) -> GeminiBudgets | None:
    """The budgets of a Gemini 2.5 model (preview names too); None for another model."""
    bare = model.rsplit("/", 1)[-1].lower()
    return next((b for prefix, b in GEMINI_BUDGETS.items() if bare.startswith(prefix)), None)


def _claude_thinking(
    body: dict[str, Any], dialect: Dialect, thinking: Thinking, params: AdvancedParameters
) -> None:
    if not thinking.on:
        return
    budget = max(CLAUDE_MIN_BUDGET, thinking.budget_tokens())
    max_tokens = params.max_tokens
    if max_tokens is None:
        max_tokens = budget + CLAUDE_ANSWER_TOKENS
    elif max_tokens <= CLAUDE_MIN_BUDGET:
        raise InvalidArgument(
            "config.config.advanced_parameters.max_tokens",
            f"Claude thinking needs max_tokens above {CLAUDE_MIN_BUDGET} (the least budget)",
            reason="INVALID_ADVANCED_PARAMETER",
        )
    budget = min(budget, max_tokens - 1)
    body["max_tokens"] = max_tokens
    body["temperature"] = 1.0  # Anthropic rejects any other temperature while thinking
    body.pop("top_p", None)
    body.pop("top_k", None)
    if dialect == "openrouter":
        body["reasoning"] = {
            "max_tokens": budget,
            **({"exclude": True} if thinking.exclude else {}),
        }
    else:
        body["thinking"] = {"type": "enabled", "budget_tokens": budget}


def shape_messages(messages: Sequence[ChatMessage], model: str) -> list[ChatMessage]:
    """Roles the model accepts.

    OpenAI reasoning models take `developer` instead of `system` (o1-mini and o1-preview take
    neither: the instructions go in front of the first user message). Claude and Gemini
    endpoints hoist every system message to the top, which would move the volatile context
    into the cached prefix: after the first, system messages travel as user messages.
    """
    family = family_of(model)
    bare = model.rsplit("/", 1)[-1].lower()
    if family == "openai_reasoning" and bare.startswith(("o1-mini", "o1-preview")):
        return _fold_system_into_user(messages)
    shaped: list[ChatMessage] = []
    for index, message in enumerate(messages):
        if message["role"] != "system":
            shaped.append(message)
        elif family == "openai_reasoning":
            shaped.append({**message, "role": "developer"})
        elif family in ("claude", "gemini") and index > 0:
            shaped.append({**message, "role": "user"})
        else:
            shaped.append(message)
    return shaped


def _fold_system_into_user(messages: Sequence[ChatMessage]) -> list[ChatMessage]:
    shaped: list[ChatMessage] = []
    pending: list[str] = []
    for message in messages:
        if message["role"] == "system":
            pending.append(str(message["content"]))
            continue
        if pending and message["role"] == "user":
            shaped.append({**message, "content": _prepend("\n\n".join(pending), message)})
            pending = []
        else:
            shaped.append(message)
    if pending:
        shaped.append({"role": "user", "content": "\n\n".join(pending)})
    return shaped


def _prepend(text: str, message: ChatMessage) -> Any:
    content = message["content"]
    if content is None:
        return text
    if isinstance(content, str):
        return f"{text}\n\n{content}"
    return [{"type": "text", "text": text}, *content]


_VISION_HINTS = (
    "gpt-4o",
    "gpt-4.1",
    "gpt-4-turbo",
    "gpt-5",
    "o3",
    "o4",
    "claude-3",
    "claude-sonnet-4",
    "claude-opus-4",
    "claude-haiku-4",
    "gemini",
    "gemma-3",
    "llava",
    "vision",
    "-vl",
    "pixtral",
    "llama-4",
    "grok-4",
)


def supports_vision(model: str, params: AdvancedParameters) -> bool:
    """From the config's `vision` flag, else from the model's name (a known vision family)."""
    if params.vision is not None:
        return params.vision
    bare = model.rsplit("/", 1)[-1].lower()
    return any(hint in bare for hint in _VISION_HINTS)
