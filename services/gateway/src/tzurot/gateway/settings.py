"""The settings cascade: hardcoded → global → personality → channel → user → user-personality.

Each level may set any known key; the most specific level that sets a key wins, and the
resolved value says which level that was (for /inspect and /model show).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from tzurot.gateway.domain import ConfigSource
from tzurot.runtime.errors import InvalidArgument

Json = bool | int | float | str


@dataclass(frozen=True)
class SettingSpec:
    default: Json
    check: Callable[[Any], Json]
    help: str


def _int(low: int, high: int) -> Callable[[Any], Json]:
    def check(value: Any) -> Json:
        if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
            raise ValueError("a whole number")
        if not low <= value <= high:
            raise ValueError(f"between {low} and {high}")
        return int(value)

    return check


def _float(low: float, high: float) -> Callable[[Any], Json]:
    def check(value: Any) -> Json:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError("a number")
        if not low <= value <= high:
            raise ValueError(f"between {low} and {high}")
        return float(value)

    return check


def _bool(value: Any) -> Json:
    if not isinstance(value, bool):
        raise ValueError("true or false")
    return value


def _choice(*options: str) -> Callable[[Any], Json]:
    def check(value: Any) -> Json:
        if value not in options:
            raise ValueError(f"one of {', '.join(options)}")
        return str(value)

    return check


MAX_HISTORY_MESSAGES = "max_history_messages"
MAX_IMAGES = "max_images"
MEMORY_THRESHOLD = "memory_threshold"
MEMORY_LIMIT = "memory_limit"
MODEL_FOOTER = "model_footer"
VOICE_MODE = "voice_mode"
GROUP_MAX_SPEAKERS = "group_max_speakers"
GROUP_CHAIN_CAP = "group_chain_cap"
GROUP_CHAIN_COOLDOWN_SECONDS = "group_chain_cooldown_seconds"

SPECS: Mapping[str, SettingSpec] = {
    MAX_HISTORY_MESSAGES: SettingSpec(50, _int(1, 100), "history turns put in a prompt"),
    MAX_IMAGES: SettingSpec(10, _int(0, 10), "images of a message described for the model"),
    MEMORY_THRESHOLD: SettingSpec(0.5, _float(0.0, 1.0), "least relevance of a recalled memory"),
    MEMORY_LIMIT: SettingSpec(20, _int(0, 100), "most memories recalled per message"),
    MODEL_FOOTER: SettingSpec(True, _bool, "show the model under each answer"),
    VOICE_MODE: SettingSpec("off", _choice("off", "auto", "always"), "answer with voice"),
    GROUP_MAX_SPEAKERS: SettingSpec(
        2, _int(1, 10), "group channels: most personalities answering one message"
    ),
    GROUP_CHAIN_CAP: SettingSpec(
        2, _int(0, 10), "group channels: most replies of personalities to each other in a row"
    ),
    GROUP_CHAIN_COOLDOWN_SECONDS: SettingSpec(
        10, _int(0, 3600), "group channels: seconds before a personality answers another"
    ),
}

SCOPES = (
    ConfigSource.GLOBAL,
    ConfigSource.PERSONALITY,
    ConfigSource.CHANNEL,
    ConfigSource.USER,
    ConfigSource.USER_PERSONALITY,
)
"""Levels stored in `core.settings`, lowest precedence first (HARDCODED lives in code)."""


@dataclass(frozen=True)
class ResolvedSetting:
    key: str
    value: Json
    source: ConfigSource


def validate(key: str, value: Any) -> Json:
    """The value, normalized; InvalidArgument naming the key when it is unknown or wrong."""
    spec = SPECS.get(key)
    if spec is None:
        raise InvalidArgument("key", f"unknown setting {key!r}; known: {', '.join(SPECS)}")
    try:
        return spec.check(value)
    except ValueError as exc:
        raise InvalidArgument("value", f"{key} must be {exc}") from None


def resolve(
    levels: Mapping[ConfigSource, Mapping[str, Any]],
    hardcoded: Mapping[str, Json] | None = None,
) -> dict[str, ResolvedSetting]:
    """Every known key resolved through the cascade. Invalid stored values are skipped."""
    resolved: dict[str, ResolvedSetting] = {}
    for key, spec in SPECS.items():
        default = (hardcoded or {}).get(key, spec.default)
        current = ResolvedSetting(key, default, ConfigSource.HARDCODED)
        for scope in SCOPES:
            values = levels.get(scope, {})
            if key in values:
                try:
                    current = ResolvedSetting(key, spec.check(values[key]), scope)
                except ValueError:
                    continue  # a value stored before its rule tightened: ignore, fall back
        resolved[key] = current
    return resolved
