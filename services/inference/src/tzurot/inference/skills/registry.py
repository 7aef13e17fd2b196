"""The skills inference offers: built-ins loaded at start, minus what the operator turned off.

A personality enables a subset (its `skills`, owner-editable in gateway); names the registry
does not offer are ignored, so an operator can switch a skill off without editing
personalities. Arguments the model sends are checked against the skill's JSON schema
(jsonschema) before the skill runs.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from fnmatch import fnmatchcase
from typing import Any

import jsonschema

from tzurot.inference.skills.base import Skill, SkillError

REFUSAL_MEMORY_SECONDS = 3600.0
"""How long a provider's "this model cannot use tools" is believed before tools are offered
again (a wrong verdict, or a model that gained tool use, heals within this)."""


class SkillRegistry:
    def __init__(
        self, skills: Iterable[Skill], *, disabled: Iterable[str] = (), enabled: bool = True
    ) -> None:
        off = set(disabled)
        self._skills: dict[str, Skill] = {
            skill.name: skill for skill in skills if enabled and skill.name not in off
        }
        for skill in self._skills.values():
            jsonschema.Draft202012Validator.check_schema(dict(skill.parameters))

    def available(self) -> list[Skill]:
        """Every skill on offer, in registration order."""
        return list(self._skills.values())

    def get(self, name: str) -> Skill | None:
        return self._skills.get(name)

    def for_personality(self, names: Sequence[str]) -> list[Skill]:
        """The personality's enabled skills that are on offer, in its order, once each."""
        return [self._skills[name] for name in dict.fromkeys(names) if name in self._skills]


def tool_definition(skill: Skill) -> dict[str, Any]:
    """The skill as an OpenAI tool."""
    return {
        "type": "function",
        "function": {
            "name": skill.name,
            "description": skill.description,
            "parameters": dict(skill.parameters),
        },
    }


def parse_arguments(skill: Skill, raw: str) -> dict[str, Any]:
    """The model's JSON arguments, checked against the skill's schema; SkillError if not."""
    try:
        args = json.loads(raw or "{}")
    except json.JSONDecodeError:
        raise SkillError("the arguments are not valid JSON") from None
    if not isinstance(args, dict):
        raise SkillError("the arguments must be a JSON object")
    validator = jsonschema.Draft202012Validator(dict(skill.parameters))
    error = jsonschema.exceptions.best_match(validator.iter_errors(args))
    if error is not None:
        where = ".".join(str(p) for p in error.absolute_path) or "arguments"
        raise SkillError(f"invalid {where}: {error.message[:200]}")
    return args


class ToolSupport:
    """Which models take tools: all but the operator's patterns and those a provider refused
    (remembered per provider and model for `remember_seconds`)."""

    def __init__(
        self,
        no_tool_models: Iterable[str] = (),
        *,
        remember_seconds: float = REFUSAL_MEMORY_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._patterns = tuple(no_tool_models)
        self._remember = remember_seconds
        self._clock = clock
        self._refused: dict[tuple[str, str], float] = {}
        """(provider, model) -> when the refusal is forgotten."""

    def allows(self, provider: str, model: str) -> bool:
        until = self._refused.get((provider, model))
        if until is not None:
            if self._clock() < until:
                return False
            del self._refused[(provider, model)]
        return not any(fnmatchcase(model, p) for p in self._patterns)

    def refused(self, provider: str, model: str) -> None:
        self._refused[(provider, model)] = self._clock() + self._remember


def short(value: str | Mapping[str, Any], limit: int = 300) -> str:
    """A one-line excerpt for Inspect and history."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
