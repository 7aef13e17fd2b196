"""What a skill is: a declaration (name, description, JSON-schema parameters, stealth,
auto_memorize, time limit, least time worth starting) and an async `run` over validated
arguments.

A skill never raises to the loop for a user-level failure (a refused link, no results): it
raises SkillError, whose message the model reads as the call's result. Anything else is a
bug, reported to the model as "failed" and logged.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from pydantic import SecretStr

from tzurot.inference.domain import GeneratedFile, MemoryItem, PaidCall, UsageSpent
from tzurot.inference.providers import Provider
from tzurot.inference.retries import RetryPolicy


class SkillError(Exception):
    """A skill could not do what was asked; the message is for the model (no secrets).
    What the call paid for before it failed is noted in `SkillContext.spending` as paid.
    `refused_key`: the wallet key (its name, e.g. "brave") the service refused: not
    reported as used (that would make it active again)."""

    def __init__(self, message: str, *, refused_key: str = "") -> None:
        super().__init__(message)
        self.refused_key = refused_key


@dataclass
class Spending:
    """What one skill call paid for, noted by the skill as each provider call is paid (an
    image drawn, a Brave search), before anything else may fail: the loop reports it as
    usage rows (UsageSpent, attributed to that provider and model) whatever becomes of the
    call, also when it is cut off by its time limit."""

    spent: list[UsageSpent] = field(default_factory=list)

    def paid(self, call: PaidCall, *, failed: bool = False) -> None:
        """`failed`: paid (or maybe billed) but not delivered, e.g. cut off once sent."""
        self.spent.append(UsageSpent((call,), failed=failed))


@dataclass(frozen=True)
class SkillContext:
    """What one reply lets its skills use: whose conversation, and how to pay."""

    user_id: str
    personality_id: str
    exclude_after: datetime | None = None
    memory_threshold: float = 0.0
    free_use: bool = False
    provider_key: Callable[[str, str], Awaitable[tuple[Provider, SecretStr]]] | None = field(
        default=None, repr=False
    )
    """(provider name, model) -> the provider and the key that pays (the user's, as for a
    reply); raises NO_API_KEY as a reply would."""
    wallet_key: Callable[[str], Awaitable[SecretStr | None]] | None = field(
        default=None, repr=False
    )
    """A service key from the user's wallet by name (e.g. "brave"); None when absent."""
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    """How a failed provider call is asked again (retries.py), within the call's time limit
    (the loop sets it for each call)."""
    spending: Spending = field(default_factory=Spending, repr=False)
    """Where the skill notes each call it paid for (the loop gives each call its own)."""


@dataclass(frozen=True)
class SkillOutput:
    """A skill's result: `text` for the model, `summary` for Inspect and history."""

    text: str
    summary: str = ""
    files: tuple[GeneratedFile, ...] = ()
    memorize: str = ""
    """For an auto_memorize skill: what to keep as a long-term memory."""
    memorize_tags: tuple[str, ...] = ()


class Skill(Protocol):
    name: str
    description: str
    parameters: Mapping[str, Any]
    """The JSON schema of the arguments (type "object")."""
    stealth: bool
    auto_memorize: bool
    timeout: float
    min_seconds: float
    """The least time a call needs to be worth starting: with less of the loop's budget left
    the call is refused unstarted (a paid call cancelled midway is paid for nothing)."""

    async def run(self, args: Mapping[str, Any], ctx: SkillContext) -> SkillOutput: ...


@runtime_checkable
class MakesFiles(Protocol):
    """A skill whose calls make files the answer carries (generated images). The loop starts
    a call only when the answer has room for the most it can make, so no file is paid for
    and then dropped."""

    file_bytes: int
    """The most bytes one of its files can have."""

    def most_files(self, args: Mapping[str, Any]) -> int:
        """The most files a call with these (validated) arguments can make."""
        ...


class MemorySearch(Protocol):
    async def relevant_memories(
        self,
        *,
        personality_id: str,
        user_id: str,
        query: str,
        limit: int,
        threshold: float,
        exclude_after: datetime | None,
    ) -> list[MemoryItem]: ...


class MemoryWriter(Protocol):
    async def remember(
        self, personality_id: str, text: str, *, tags: tuple[str, ...], on_behalf_of: str
    ) -> str:
        """Stores `text` as a memory of `on_behalf_of` (whose turn found it) with the
        personality, never in the shared lore: the memory's id. Refused (INCOGNITO) while
        that user is incognito, and without a user."""
        ...
