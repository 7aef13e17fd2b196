"""The operator's settings for every reply (models, budgets, skills), and the retries they
allow a call."""

from __future__ import annotations

from dataclasses import dataclass, field

from tzurot.inference.answering import AnswerSettings
from tzurot.inference.cleanup import CompiledRule
from tzurot.inference.retries import RetryPolicy
from tzurot.inference.skills.base import MemoryWriter
from tzurot.inference.skills.loop import LoopSettings
from tzurot.inference.skills.registry import SkillRegistry, ToolSupport


@dataclass(frozen=True)
class ModelName:
    provider: str
    model: str


@dataclass(frozen=True)
class ReplySettings:
    """The operator's choices for every reply."""

    history_limit: int = 30
    default_context_window: int = 32_768
    reference_share: float = 0.5
    answer: AnswerSettings = field(default_factory=AnswerSettings)
    cleanup_rules: tuple[CompiledRule, ...] = ()
    vision: ModelName | None = None
    transcription: ModelName | None = None
    transcript_cleanup: ModelName | None = None
    stream_interval_seconds: float = 0.1
    """Text deltas are merged so at most one goes out per interval (coalesce.py); 0: each."""
    report_grace_seconds: float = 2.0
    """A reply ends this long before its caller's deadline (never more than a quarter of the
    caller's time), so its error (the failed usage, the wallet keys refused on the way)
    reaches the caller before the caller's own cut."""


@dataclass(frozen=True)
class SkillRuntime:
    """The skills on offer and the loop's bounds (operator settings)."""

    registry: SkillRegistry
    loop: LoopSettings = field(default_factory=LoopSettings)
    support: ToolSupport = field(default_factory=ToolSupport)
    memory: MemoryWriter | None = None


class OperatorRetries:
    """The retries the operator's settings allow, for a class that holds them."""

    _settings: ReplySettings

    def _retry_policy(self, time_limit: float | None = None) -> RetryPolicy:
        """The operator's retries (those of an answer), for a caller waiting `time_limit`."""
        answer = self._settings.answer
        policy = RetryPolicy(failures=answer.failure_retries, backoff=answer.retry_backoff)
        return policy.within(time_limit)
