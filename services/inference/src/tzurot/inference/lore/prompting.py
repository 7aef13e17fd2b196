"""Lore for one reply: scan the conversation, fire entries, and the state to keep.

The conversation's length (what timed effects count) is the larger of gateway's count and
the history inference sees, plus the new message; after the reply it is one more. The
token budget is the smallest `token_budget` of the books in play, within the prompt's
memory share (lore and memories share it; lore is placed first). Rolls are seeded by the
job, so a retried job fires the same entries. Regex keys share `regex_budget` (see
`matching.RegexBudget`). Everything here is CPU on data no one else changes: the service
runs it in a worker thread, off the event loop.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Sequence

from tzurot.inference.domain import HistoryTurn
from tzurot.inference.lore.engine import Scan, activate
from tzurot.inference.lore.matching import RegexBudget
from tzurot.inference.lore.model import LoreInput, LoreResult


def _line(turn: HistoryTurn) -> str:
    return (
        f"{turn.author_name}: {turn.content}"
        if turn.role == "user" and turn.author_name
        else turn.content
    )


def run_lore(  # the parts of one reply lore reads
    lore: LoreInput,
    history: Sequence[HistoryTurn],
    message: str,
    *,
    budget_cap: int,
    count: Callable[[str], int],
    substitute: Callable[[str], str],
    seed: str,
    regex_budget: RegexBudget | None = None,
) -> LoreResult:
    scanned = [message, *(_line(turn) for turn in reversed(history))]
    length = max(lore.message_count, len(history)) + 1
    assistant = max(sum(1 for t in history if t.role == "assistant"), lore.message_count // 2)
    budgets = [b.token_budget for b in lore.books if b.token_budget is not None]
    budget = min([budget_cap, *budgets])
    digest = hashlib.sha256(seed.encode()).digest()
    outcome = activate(
        lore.books,
        Scan(messages=scanned, chat_length=length, assistant_messages=assistant),
        lore.state,
        budget=budget,
        count=count,
        rng=random.Random(int.from_bytes(digest[:8], "big")),  # noqa: S311  # dice, not secrets
        substitute=substitute,
        regex_budget=regex_budget,
    )
    return LoreResult(outcome.activated, outcome.dropped, outcome.state, length + 1)
