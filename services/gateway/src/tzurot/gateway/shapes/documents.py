"""The documents of a shapes.inc backup as typed models: the configuration, the long-term
memory summaries and the chat history (the CLI recognises which file is which).

Unknown fields are kept, never an error. Everything the import would trip on later is
refused here, so a dry run finds it (InvalidArgument naming the document, the item and the
field, never quoting the data): JSON Postgres or protobuf cannot hold (`load_uploaded_json`
reads it, as it reads cards and lorebooks), a wrong type of a known field, a time out of
range, an empty summary, a message longer than memory keeps or an author id memory would
refuse.

Times are Unix seconds or milliseconds: a magnitude of at least 1e11 is milliseconds (1e11
seconds is the year 5138, 1e11 milliseconds March 1973). A time must be finite, not before
1970 and not in the future.
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import PydanticCustomError

from tzurot.gateway.uploaded_json import load_uploaded_json
from tzurot.runtime.errors import InvalidArgument

MAX_DOCUMENT_BYTES = 64 * 1024 * 1024
MAX_DOCUMENT_VALUES = 4_000_000
"""How many JSON values (arrays, objects and scalars) one document may hold: about one per
16 bytes of `MAX_DOCUMENT_BYTES`, the proportion a card has (500,000 in 10 MB). A real backup
holds far fewer for its size: a chat message of the shortest text is 7 values in some 160
bytes (its three UUIDs alone are 108), a summary some 15 values in kilobytes, a 30 KB
configuration a few hundred; so a history of 64 MB holds under 3 million. A document of
millions of tiny values (`[0,0,…]`) is refused before it is parsed (`load_uploaded_json`
counts them in its bytes), so neither parsing nor validation builds them."""
MILLISECONDS_FROM = 1e11
MAX_MESSAGE_CHARS = 32_000
"""Memory's limit on one turn's content (MAX_CONTENT_CHARS of the memory service)."""


def unix_seconds(value: float) -> float:
    """A shapes.inc time (Unix seconds or milliseconds, see the module's docstring) in
    seconds; refused when out of range."""
    if not math.isfinite(value):
        raise PydanticCustomError("unix_time", "must be a finite number")
    milliseconds = abs(value) >= MILLISECONDS_FROM
    seconds = value / 1000 if milliseconds else value
    unit = " (read as milliseconds)" if milliseconds else ""
    if seconds < 0:
        raise PydanticCustomError("unix_time", f"must not be before 1970{unit}")
    if seconds > time.time():
        raise PydanticCustomError("unix_time", f"must not be in the future{unit}")
    return seconds


def moment(seconds: float) -> datetime:
    """A time checked by `unix_seconds` as a datetime."""
    return datetime.fromtimestamp(seconds, UTC)


UnixTime = Annotated[float, AfterValidator(unix_seconds)]


def _not_blank(value: str) -> str:
    if not value.strip():
        raise PydanticCustomError("blank", "must not be empty")
    return value


def _author_id(value: str) -> str:
    if any(not char.isprintable() or char.isspace() for char in value):
        raise PydanticCustomError("author_id", "must not contain spaces or control characters")
    return value


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow", allow_inf_nan=False)


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
    start_ts: UnixTime | None = None
    end_ts: UnixTime | None = None
    created_at: UnixTime | None = None
    senders: list[str] | None = None
    discord_channel_id: str | None = None
    discord_guild_id: str | None = None


class ShapeMemory(_Open):
    id: str = Field(min_length=1)
    shape_id: str = ""
    senders: list[str] = Field(default_factory=list)
    result: Annotated[str, AfterValidator(_not_blank)]
    metadata: ShapeMemoryMetadata = Field(default_factory=ShapeMemoryMetadata)

    @property
    def sender_ids(self) -> list[str]:
        return list(dict.fromkeys([*self.senders, *(self.metadata.senders or [])]))

    @property
    def created_at(self) -> datetime | None:
        """When it was summarised (else when its conversation ended, else began)."""
        meta = self.metadata
        stamp = meta.created_at or meta.end_ts or meta.start_ts
        return moment(stamp) if stamp else None


class ShapeMessage(_Open):
    id: str = Field(min_length=1)
    shape_id: str = ""
    user_id: Annotated[str, AfterValidator(_author_id)] = ""
    role: Literal["user", "assistant"]
    content: str = Field(default="", max_length=MAX_MESSAGE_CHARS)
    timestamp: UnixTime | None = None


def load_json(data: bytes, *, source: str, root: str) -> Any:
    """The document `source` ("the memories"), checked; `root` names it in paths ("memories")."""
    if len(data) > MAX_DOCUMENT_BYTES:
        raise InvalidArgument(root, f"{source} is larger than {MAX_DOCUMENT_BYTES} bytes")
    return load_uploaded_json(
        data, what=source, reason="BAD_BACKUP", root=root, max_values=MAX_DOCUMENT_VALUES
    )


def _validate(model: type[BaseModel], item: Any, where: str, source: str) -> Any:
    try:
        return model.model_validate(item)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        path = f"{where}.{field}" if field else where
        raise InvalidArgument(path, f"{source}: {path}: {first['msg']}") from None


def read_config(data: bytes) -> ShapeConfig:
    """The configuration document, read and checked (CPU-bound: on a worker thread)."""
    return parse_config(load_json(data, source="the configuration", root="config"))


def read_memories(data: bytes) -> list[ShapeMemory]:
    """The memories document, read and checked (CPU-bound: on a worker thread)."""
    return parse_memories(load_json(data, source="the memories", root="memories"))


def read_history(data: bytes) -> list[ShapeMessage]:
    """The chat history document, read and checked (CPU-bound: on a worker thread)."""
    return parse_history(load_json(data, source="the chat history", root="history"))


def parse_config(document: Any) -> ShapeConfig:
    if not isinstance(document, dict):
        raise InvalidArgument("config", "the configuration must be a JSON object")
    result: ShapeConfig = _validate(ShapeConfig, document, "config", "the configuration")
    return result


def parse_memories(document: Any) -> list[ShapeMemory]:
    if not isinstance(document, list):
        raise InvalidArgument("memories", "the memories must be a JSON list")
    return [
        _validate(ShapeMemory, item, f"memories[{i}]", "the memories")
        for i, item in enumerate(document)
    ]


def parse_history(document: Any) -> list[ShapeMessage]:
    if not isinstance(document, list):
        raise InvalidArgument("history", "the chat history must be a JSON list")
    return [
        _validate(ShapeMessage, item, f"history[{i}]", "the chat history")
        for i, item in enumerate(document)
    ]
