"""The documents of a shapes.inc backup as typed models: the configuration, the long-term
memory summaries and the chat history (the CLI recognises which file is which).

Unknown fields are kept, never an error; a wrong type of a known field is an
InvalidArgument naming the item and the field.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tzurot.runtime.errors import InvalidArgument

MAX_DOCUMENT_BYTES = 64 * 1024 * 1024


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class ShapeConfig(_Open):
    id: str = ""
    name: str = Field(min_length=1)
    username: str = Field(min_length=1)
    avatar: str | None = None
    jailbreak: str | None = None
    user_prompt: str | None = None
    personality_traits: str | None = None
    personality_tone: str | None = None
    personality_age: str | None = None
    personality_appearance: str | None = None
    personality_likes: str | None = None
    personality_dislikes: str | None = None
    personality_conversational_goals: str | None = None
    personality_conversational_examples: str | None = None
    engine_model: str | None = None
    fallback_engine_model: str | None = None
    engine_temperature: float | None = None
    engine_top_p: float | None = None
    engine_top_k: float | None = None
    engine_frequency_penalty: float | None = None
    engine_presence_penalty: float | None = None
    engine_repetition_penalty: float | None = None
    engine_min_p: float | None = None
    engine_top_a: float | None = None
    stm_window: int | None = None
    ltm_enabled: bool | None = None
    ltm_threshold: float | None = None
    ltm_max_retrieved_summaries: int | None = None
    voice_model: str | None = None
    voice_id: str | None = None
    voice_frequency: float | None = None
    voice_stability: float | None = None
    voice_similarity: float | None = None
    voice_style: float | None = None
    voice_transcription_enabled: bool | None = None
    image_model: str | None = None
    image_size: str | None = None
    force_image_size: bool | None = None
    error_message: str | None = None
    birthday: str | None = None
    favorite_reacts: list[Any] | None = None
    keywords: list[Any] | str | None = None
    search_description: str | None = None
    wack_message: str | None = None
    sleep_message: str | None = None
    aliases: list[str] | None = None


class ShapeMemoryMetadata(_Open):
    start_ts: float | None = None
    end_ts: float | None = None
    created_at: float | None = None
    senders: list[str] | None = None
    discord_channel_id: str | None = None
    discord_guild_id: str | None = None


class ShapeMemory(_Open):
    id: str = Field(min_length=1)
    shape_id: str = ""
    senders: list[str] = Field(default_factory=list)
    result: str
    metadata: ShapeMemoryMetadata = Field(default_factory=ShapeMemoryMetadata)

    @property
    def sender_ids(self) -> list[str]:
        return list(dict.fromkeys([*self.senders, *(self.metadata.senders or [])]))

    @property
    def created_at(self) -> datetime | None:
        """When it was summarised (else when its conversation ended, else began)."""
        meta = self.metadata
        stamp = meta.created_at or meta.end_ts or meta.start_ts
        return datetime.fromtimestamp(stamp, UTC) if stamp else None


class ShapeMessage(_Open):
    id: str = Field(min_length=1)
    shape_id: str = ""
    user_id: str = ""
    role: Literal["user", "assistant"]
    content: str = ""
    timestamp: float | None = None


def load_json(data: bytes, *, source: str) -> Any:
    if len(data) > MAX_DOCUMENT_BYTES:
        raise InvalidArgument("document", f"{source} is larger than {MAX_DOCUMENT_BYTES} bytes")
    try:
        return json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidArgument("document", f"{source} is not valid JSON: {exc}") from None


def _validate(model: type[BaseModel], item: Any, where: str) -> Any:
    try:
        return model.model_validate(item)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "item"
        raise InvalidArgument(where, f"{where}: {field}: {first['msg']}") from None


def parse_config(document: Any) -> ShapeConfig:
    if not isinstance(document, dict):
        raise InvalidArgument("config", "the configuration must be a JSON object")
    result: ShapeConfig = _validate(ShapeConfig, document, "config")
    return result


def parse_memories(document: Any) -> list[ShapeMemory]:
    if not isinstance(document, list):
        raise InvalidArgument("memories", "the memories must be a JSON list")
    return [_validate(ShapeMemory, item, f"memories[{i}]") for i, item in enumerate(document)]


def parse_history(document: Any) -> list[ShapeMessage]:
    if not isinstance(document, list):
        raise InvalidArgument("history", "the chat history must be a JSON list")
    return [_validate(ShapeMessage, item, f"history[{i}]") for i, item in enumerate(document)]
