"""The schema of an LLM config's `advanced_parameters`: checked before any provider call.

Four groups, all optional, flat in one object (the shape OpenRouter and most OpenAI-compatible
servers accept): sampling, reasoning, output, routing. Anything unknown or out of range is
INVALID_ARGUMENT naming the field (`config.config.advanced_parameters.<path>`), so a typo in
a config fails loudly instead of silently sampling with defaults. Numbers arrive as protobuf
Struct doubles; whole numbers become ints again here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError, field_validator

from tzurot.runtime.errors import InvalidArgument

FIELD_PREFIX = "config.config.advanced_parameters"

ThinkingLevel = Literal["off", "minimal", "low", "medium", "high", "max"]
THINKING_LEVELS: tuple[ThinkingLevel, ...] = ("off", "minimal", "low", "medium", "high", "max")
Effort = Literal["minimal", "low", "medium", "high"]

_HEADER_NAME = re.compile(r"[A-Za-z0-9-]{1,64}")
_FORBIDDEN_HEADERS = frozenset(
    {"authorization", "api-key", "x-api-key", "cookie", "host", "content-length", "content-type"}
)

_UNION_TAGS = frozenset({"str", "list[str]", "int", "float", "bool", "dict[str,any]"})
Unit = Annotated[float, Field(ge=0.0, le=1.0)]
Penalty = Annotated[float, Field(ge=-2.0, le=2.0)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, strict=True)


class Reasoning(_Strict):
    """OpenRouter's `reasoning` object: an effort or a token budget, and whether to hide it."""

    effort: Effort | None = None
    max_tokens: int | None = Field(default=None, ge=0, le=200_000)
    exclude: StrictBool = False
    enabled: StrictBool | None = None


class ResponseFormat(_Strict):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: dict[str, Any] | None = None


class ProviderRouting(_Strict):
    """OpenRouter's `provider` preferences."""

    order: list[str] | None = Field(default=None, max_length=20)
    only: list[str] | None = Field(default=None, max_length=20)
    ignore: list[str] | None = Field(default=None, max_length=20)
    allow_fallbacks: StrictBool | None = None
    require_parameters: StrictBool | None = None
    data_collection: Literal["allow", "deny"] | None = None
    sort: Literal["price", "throughput", "latency"] | None = None
    quantizations: list[str] | None = Field(default=None, max_length=10)


SAMPLING_NAMES = (
    "temperature",
    "top_p",
    "top_k",
    "min_p",
    "top_a",
    "frequency_penalty",
    "presence_penalty",
    "repetition_penalty",
    "seed",
)
"""Every sampling parameter the schema accepts, by its wire name."""


class AdvancedParameters(_Strict):
    # sampling
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: Unit | None = None
    top_k: int | None = Field(default=None, ge=0, le=1000)
    min_p: Unit | None = None
    top_a: Unit | None = None
    frequency_penalty: Penalty | None = None
    presence_penalty: Penalty | None = None
    repetition_penalty: float | None = Field(default=None, gt=0.0, le=2.0)
    seed: int | None = Field(default=None, ge=-(2**63), le=2**63 - 1)
    # reasoning
    thinking_level: ThinkingLevel | None = None
    reasoning: Reasoning | None = None
    # output
    max_tokens: int | None = Field(default=None, ge=1, le=1_000_000)
    stop: str | list[str] | None = None
    response_format: ResponseFormat | None = None
    # capabilities
    vision: StrictBool | None = None
    """Whether the model reads images; unset means guessed from the model's name."""
    # routing (OpenRouter; other providers ignore what they do not know)
    provider: ProviderRouting | None = None
    models: list[str] | None = Field(default=None, max_length=10)
    transforms: list[str] | None = Field(default=None, max_length=10)
    route: Literal["fallback"] | None = None
    extra_headers: dict[str, str] | None = None

    @field_validator("stop")
    @classmethod
    def _stop(cls, value: str | list[str] | None) -> str | list[str] | None:
        if isinstance(value, list) and not 0 < len(value) <= 4:
            raise ValueError("stop takes 1 to 4 sequences")
        return value

    @field_validator("extra_headers")
    @classmethod
    def _headers(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        for name in value or {}:
            if not _HEADER_NAME.fullmatch(name) or name.lower() in _FORBIDDEN_HEADERS:
                raise ValueError(f"header {name[:64]!r} may not be set")
        return value

    def sampling(self) -> dict[str, Any]:
        """The sampling parameters that were set, by their wire names."""
        return {
            name: getattr(self, name) for name in SAMPLING_NAMES if getattr(self, name) is not None
        }

    def for_operator_key(self) -> AdvancedParameters:
        """These parameters as the operator's key may be used with (a free model only, see
        keys.py): without `models` and `route`, which let OpenRouter fall back to other,
        paid, models on any error of the free one."""
        if self.models is None and self.route is None:
            return self
        return self.model_copy(update={"models": None, "route": None})

    def routing(self) -> dict[str, Any]:
        chosen: dict[str, Any] = {}
        if self.provider is not None:
            chosen["provider"] = self.provider.model_dump(exclude_none=True)
        for name in ("models", "transforms", "route"):
            if getattr(self, name) is not None:
                chosen[name] = getattr(self, name)
        return chosen


def _whole_numbers(value: Any) -> Any:
    """Struct numbers are doubles: 512.0 -> 512, recursively (ints validate as floats too)."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
        return int(value)
    if isinstance(value, list):
        return [_whole_numbers(item) for item in value]
    if isinstance(value, dict):
        return {key: _whole_numbers(item) for key, item in value.items()}
    return value


def parse_advanced_parameters(raw: Mapping[str, Any] | None) -> AdvancedParameters:
    """The validated parameters; InvalidArgument naming the first bad field otherwise."""
    try:
        return AdvancedParameters.model_validate(_whole_numbers(dict(raw or {})))
    except ValidationError as exc:
        first = exc.errors()[0]
        path = ".".join(
            f"[{part}]" if isinstance(part, int) else part
            for part in first["loc"]
            if isinstance(part, int) or part not in _UNION_TAGS
        ).replace(".[", "[")
        field = f"{FIELD_PREFIX}.{path}" if path else FIELD_PREFIX
        if first["type"] == "extra_forbidden":
            message = f"unknown advanced parameter {path!r}"
        else:
            message = f"advanced parameter {path!r}: {first['msg']}"
        raise InvalidArgument(field, message, reason="INVALID_ADVANCED_PARAMETER") from None
