"""A shapes.inc configuration as a Tzurot personality (`../../shared/SHAPES_BACKUP.md`).

- name, username, avatar: display name, slug, avatar;
- jailbreak: system prompt; user_prompt: character description;
- personality_traits, _tone, _age, _appearance, _likes, _dislikes, _conversational_goals:
  the character's personality section, one labelled line each;
  personality_conversational_examples: example dialogues;
- engine_model, fallback_engine_model: the LLM config's model (OpenRouter) and its
  fallback `models`; every engine_* sampling value: advanced parameters;
- stm_window, ltm_threshold, ltm_max_retrieved_summaries: the personality's settings
  max_history_messages, memory_threshold, memory_limit (ltm_enabled false: memory_limit 0);
- voice_id: the voice id (voice_model, _frequency, _stability, _similarity, _style,
  _transcription_enabled: custom fields `voice`); image_*: custom fields `image`;
- error_message, birthday, aliases: the same;
- id, favorite_reacts, keywords, search_description, wack_message, sleep_message and any
  unknown field: custom fields.

A value Tzurot would refuse (a sampling parameter out of range, a birthday not MM-DD, a
text longer than UpdatePersonality takes, a voice id over 200 characters, an avatar that is
not a well formed http(s) URL, aliases past the 50th) is not imported where it would break
the personality: it is kept in custom fields under `not_imported` and listed as a warning;
the rest of the configuration is imported.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from tzurot.gateway.personalities import (
    BIRTHDAY_PATTERN,
    SLUG_PATTERN,
    PersonalitySeed,
    avatar_url_problem,
    normalize_alias,
    slugify,
)
from tzurot.gateway.shapes.documents import ShapeConfig
from tzurot.runtime.errors import InvalidArgument

SHAPES_PROVIDER = "openrouter"
_SAMPLING: dict[str, tuple[str, float, float]] = {
    "engine_temperature": ("temperature", 0, 2),
    "engine_top_p": ("top_p", 0, 1),
    "engine_top_k": ("top_k", 0, 1000),
    "engine_frequency_penalty": ("frequency_penalty", -2, 2),
    "engine_presence_penalty": ("presence_penalty", -2, 2),
    "engine_repetition_penalty": ("repetition_penalty", 0.0001, 2),
    "engine_min_p": ("min_p", 0, 1),
    "engine_top_a": ("top_a", 0, 1),
}
_TRAITS = (
    ("personality_traits", "Traits"),
    ("personality_tone", "Tone"),
    ("personality_age", "Age"),
    ("personality_appearance", "Appearance"),
    ("personality_likes", "Likes"),
    ("personality_dislikes", "Dislikes"),
    ("personality_conversational_goals", "Conversational goals"),
)
_VOICE = (
    "voice_model",
    "voice_frequency",
    "voice_stability",
    "voice_similarity",
    "voice_style",
    "voice_transcription_enabled",
)
_IMAGE = ("image_model", "image_size", "force_image_size")
_MAPPED = {
    "name",
    "username",
    "avatar",
    "jailbreak",
    "user_prompt",
    "personality_conversational_examples",
    "engine_model",
    "fallback_engine_model",
    "stm_window",
    "ltm_enabled",
    "ltm_threshold",
    "ltm_max_retrieved_summaries",
    "voice_id",
    "error_message",
    "birthday",
    "aliases",
    *(name for name, _ in _TRAITS),
    *_SAMPLING,
    *_VOICE,
    *_IMAGE,
}
MAX_HISTORY_MESSAGES = 100
MAX_ALIAS_CHARS = 80
MAX_ALIASES = 50
"""PersonalitySeed's limit on aliases."""
MAX_MEMORY_LIMIT = 100
MAX_TEXT_CHARS = 64_000
"""PersonalitySeed's limit on the system prompt, UpdatePersonality's on each text."""
MAX_VOICE_ID_CHARS = 200
"""UpdatePersonality's limit on voice_id."""
MAX_MODEL_CHARS = 200
"""PersonalitySeed's limit on the LLM model's name."""


@dataclass
class ShapePlan:
    """What one configuration becomes."""

    seed: PersonalitySeed
    settings: dict[str, Any] = field(default_factory=dict)
    voice_id: str = ""
    custom_fields: dict[str, Any] = field(default_factory=dict)
    avatar_source: str = ""
    warnings: list[str] = field(default_factory=list)


def _text(value: str | None) -> str:
    return (value or "").strip()


def _within(
    name: str, value: str | None, limit: int, warnings: list[str], dropped: dict[str, Any]
) -> str:
    """`value` stripped when it is at most `limit` characters; else "", the value kept aside."""
    text = _text(value)
    if len(text) <= limit:
        return text
    dropped[name] = text
    warnings.append(
        f"{name} is {len(text)} characters, over Tzurot's {limit}; kept in custom fields"
    )
    return ""


def _avatar_url(avatar: str, warnings: list[str], dropped: dict[str, Any]) -> str:
    """The avatar URL when Discord would take it; else "", the value kept aside."""
    problem = avatar_url_problem(avatar)
    if problem is None:
        return avatar
    dropped["avatar"] = avatar
    warnings.append(
        f"the avatar is not a URL Discord takes ({problem}); imported without one, kept in "
        "custom fields"
    )
    return ""


def _slug(config: ShapeConfig, warnings: list[str]) -> str:
    slug = config.username.strip().lower()
    if SLUG_PATTERN.match(slug):
        return slug
    fixed = slugify(slug)
    if not SLUG_PATTERN.match(fixed):
        raise InvalidArgument("config.username", f"username {config.username!r} cannot be a slug")
    warnings.append(f"username {config.username!r} became the slug {fixed!r}")
    return fixed


def _sampling(config: ShapeConfig, warnings: list[str], dropped: dict[str, Any]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for name, (param, low, high) in _SAMPLING.items():
        value = getattr(config, name)
        if value is None:
            continue
        if low <= value <= high:
            params[param] = int(value) if param == "top_k" else value
        else:
            dropped[name] = value
            warnings.append(f"{name} {value} is outside {low}..{high}; kept in custom fields")
    fallback = _text(config.fallback_engine_model)
    if fallback:
        params["models"] = [fallback]
    return params


def _aliases(
    config: ShapeConfig, slug: str, extra: list[str], warnings: list[str], dropped: dict[str, Any]
) -> list[str]:
    aliases: list[str] = []
    seen = {normalize_alias(config.name), slug}
    for alias in [*(config.aliases or []), *extra]:
        key = normalize_alias(alias)
        if key and key not in seen and len(alias) <= MAX_ALIAS_CHARS:
            seen.add(key)
            aliases.append(alias.strip())
    if len(aliases) > MAX_ALIASES:
        dropped["aliases"] = aliases[MAX_ALIASES:]
        warnings.append(
            f"{len(aliases) - MAX_ALIASES} aliases past the {MAX_ALIASES}th are kept in "
            "custom fields"
        )
    return aliases[:MAX_ALIASES]


def _settings(config: ShapeConfig, warnings: list[str]) -> dict[str, Any]:
    settings: dict[str, Any] = {}
    window = config.stm_window
    if window is not None and window > 0:
        settings["max_history_messages"] = min(window, MAX_HISTORY_MESSAGES)
        if window > MAX_HISTORY_MESSAGES:
            warnings.append(f"stm_window {window} is capped at {MAX_HISTORY_MESSAGES}")
    if config.ltm_threshold is not None and 0 <= config.ltm_threshold <= 1:
        settings["memory_threshold"] = config.ltm_threshold
    limit = config.ltm_max_retrieved_summaries
    if limit is not None and limit >= 0:
        settings["memory_limit"] = min(limit, MAX_MEMORY_LIMIT)
        if limit > MAX_MEMORY_LIMIT:
            warnings.append(f"ltm_max_retrieved_summaries {limit} is capped at {MAX_MEMORY_LIMIT}")
    if config.ltm_enabled is False:
        settings["memory_limit"] = 0
    return settings


def _custom(config: ShapeConfig, dropped: dict[str, Any]) -> dict[str, Any]:
    dumped = config.model_dump(exclude_none=True)
    custom: dict[str, Any] = {k: v for k, v in dumped.items() if k not in _MAPPED}
    custom.update(config.model_extra or {})
    voice = {
        name.removeprefix("voice_"): getattr(config, name)
        for name in _VOICE
        if getattr(config, name) is not None
    }
    if voice:
        custom["voice"] = voice
    image = {name: getattr(config, name) for name in _IMAGE if getattr(config, name) is not None}
    if image:
        custom["image"] = image
    if config.ltm_enabled is not None:
        custom["ltm_enabled"] = config.ltm_enabled
    if dropped:
        custom["not_imported"] = dropped
    custom["source"] = "shapes.inc"
    return custom


def plan_personality(config: ShapeConfig, *, extra_aliases: Sequence[str] = ()) -> ShapePlan:
    warnings: list[str] = []
    dropped: dict[str, Any] = {}
    slug = _slug(config, warnings)
    traits = "\n".join(
        f"{label}: {_text(getattr(config, name))}"
        for name, label in _TRAITS
        if _text(getattr(config, name))
    )
    if len(traits) > MAX_TEXT_CHARS:  # the traits are kept aside together
        for name, _ in _TRAITS:
            if _text(getattr(config, name)):
                dropped[name] = _text(getattr(config, name))
        warnings.append(
            f"the personality traits are {len(traits)} characters together, over Tzurot's "
            f"{MAX_TEXT_CHARS}; kept in custom fields"
        )
        traits = ""
    params = _sampling(config, warnings, dropped)
    birthday = _text(config.birthday)
    if birthday and not BIRTHDAY_PATTERN.match(birthday):
        warnings.append(f"birthday {birthday!r} is not MM-DD; kept in custom fields")
        dropped["birthday"] = birthday
        birthday = ""
    avatar = _text(config.avatar)
    examples = config.personality_conversational_examples
    seed_fields: dict[str, Any] = {
        "name": config.name.strip()[:80],
        "slug": slug,
        "aliases": _aliases(config, slug, list(extra_aliases), warnings, dropped),
        "avatar_url": _avatar_url(avatar, warnings, dropped),
        "system_prompt": _within("jailbreak", config.jailbreak, MAX_TEXT_CHARS, warnings, dropped),
        "character": {
            "description": _within(
                "user_prompt", config.user_prompt, MAX_TEXT_CHARS, warnings, dropped
            ),
            "personality": traits,
            "example_dialogues": _within(
                "personality_conversational_examples",
                examples,
                MAX_TEXT_CHARS,
                warnings,
                dropped,
            ),
        },
        "error_message": _text(config.error_message)[:2000],
        "birthday": birthday,
    }
    model = _within("engine_model", config.engine_model, MAX_MODEL_CHARS, warnings, dropped)
    voice_id = _within("voice_id", config.voice_id, MAX_VOICE_ID_CHARS, warnings, dropped)
    if model:
        seed_fields["llm"] = {
            "provider": SHAPES_PROVIDER,
            "model": model,
            "advanced_parameters": params,
        }
    try:
        seed = PersonalitySeed.model_validate(seed_fields)
    except ValueError as exc:
        raise InvalidArgument(
            "config", f"the configuration cannot become a personality: {exc}"
        ) from None
    return ShapePlan(
        seed=seed,
        settings=_settings(config, warnings),
        voice_id=voice_id,
        custom_fields=_custom(config, dropped),
        avatar_source=avatar,
        warnings=warnings,
    )
