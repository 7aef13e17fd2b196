"""A reply's tool loop: the personality's enabled skills, the keys they call with, and which
wallet keys their services refused (said at once, and again when the reply fails)."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Sequence
from contextlib import aclosing

from pydantic import SecretStr

from tzurot.inference.domain import HistoryTurn, KeyRefused, ReplyRequest, ResolvedKey
from tzurot.inference.keys import KeyResolver
from tzurot.inference.providers import Provider, ProviderRegistry
from tzurot.inference.reply_settings import SkillRuntime
from tzurot.inference.retries import RetryPolicy
from tzurot.inference.skills.base import Skill, SkillContext
from tzurot.inference.skills.loop import LoopEvent, LoopSettings, ToolLoop
from tzurot.inference.skills.registry import ToolSupport
from tzurot.inference.tokens import TokenCounter


class SkillLoops:
    """The skill methods of `Inference`."""

    _providers: ProviderRegistry
    _keys: KeyResolver
    _skills: SkillRuntime | None

    def _tool_loop(
        self,
        request: ReplyRequest,
        history: Sequence[HistoryTurn],
        counter: TokenCounter,
        *,
        room: int,
        retry: RetryPolicy,
    ) -> ToolLoop:
        """The reply's loop: the personality's enabled skills (none when skills are off)."""
        runtime = self._skills
        enabled = runtime.registry.for_personality(request.skills) if runtime else []
        stamps = [turn.created_at for turn in history if turn.created_at is not None]
        user_id = request.user_id

        async def provider_key(name: str, model: str) -> tuple[Provider, SecretStr]:
            provider = self._providers.get(name)
            resolved = await self._keys.resolve(user_id, provider, free_use=False, model=model)
            return provider, resolved.api_key

        async def wallet_key(name: str) -> SecretStr | None:
            return await self._keys.service_key(user_id, name)

        context = SkillContext(
            # A scheduled turn's skills search and add shared memories only; its payer pays.
            user_id=request.memory_user_id,
            personality_id=request.character.id,
            exclude_after=min(stamps) if stamps else None,
            memory_threshold=request.memory_threshold,
            free_use=request.model.free_use,
            provider_key=provider_key,
            wallet_key=wallet_key,
            retry=retry,  # each skill call bounds it by its own time limit too
        )
        return ToolLoop(
            skills=enabled,
            ctx=context,
            settings=runtime.loop if runtime else LoopSettings(),
            support=runtime.support if runtime else ToolSupport(),
            counter=counter,
            memory=runtime.memory if runtime else None,
            room_tokens=max(room, 0),
        )

    def list_skills(self) -> list[Skill]:
        """ListSkills: what the operator offers (after the global switch)."""
        return self._skills.registry.available() if self._skills else []


def refused_before_failing(
    loop: ToolLoop, keys_used: set[str], answer: Provider, key: ResolvedKey
) -> set[str]:
    """The wallet keys a skill's service refused (401) before the reply failed: only keys
    taken from the user's wallet, and never the answer's own, which answered the round that
    called the skills (it works; gateway treats a finished reply's alike)."""
    answer_key = {answer.name} if key.source == "user" else set()
    return (loop.refused_keys & keys_used) - answer_key


async def refusals_said(
    events: AsyncGenerator[LoopEvent, None],
    from_wallet: Callable[[str], bool],
    answer: Provider,
    key: ResolvedKey,
) -> AsyncGenerator[LoopEvent, None]:
    """The loop's `events`, its KeyRefused only for a key taken from the user's wallet
    (`from_wallet`) and never the answer's own (it answered the round that called the
    skill: it works), as `refused_before_failing` names them."""
    async with aclosing(events):
        async for event in events:
            if isinstance(event, KeyRefused) and (
                not from_wallet(event.provider)
                or (key.source == "user" and event.provider == answer.name)
            ):
                continue
            yield event
